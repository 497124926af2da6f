"""`damo report wss`: the working set size of each snapshot, as a percentile table.

A snapshot's working set is the total size of its regions accessed at least
`acc_thres` times and at least `sz_thres` bytes big.  With `work_time`
(microseconds) longer than the snapshot interval, consecutive snapshots are
first aggregated into windows of that length, after skipping the first
`exclude` snapshots.
"""

import numpy as np

from damo.records.snapshots import Snapshots
from damo.reports import aggregate, dist


def wss_per_snapshot(snaps: Snapshots, indices: np.ndarray, acc_thres: int,
                     sz_thres: int) -> np.ndarray:
    flat, owner = snaps.region_index(indices)
    sizes = snaps.end[flat] - snaps.start[flat]
    counted = np.where((snaps.nr_accesses[flat] >= acc_thres) & (sizes >= sz_thres), sizes, 0)
    total = np.zeros(len(flat) + 1, dtype=np.uint64)
    np.cumsum(counted, out=total[1:])
    ends = np.cumsum(snaps.nr_regions[indices])
    return total[ends] - total[ends - snaps.nr_regions[indices]]


def wss_values(snaps: Snapshots, indices: np.ndarray, acc_thres: int, sz_thres: int,
               work_time_us: int, exclude: int) -> np.ndarray:
    size = aggregate.shots_per_window(snaps, indices, work_time_us)
    if size <= 1:
        return wss_per_snapshot(snaps, indices, acc_thres, sz_thres)
    values = []
    for window in aggregate.windows(indices[exclude:], size):
        start, end, nr = aggregate.aggregate(snaps, window)
        sizes = end - start
        values.append(int(sizes[(nr >= acc_thres) & (sizes >= sz_thres)].sum()))
    return np.array(values, dtype=np.uint64)


def per_target(snaps: Snapshots, acc_thres: int, sz_thres: int, work_time_us: int,
               exclude: int) -> list[tuple[int, np.ndarray]]:
    return dist.per_target(
        snaps,
        lambda indices: wss_values(snaps, indices, acc_thres, sz_thres, work_time_us, exclude),
        exclude,
    )
