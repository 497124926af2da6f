"""The ground-truth log of a workload run: JSON lines, one per phase run.

    {"phase": name, "start_ns": int, "end_ns": int,
     "regions": [{"name": ..., "start": int, "end": int, "probability": float}, ...]}

Times are in the clock of the record made alongside (virtual ns for `sim`,
CLOCK_MONOTONIC for a real run); every region of the workload is listed, with
probability 0 for those the phase does not access.
"""

import json
import os
from collections.abc import Sequence
from typing import NamedTuple

from damo.errors import DamoError
from damo.records.writer import open_output


class TruthRegion(NamedTuple):
    name: str
    start: int
    end: int
    probability: float


class TruthRun(NamedTuple):
    phase: str
    start_ns: int
    end_ns: int
    regions: tuple[TruthRegion, ...]

    @property
    def wss(self) -> int:
        """Bytes of the regions the phase accesses."""
        return sum(r.end - r.start for r in self.regions if r.probability > 0)


class TruthLog:
    """A truth file being written; created like record files (0600, old one kept as .old)."""

    def __init__(self, path: str):
        self.path = path
        self._file = os.fdopen(open_output(path), "w", encoding="utf-8")

    def write(self, run: TruthRun) -> None:
        line = {
            "phase": run.phase,
            "start_ns": run.start_ns,
            "end_ns": run.end_ns,
            "regions": [r._asdict() for r in run.regions],
        }
        # One line per phase run, flushed, so a stopped run leaves whole lines.
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_truth(path: str) -> list[TruthRun]:
    """The phase runs of a truth file."""
    runs = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    d = json.loads(line)
                    regions = tuple(TruthRegion(**r) for r in d["regions"])
                    runs.append(TruthRun(d["phase"], d["start_ns"], d["end_ns"], regions))
                except (ValueError, KeyError, TypeError) as err:
                    raise DamoError(f"{path}:{number}: not a truth line ({err})") from None
    except OSError as err:
        raise DamoError(f"cannot read {path}: {err.strerror}") from None
    return runs


def phase_at(runs: Sequence[TruthRun], start_ns: int, end_ns: int) -> TruthRun | None:
    """The one run covering all of `[start_ns, end_ns)`, or None (a change inside, or none)."""
    for run in runs:
        if run.start_ns <= start_ns and end_ns <= run.end_ns:
            return run
    return None
