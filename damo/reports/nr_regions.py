"""`damo report nr_regions`: how many regions the snapshots had, as a percentile table.

The first `WARMUP_SNAPSHOTS` of each target are left out: DAMON starts from
a fixed split and needs a few aggregations to adapt the regions.
"""

import numpy as np

from damo.records.snapshots import Snapshots
from damo.reports import WARMUP_SNAPSHOTS, dist


def per_target(snaps: Snapshots, skip: int = WARMUP_SNAPSHOTS) -> list[tuple[int, np.ndarray]]:
    return dist.per_target(snaps, lambda indices: snaps.nr_regions[indices[skip:]], skip)
