"""From a stream of `damon_aggregated` events to snapshots.

Kernel DAMON reports one event per region: a snapshot is `nr_regions`
consecutive events of one target, in address order.  The same rule serves
`perf script` text and damo's live tracepoint reader.  Work is vectorised over
a run of events; a *contiguous* run (no events lost inside it) is assumed, so
a snapshot is complete exactly when it has `nr_regions` events.
"""

import numpy as np


def snapshot_bounds(
    target_id: np.ndarray, nr_regions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """First event index and event count of each (maybe partial) snapshot of a run.

    A new snapshot begins where the target or its `nr_regions` changes, or where
    the addresses stop increasing (the next aggregation of the same target).
    """
    n = len(target_id)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(target_id[1:], target_id[:-1], out=new[1:])
    new[1:] |= nr_regions[1:] != nr_regions[:-1]
    new[1:] |= start[1:] < end[:-1]
    firsts = np.flatnonzero(new)
    counts = np.diff(np.append(firsts, n))
    return firsts, counts


def complete_snapshots(
    target_id: np.ndarray, nr_regions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """The complete snapshots of a contiguous run, and where its unfinished tail begins.

    Returns (firsts, counts, tail): `firsts`/`counts` of the snapshots that have
    all their events; `tail` is the index of the last snapshot's first event if
    that snapshot is still short (more events may follow), else `len(run)`.
    Partial snapshots elsewhere (cut by the start of the run or by lost
    events) are left out.
    """
    firsts, counts = snapshot_bounds(target_id, nr_regions, start, end)
    tail = len(target_id)
    if len(firsts) and counts[-1] < nr_regions[firsts[-1]]:
        tail = int(firsts[-1])
        firsts, counts = firsts[:-1], counts[:-1]
    whole = counts == nr_regions[firsts]
    return firsts[whole], counts[whole], tail
