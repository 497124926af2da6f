"""The WSS accuracy method: of the sim and real (BPF) accuracy tests and bench/narrow.

Measured WSS of a snapshot: bytes of its regions with nr_accesses >= 1,
counted inside the workload's regions only.  Truth: bytes of the regions the
active phase accesses.  The first `WARMUP` snapshots and those spanning a
phase change are left out.
"""

import numpy as np

from damo.core.attrs import Attrs
from damo.core.context import PAGE_SIZE
from damo.records.reader import read_snapshots
from damo.workload.truth import phase_at, read_truth

WARMUP = 20


def relative_errors(
    out: str, truth: str, attrs: Attrs, check_nr_regions: bool = True,
    target_id: int | None = None,
) -> np.ndarray:
    """|measured - true| / true WSS of each comparable snapshot of `out`.

    Every snapshot must be sorted, non-overlapping and page-aligned and, with
    `check_nr_regions`, hold between min and max regions (a real process can
    drop below the minimum for a moment when its mappings shrink, as in DAMON).
    With `target_id`, only that target's snapshots count (a record of several
    processes: the workload runs in one of them).
    """
    snaps = read_snapshots(out)
    runs = read_truth(truth)
    workload = [(r.start, r.end) for r in runs[0].regions]
    window = attrs.aggr_interval * 1000
    errors = []
    indices = range(len(snaps)) if target_id is None else \
        np.flatnonzero(snaps.target_id == target_id).tolist()
    for n, i in enumerate(indices):
        start, end, nr = (a.astype(np.int64) for a in snaps.regions(i))
        assert (end > start).all() and (start[1:] >= end[:-1]).all()
        assert not (start % PAGE_SIZE).any() and not (end % PAGE_SIZE).any()
        assert len(start) <= attrs.max_nr_regions
        if check_nr_regions:
            assert attrs.min_nr_regions <= len(start)
        if n < WARMUP:
            continue
        now = int(snaps.end_ns[i])
        run = phase_at(runs, now - window, now)
        if run is None:
            continue
        hot = nr >= 1
        measured = sum(
            int(np.clip(np.minimum(end[hot], e) - np.maximum(start[hot], s), 0, None).sum())
            for s, e in workload
        )
        errors.append(abs(measured - run.wss) / run.wss)
    return np.array(errors)
