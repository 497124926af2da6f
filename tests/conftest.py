"""Shared test helpers: the conformance fixtures folder and running the `damo` CLI."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
CONFORMANCE = REPO / ".." / "shared" / "conformance"


@pytest.fixture
def conformance_dir() -> Path:
    """The shared conformance fixtures (read only); skips when they are absent."""
    if not (CONFORMANCE / "README.md").is_file():
        pytest.skip(f"conformance fixtures not found at {CONFORMANCE.resolve()}")
    return CONFORMANCE.resolve()


def run_damo(*args: str, cwd: Path | str | None = None,
             stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the `damo` CLI in a fresh interpreter; stdout and stderr are captured as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "damo.cli", *args],
        cwd=cwd, input=stdin, capture_output=True, check=False, timeout=300,
    )


@pytest.fixture
def damo_cli():
    """`run_damo` as a fixture, for tests that prefer fixtures to imports."""
    return run_damo


def setup_provides_bpf() -> bool:
    """Whether this run is one where scripts/setup.sh installed the BPF stack (bcc, BTF access).

    Under CI (CI=true), or as root from the venv setup.sh makes (REPO/.venv), a missing bcc is a
    broken install, so it must fail the tests that need it rather than skip them.
    """
    import os
    import sys

    if os.environ.get("CI", "").lower() == "true":
        return True
    venv = REPO / ".venv"
    return os.geteuid() == 0 and venv.is_dir() and Path(sys.prefix).resolve() == venv.resolve()


def missing(reason: str) -> None:
    """A component the tests need is absent: a failure where setup provides it, else a skip."""
    if setup_provides_bpf():
        pytest.fail(f"{reason} (setup.sh provides it here: a broken install, not a skip)")
    pytest.skip(reason)


def need_bpf() -> None:
    """Skip, with the reason, unless this process can load BPF programs and advise others.

    Not root is always a skip; bcc missing where setup provides it is a failure (`missing`).
    """
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root (BPF and process_madvise)")
    from damo.errors import PlatformError
    from damo.linux import bcc_env

    try:
        bcc_env.import_bcc()
    except PlatformError as e:
        missing(str(e))


def running_kdamond():
    """The first kdamond kernel DAMON runs here (read-only), or None."""
    from damo.linux import damon_sysfs

    try:
        return next((kd for kd in damon_sysfs.read_kdamonds() if kd.running), None)
    except Exception:  # noqa: BLE001 - no DAMON sysfs at all, or not readable
        return None


def measured(name: str, value: float) -> float:
    """Note a figure a timing-dependent bound is checked against; returns it.

    Printed (pytest -s shows it) and, when DAMO_MEASURE_LOG names a file, appended there as
    one JSON line: bench/spread runs the tests many times under load and reports each
    figure's spread, which is where these tests' margins come from.
    """
    import json
    import os

    print(f"measured {name} = {value:.6g}")
    log = os.environ.get("DAMO_MEASURE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"name": name, "value": value}) + "\n")
    return value


def check_waits(times_ns: list[int], waits: list[list[tuple[int, int]]], aggr_ns: int,
                sample_ns: int, makeup_steps: int, stop_ns: int = 0) -> None:
    """The waits the sampling reported (`take_waits` after each aggregation at `times_ns`)
    are the steps it counted, took the time of those steps, and explain no more of a gap
    between two aggregations than the gap's excess over the interval (15 %, `damo validate`'s
    tolerance): what the sidecar says of a wait is what the records show.  `stop_ns`: the
    test stops this process that long at times; a stop between an aggregation's end and
    its callback's clock read makes the next gap look that much shorter (loaded, 30 ms
    stops: 0.75 of the interval at the least, docs/testing.md)."""
    assert sum(s for w in waits for s, _ in w) == makeup_steps
    rest = []
    for k, w in enumerate(waits):
        steps, ns = sum(s for s, _ in w), sum(n for _, n in w)
        assert ns >= (steps - 1) * sample_ns, (k, steps, ns)
        if k and steps:
            rest.append((times_ns[k] - times_ns[k - 1] - ns) / aggr_ns)
    if rest:
        assert measured("waited_gap_rest_min", min(rest)) >= 0.85 - stop_ns / aggr_ns, rest


class Stopper:
    """SIGSTOPs `pid` for `stop_s` after every `run_s` until `end()`.

    The stopper shell ends on SIGTERM only after its current command and always
    continues `pid` on its way out: killed outright, it could stop `pid` (this
    very process) just as it died, and nobody would continue it (a hung suite).
    """

    def __init__(self, pid: int, run_s: float, stop_s: float):
        self.pid = pid
        self.shell = subprocess.Popen(
            ["/bin/sh", "-c", f"trap 'kill -CONT {pid}; exit 0' TERM; while :; do"
             f" sleep {run_s}; kill -STOP {pid}; sleep {stop_s}; kill -CONT {pid}; done"])

    def end(self) -> None:
        self.shell.terminate()
        self.shell.wait()
        os.kill(self.pid, signal.SIGCONT)  # harmless when running
