"""The WSS accuracy method: of the sim and real (BPF) accuracy tests and bench/narrow.

Measured WSS of a snapshot: bytes of its regions with nr_accesses >= 1,
counted inside the workload's regions only.  Truth: bytes of the regions the
active phase accesses.  The snapshots of the first `WARMUP` nominal
aggregation intervals (time, not snapshots: a CPU budget may lengthen the
intervals) and those spanning a phase change are left out.

The WSS error alone lets two mistakes cancel: bytes reported hot where the
phase accesses nothing and accessed bytes reported cold.  `accuracy` gives
both beside it, each relative to the true WSS: `hot_plus` (reported hot
outside the truth) and `missed` (truth bytes not reported hot).
"""

from typing import NamedTuple

import numpy as np

from damo.core.attrs import Attrs
from damo.core.context import PAGE_SIZE
from damo.records.reader import read_snapshots
from damo.workload.truth import phase_at, read_truth

WARMUP = 20


class Accuracy(NamedTuple):
    """Per comparable snapshot, each relative to the true WSS."""

    errors: np.ndarray  # |measured - true| WSS
    hot_plus: np.ndarray  # bytes reported hot where the phase accesses nothing
    missed: np.ndarray  # accessed bytes not reported hot

    def summary(self) -> str:
        return (f"median error {np.median(self.errors):.2%}, hot+ {np.median(self.hot_plus):.2%}, "
                f"missed {np.median(self.missed):.2%}, within 10% "
                f"{np.mean(self.errors <= 0.10):.1%}")


def _overlap(start: np.ndarray, end: np.ndarray, ranges: list[tuple[int, int]]) -> int:
    """Bytes of [start, end) pieces inside any of `ranges`."""
    return sum(int(np.clip(np.minimum(end, e) - np.maximum(start, s), 0, None).sum())
               for s, e in ranges)


def accuracy(
    out: str, truth: str, attrs: Attrs, check_nr_regions: bool = True,
    target_id: int | None = None,
) -> Accuracy:
    """The WSS error, hot+ and missed bytes of each comparable snapshot of `out`.

    Every snapshot must be sorted, non-overlapping and page-aligned and, with
    `check_nr_regions`, hold between min and max regions (a real process can
    drop below the minimum for a moment when its mappings shrink, as in DAMON).
    With `target_id`, only that target's snapshots count (a record of several
    processes: the workload runs in one of them).  A snapshot covers the time
    since its target's previous one (the CPU budget may lengthen the
    aggregation interval), the first one `attrs.aggr_interval`.
    """
    snaps = read_snapshots(out)
    runs = read_truth(truth)
    workload = [(r.start, r.end) for r in runs[0].regions]
    errors, hot_plus, missed = [], [], []
    indices = range(len(snaps)) if target_id is None else \
        np.flatnonzero(snaps.target_id == target_id).tolist()
    last_end: dict[int, int] = {}
    warm_until = None
    for i in indices:
        start, end, nr = (a.astype(np.int64) for a in snaps.regions(i))
        assert (end > start).all() and (start[1:] >= end[:-1]).all()
        assert not (start % PAGE_SIZE).any() and not (end % PAGE_SIZE).any()
        assert len(start) <= attrs.max_nr_regions
        if check_nr_regions:
            assert attrs.min_nr_regions <= len(start)
        now = int(snaps.end_ns[i])
        tid = int(snaps.target_id[i])
        begin = last_end.get(tid, now - attrs.aggr_interval * 1000)
        last_end[tid] = now
        if warm_until is None:
            warm_until = begin + WARMUP * attrs.aggr_interval * 1000
        if now <= warm_until:
            continue
        run = phase_at(runs, begin, now)
        if run is None:
            continue
        hot = nr >= 1
        accessed = [(r.start, r.end) for r in run.regions if r.probability > 0]
        measured = _overlap(start[hot], end[hot], workload)
        found = _overlap(start[hot], end[hot], accessed)
        errors.append(abs(measured - run.wss) / run.wss)
        hot_plus.append((measured - found) / run.wss)
        missed.append((run.wss - found) / run.wss)
    return Accuracy(np.array(errors), np.array(hot_plus), np.array(missed))


def relative_errors(
    out: str, truth: str, attrs: Attrs, check_nr_regions: bool = True,
    target_id: int | None = None,
) -> np.ndarray:
    """|measured - true| / true WSS of each comparable snapshot of `out` (see `accuracy`)."""
    return accuracy(out, truth, attrs, check_nr_regions, target_id).errors
