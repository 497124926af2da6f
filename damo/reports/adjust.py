"""`damo adjust`: re-aggregate a record file into longer windows, written as recfmt v2.

The first `skip` snapshots of each target are dropped (regions are not adapted
yet), the rest cut into windows of about `aggr_us` (a whole number of
snapshots, from the target's mean snapshot interval) and each window
aggregated (see `damo.reports.aggregate`).  Window ``k`` of every target goes
into record ``k``, time-stamped ``start + k * aggr_us`` where ``start`` is the
first record's time, as DAMON's own adjust tool does.
"""

import numpy as np

from damo.records.snapshots import Snapshots
from damo.records.writer import RecordWriter, TargetRegions
from damo.reports import aggregate

U64_MASK = (1 << 64) - 1


def adjust(snaps: Snapshots, aggr_us: int, skip: int, output: str) -> int:
    """Write the adjusted records to `output`; returns how many were written."""
    per_target: list[tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]] = []
    for tid in snaps.target_ids():
        indices = snaps.of_target(tid)
        size = aggregate.shots_per_window(snaps, indices, aggr_us)
        windows = aggregate.windows(indices[skip:], size)
        aggregated = [aggregate.aggregate(snaps, w) for w in windows]
        per_target.append((tid & U64_MASK, aggregated))

    nr_records = max((len(a) for _, a in per_target), default=0)
    base = int(snaps.end_ns[0])
    with RecordWriter(output) as writer:
        for k in range(nr_records):
            targets = [
                TargetRegions(tid, *windows[k]) for tid, windows in per_target if k < len(windows)
            ]
            writer.write(base + k * aggr_us * 1000, targets)
    return nr_records
