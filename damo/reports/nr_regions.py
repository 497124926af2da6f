"""`damo report nr_regions`: how many regions the snapshots had, as a percentile table.

The first `WARMUP_SNAPSHOTS` of each target are left out: DAMON starts from
a fixed split and needs a few aggregations to adapt the regions.  One pass;
the regions are read only to be checked.
"""

from typing import Any

import numpy as np

from damo.reports import WARMUP_SNAPSHOTS, dist
from damo.reports.spans import ints as _ints


def values_per_target(source: Any, skip: int = WARMUP_SNAPSHOTS) -> dict[int, np.ndarray]:
    counts: dict[int, list[int]] = {}
    for chunk in source.chunks():
        chunk.columns()  # only to reject what the other reports reject
        tids, nrs = chunk.target_id, chunk.nr_regions
        for tid, nr in zip(_ints(tids), _ints(nrs), strict=True):
            counts.setdefault(tid, []).append(nr)
    return {tid: np.array(c[skip:], dtype=np.int64) for tid, c in counts.items()}


def per_target(source: Any, skip: int = WARMUP_SNAPSHOTS) -> list[tuple[int, np.ndarray]]:
    return dist.rows(values_per_target(source, skip), skip)
