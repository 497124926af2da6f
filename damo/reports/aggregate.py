"""Aggregating consecutive snapshots of one target into one (for adjust and wss --work_time).

The aggregate starts as a copy of the first snapshot's regions.  Each later
snapshot then adds, to every aggregate region, the highest ``nr_accesses`` of
its regions that intersect it (a region split in two halves counts once, not
twice), and the parts of its regions that no aggregate region covers yet are
appended as new regions with their own ``nr_accesses``, in address order per
region.  Regions keep that order, which is why the result is not always sorted
by address.
"""

import numpy as np

from damo.records.snapshots import Snapshots, flat_ranges


def _add_snapshot(
    a_start: np.ndarray, a_end: np.ndarray, a_nr: np.ndarray,
    x_start: np.ndarray, x_end: np.ndarray, x_nr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(a_start, kind="stable")
    s_start, s_end = a_start[order], a_end[order]
    x_order = np.argsort(x_start, kind="stable")
    xs, xe, xn = x_start[x_order], x_end[x_order], x_nr[x_order]

    # Highest nr_accesses among the snapshot's regions intersecting each aggregate region.
    lo = np.searchsorted(xe, s_start, side="right")
    hi = np.searchsorted(xs, s_end, side="left")
    x_idx, owner = flat_ranges(lo, hi)
    added = np.zeros(len(order), dtype=np.int64)
    np.maximum.at(added, owner, xn[x_idx])
    nr = a_nr.copy()
    nr[order] += added

    # Parts of each snapshot region outside every aggregate region: the gaps
    # between the aggregate regions it intersects, and before and after them.
    lo = np.searchsorted(s_end, xs, side="right")
    hi = np.searchsorted(s_start, xe, side="left")
    counts = np.maximum(hi - lo, 0)
    a_idx, _ = flat_ranges(lo, hi)
    slot = np.cumsum(counts + 1) - (counts + 1)  # first candidate of each region
    n_cand = int((counts + 1).sum())
    cand_start = np.empty(n_cand, dtype=np.uint64)
    cand_end = np.empty(n_cand, dtype=np.uint64)
    cand_owner = np.repeat(np.arange(len(xs)), counts + 1)
    # Where each intersecting aggregate region goes among its owner's candidates.
    first_of_owner = np.cumsum(counts) - counts
    pos = np.repeat(slot - first_of_owner, counts) + np.arange(len(a_idx))
    cand_start[slot] = xs
    cand_start[pos + 1] = s_end[a_idx]
    cand_end[pos] = s_start[a_idx]
    cand_end[slot + counts] = xe
    cand_start = np.maximum(cand_start, xs[cand_owner])
    cand_end = np.minimum(cand_end, xe[cand_owner])
    keep = cand_start < cand_end
    # Pieces go in the snapshot's own region order, ascending within a region.
    piece_rank = np.argsort(x_order[cand_owner[keep]], kind="stable")
    p_start = cand_start[keep][piece_rank]
    p_end = cand_end[keep][piece_rank]
    p_nr = xn[cand_owner[keep]][piece_rank]
    return (
        np.concatenate([a_start, p_start]),
        np.concatenate([a_end, p_end]),
        np.concatenate([nr, p_nr]),
    )


def aggregate(snaps: Snapshots, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, nr_accesses) of the aggregate of the snapshots `indices` (one target)."""
    window = Windows(len(indices), 0)
    for i in indices:
        done = window.add(*snaps.regions(int(i)))
    return done


class Windows:
    """One target's snapshots, fed in time order, cut into windows of `size` and aggregated.

    The first `skip` snapshots are dropped.  `add` returns the aggregate of
    a window when its last snapshot comes (else None); `finish` returns the
    last, shorter window if there is one.  Snapshots may come from any number
    of chunks of a file.
    """

    def __init__(self, size: int, skip: int):
        self.size = size
        self.skip = skip
        self._seen = 0
        self._count = 0
        self._acc: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, start: np.ndarray, end: np.ndarray, nr: np.ndarray):
        self._seen += 1
        if self._seen <= self.skip:
            return None
        if self._acc is None:
            self._acc = (start.copy(), end.copy(), nr.astype(np.int64))
        else:
            self._acc = _add_snapshot(*self._acc, start, end, nr.astype(np.int64))
        self._count += 1
        if self._count < self.size:
            return None
        done, self._acc, self._count = self._acc, None, 0
        return done

    def finish(self):
        done, self._acc, self._count = self._acc, None, 0
        return done
