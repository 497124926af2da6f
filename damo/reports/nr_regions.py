"""`damo report nr_regions`: how many regions the snapshots had, as a percentile table.

The first `WARMUP_SNAPSHOTS` of each target are left out: DAMON starts from
a fixed split and needs a few aggregations to adapt the regions.
"""

import sys

import numpy as np

from damo.records.snapshots import Snapshots
from damo.reports import WARMUP_SNAPSHOTS


def per_target(snaps: Snapshots, skip: int = WARMUP_SNAPSHOTS) -> list[tuple[int, np.ndarray]]:
    result = []
    for tid in snaps.target_ids():
        values = snaps.nr_regions[snaps.of_target(tid)[skip:]]
        if len(values):
            result.append((tid, values))
        else:
            print(f"damo: warning: target {tid}: no snapshot left after skipping {skip}",
                  file=sys.stderr)
    return result
