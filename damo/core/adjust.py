"""Adaptive regions adjustment (seed patch 03): merge alike neighbours, split the rest.

Each aggregation, `kdamond_merge_regions` joins adjacent regions whose access
counts differ by at most a threshold (a tenth of the highest count) while the
joined region stays within the size limit; after the results are reported and
reset, `kdamond_split_regions` cuts every region at random points so that a
region hiding a differently-accessed middle shows it at the next aggregation.
Merge undoes needless splits and split undoes needless merges, so the number
of regions follows the access pattern within [min_nr_regions, max_nr_regions].

Two adjustments share the loop (`Context.adjustment`): `Seed` here, the seed's
exact merge and split (`merge_regions_of`, `split_regions_of`), and `Narrow`
(damo.core.narrow), damo's default, which keeps the evidence of a sparse hit
until it has narrowed in on a small hot object.  Both merge through
`merge_regions` and take the number of pieces per split from `nr_subregions`.
"""

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

import numpy as np

from damo.core.age import remember_counts
from damo.core.native import extension
from damo.core.target import AGE_DTYPE, Target

if TYPE_CHECKING:
    from damo.core.context import Context


class Adjustment(Protocol):
    """How regions adapt each aggregation: merge before the report, split after the reset."""

    name: str

    def merge(self, t: Target, thres: int, sz_limit: int) -> None: ...

    def split(self, ctx: "Context") -> None: ...


def loops() -> ModuleType:
    """The merge loop, narrow's rules and its even split in C (damo/core/_adjust.c)."""
    return extension("damo.core._adjust")


def region_sz_limit(targets: Iterable[Target], min_nr_regions: int, min_region: int) -> int:
    """The largest size a merge may produce: the total monitored size / min_nr_regions."""
    sz = sum(t.total_size() for t in targets)
    if min_nr_regions:
        sz //= min_nr_regions
    return max(sz, min_region)


def merge_regions(t: Target, thres: int, sz_limit: int,
                  may: "np.ndarray | Sequence[bool] | None" = None) -> np.ndarray | None:
    """The seed's merge loop: each region joins the region before it while they touch,
    their counts differ by at most `thres` and the two fit `sz_limit`.

    `may[i]` false keeps region i apart whatever its count (narrow's rules).
    The count of a merged region is size-weighted, pair by pair as the seed
    computes it; its age is size-weighted over its parts, rounded down once
    (`damo.core.age`).  Returns the index of each surviving region's first
    part (None when nothing merged); per-region arrays other than the bounds,
    the count and the age follow with `merged_first` or `merged_weighted`.
    The loop is sequential (each join moves the survivor's count): it runs in
    C (damo/core/_adjust.c).
    """
    n = t.nr_regions
    start, end = _int64(t.start), _int64(t.end)
    keep, out = np.empty(n, dtype=np.int64), np.empty((3, n), dtype=np.int64)
    allowed = None if may is None else np.ascontiguousarray(may, dtype=bool)
    k = loops().merge(start, end, _int64(t.nr_accesses), _int64(t.age), allowed, thres,
                      sz_limit, keep, out[0], out[1], out[2])
    if k == n:
        return None
    idx, ends, nrs, ages = keep[:k], out[0, :k], out[1, :k], out[2, :k]
    sampling = t.sampling_addr[idx]
    t.set_regions(t.start[idx], ends, nrs, parent=idx)
    t.age = ages.astype(AGE_DTYPE, copy=False)  # age
    t.sampling_addr = sampling
    return idx


def _int64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def merged_weighted(values: np.ndarray, sizes: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """A per-region value of the regions before a merge, size-weighted over each survivor's
    parts (`idx`: merge_regions' answer; `sizes`: the parts' sizes)."""
    total = np.add.reduceat(sizes, idx)
    return (np.add.reduceat(values * sizes, idx) // total).astype(values.dtype)


def merge_regions_of(t: Target, thres: int, sz_limit: int) -> None:
    """Merge each region into its left neighbour while the two are alike and small enough."""
    if t.nr_regions >= 2:
        merge_regions(t, thres, sz_limit)


def split_region_at(t: Target, index: int, sz_r: int) -> None:
    """Cut region `index` so that its first part is `sz_r` long; the rest follows it."""
    start, end, _ = t.region(index)
    t.end[index] = start + sz_r
    t.insert_region(index + 1, start + sz_r, end, age=int(t.age[index]))
    t.last_nr_accesses[index + 1] = t.last_nr_accesses[index]


def split_regions_of(t: Target, nr_subs: int, rng: np.random.Generator, min_region: int) -> None:
    """Split every region of `t` into up to `nr_subs` pieces at random points.

    As the seed does: each round cuts the current left piece at a random
    10%..90% of its size, aligned down to `min_region`; a cut that would leave
    an empty piece is skipped, and pieces of at most two minimum regions are
    not cut.  Vectorised over regions: the cut points of all rounds are
    collected and the new boundaries merged in at once.
    """
    if t.nr_regions == 0 or nr_subs < 2:
        return
    starts, ends = t.start, t.end
    left = ends - starts  # size of the piece the next round cuts
    cuts = []
    for _ in range(nr_subs - 1):
        # damon_rand(1, 10): 1..9 tenths
        tenths = rng.integers(1, 10, size=len(starts), dtype=np.int64)
        sz_sub = tenths * left // 10 // min_region * min_region
        ok = (left > 2 * min_region) & (sz_sub > 0) & (sz_sub < left)
        cuts.append((starts + sz_sub)[ok])
        left = np.where(ok, sz_sub, left)
    cut = np.concatenate(cuts)
    if len(cut) == 0:
        return
    new_starts = np.sort(np.concatenate((starts, cut)))
    new_ends = np.sort(np.concatenate((ends, cut)))
    # The first piece keeps the region's count; new pieces start at zero, as new regions do.
    parent = np.searchsorted(starts, new_starts, side="right") - 1
    nrs = np.where(new_starts == starts[parent], t.nr_accesses[parent], 0)
    t.set_regions(new_starts, new_ends, nrs, parent=parent)


def nr_subregions(ctx: "Context", nr_regions: int) -> int:
    """The seed's split rule: 2 pieces a region, 3 when the number of regions has not
    moved since the last split and stays under max / 3 (maybe the middle of a region
    is accessed differently).  Remembers `nr_regions` for the next call."""
    nr_subs = 2
    if ctx.last_nr_regions == nr_regions and nr_regions < ctx.attrs.max_nr_regions // 3:
        nr_subs = 3
    ctx.last_nr_regions = nr_regions
    return nr_subs


class Seed:
    """The seed's adjustment (`--adjust seed`)."""

    name = "seed"

    def merge(self, t: Target, thres: int, sz_limit: int) -> None:
        merge_regions_of(t, thres, sz_limit)

    def split(self, ctx: "Context") -> None:
        """Split every region in 2, or 3 (`nr_subregions`), while under max / 2."""
        nr_regions = sum(t.nr_regions for t in ctx.targets)
        if nr_regions > ctx.attrs.max_nr_regions // 2:
            return
        nr_subs = nr_subregions(ctx, nr_regions)
        for t in ctx.targets:
            split_regions_of(t, nr_subs, ctx.rng, ctx.min_region)


def kdamond_merge_regions(ctx: "Context", threshold: int, sz_limit: int) -> None:
    merge = ctx.adjustment.merge
    for t in ctx.targets:
        merge(t, threshold, sz_limit)


def kdamond_split_regions(ctx: "Context") -> None:
    ctx.adjustment.split(ctx)


def kdamond_reset_aggregated(ctx: "Context") -> None:
    for t in ctx.targets:
        remember_counts(t)
        t.nr_accesses[:] = 0
