"""Adaptive regions adjustment (seed patch 03): merge alike neighbours, split the rest.

Each aggregation, `kdamond_merge_regions` joins adjacent regions whose access
counts differ by at most a threshold (a tenth of the highest count) while the
joined region stays within the size limit; after the results are reported and
reset, `kdamond_split_regions` cuts every region at random points so that a
region hiding a differently-accessed middle shows it at the next aggregation.
Merge undoes needless splits and split undoes needless merges, so the number
of regions follows the access pattern within [min_nr_regions, max_nr_regions].

Two adjustments share the loop (`Context.adjust`): `seed`, the seed's exact
merge and split (`merge_regions_of`, `split_regions_of`), and `narrow`, damo's
default, which keeps the evidence of a sparse hit until it has narrowed in on
a small hot object (below; docs/design.md argues it with measurements).
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from damo.core.target import COUNT_DTYPE, Target

if TYPE_CHECKING:
    from damo.core.context import Context


def region_sz_limit(targets: Iterable[Target], min_nr_regions: int, min_region: int) -> int:
    """The largest size a merge may produce: the total monitored size / min_nr_regions."""
    sz = sum(t.total_size() for t in targets)
    if min_nr_regions:
        sz //= min_nr_regions
    return max(sz, min_region)


def merge_two_regions(t: Target, index: int) -> None:
    """Merge region `index + 1` into region `index`; the count is size-weighted."""
    l_start, l_end, l_nr = t.region(index)
    _, r_end, r_nr = t.region(index + 1)
    sz_l, sz_r = l_end - l_start, r_end - l_end
    t.nr_accesses[index] = (l_nr * sz_l + r_nr * sz_r) // (sz_l + sz_r)
    t.end[index] = r_end
    t.del_region(index + 1)


def merge_regions_of(t: Target, thres: int, sz_limit: int) -> None:
    """Merge each region into its left neighbour while the two are alike and small enough."""
    if t.nr_regions < 2:
        return
    starts, ends, nrs = t.start.tolist(), t.end.tolist(), t.nr_accesses.tolist()
    # `keep[i]` is the index of the region that region i ended up in.
    keep = [0]
    for i in range(1, len(starts)):
        p = keep[-1]
        sz_p, sz_r = ends[p] - starts[p], ends[i] - starts[i]
        if ends[p] == starts[i] and abs(nrs[p] - nrs[i]) <= thres and sz_p + sz_r <= sz_limit:
            nrs[p] = (nrs[p] * sz_p + nrs[i] * sz_r) // (sz_p + sz_r)
            ends[p] = ends[i]
        else:
            keep.append(i)
    if len(keep) == len(starts):
        return
    idx = np.array(keep)
    sampling = t.sampling_addr[idx]
    t.set_regions(np.array(starts)[idx], np.array(ends)[idx], np.array(nrs, dtype=COUNT_DTYPE)[idx])
    t.sampling_addr = sampling


def split_region_at(t: Target, index: int, sz_r: int) -> None:
    """Cut region `index` so that its first part is `sz_r` long; the rest follows it."""
    start, end, _ = t.region(index)
    t.end[index] = start + sz_r
    t.insert_region(index + 1, start + sz_r, end)


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
    t.set_regions(new_starts, new_ends, nrs)


def narrowing(ctx: "Context") -> bool:
    """Whether this aggregation adjusts with `narrow` (under a CPU budget too).

    The budget no longer thins a region below a few checks an aggregation and
    counts are of the checks made, so `narrow`'s evidence keeps its meaning
    at any level of the budget (docs/design.md).
    """
    return ctx.adjust == "narrow"


def kdamond_merge_regions(ctx: "Context", threshold: int, sz_limit: int) -> None:
    merge = narrow_merge_regions_of if narrowing(ctx) else merge_regions_of
    for t in ctx.targets:
        merge(t, threshold, sz_limit)


def kdamond_split_regions(ctx: "Context") -> None:
    """Split every region in 2, or 3 when the count has not moved, while under max / 2
    (`--adjust seed`, or under a lengthened sampling interval); the `narrow`
    split otherwise."""
    if narrowing(ctx):
        narrow_split_regions(ctx)
        return
    nr_regions = sum(t.nr_regions for t in ctx.targets)
    if nr_regions > ctx.attrs.max_nr_regions // 2:
        return
    nr_subregions = 2
    # Maybe the middle of the region has different access frequency
    if ctx.last_nr_regions == nr_regions and nr_regions < ctx.attrs.max_nr_regions // 3:
        nr_subregions = 3
    for t in ctx.targets:
        split_regions_of(t, nr_subregions, ctx.rng, ctx.min_region)
    ctx.last_nr_regions = nr_regions


def kdamond_reset_aggregated(ctx: "Context") -> None:
    for t in ctx.targets:
        t.nr_accesses[:] = 0


# The `narrow` adjustment (damo's default; `--adjust seed` is the seed's above).
#
# The seed's merge and split find a small hot object only by luck: a sample
# lands on it rarely, its region's split pieces get no second hit within the
# next aggregation, and the merge joins them back before the search narrows.
# `narrow` changes three things, on per-aggregation counts only (nr_accesses at
# aggregation time, and a per-region `hold` kept across aggregations):
#
# - evidence is kept: a region with a sparse hit (a few samples of an
#   aggregation, neighbours unaccessed) is cut into up to EVIDENCE_PIECES even
#   pieces, each held out of merges for HOLD_AGGREGATIONS aggregations while it
#   sees no access; a piece that is hit is cut again, so the search narrows by
#   a factor of EVIDENCE_PIECES per hit; a small object found (an accessed
#   region of at most EVIDENCE_PIECES pages) is held the same way;
# - accessed and unaccessed neighbours never merge, whatever the threshold (a
#   region hit once stays apart when another object's count raised the
#   threshold);
# - unaccessed regions are cut into more pieces for the next aggregation, up to
#   COLD_SHARE of max_nr_regions pieces in all, so samples cover cold memory
#   densely (the merge joins them back as the seed's does: the snapshots keep
#   the seed's few cold regions).  An unaccessed region is the cheap kind to
#   sample (no Accessed bit to clear), and the chance of a sample landing on a
#   small hot object grows with the number of regions covering it.
#
# Accessed regions that are not evidence are cut into the seed's 2 or 3 pieces
# (as every narrow cut, near-even at a random phase: `split_evenly`).

HOLD_AGGREGATIONS = 10
COOL_AGGREGATIONS = 10
EVIDENCE_PIECES = 16
# What bench/narrow --ablate switches off, to measure each rule's part.
UNACCESSED_APART = True  # accessed and unaccessed neighbours never merge
RELEASE_DIFFUSE = True  # searches hit in separate places end (release_diffuse)
HOLD_FOUND = True  # accessed regions of up to EVIDENCE_PIECES pages are held too
COLD_SHARE = 3  # cold pieces: up to max_nr_regions // COLD_SHARE
UPDATE_ROOM = 3


def narrow_merge_regions_of(t: Target, thres: int, sz_limit: int) -> None:
    """The seed's merge, except that held pieces without an access stay apart and
    accessed regions never join unaccessed ones; remembers the merged counts."""
    if t.nr_regions < 2:
        t.last_nr_accesses = t.nr_accesses.copy()
        return
    starts, ends, nrs = t.start.tolist(), t.end.tolist(), t.nr_accesses.tolist()
    if RELEASE_DIFFUSE:
        release_diffuse(t)
    # Whether region i may join the region before it, as far as does not depend on
    # the merges before: they touch, neither is a held piece waiting for its hit
    # (nothing merges into one, so the survivor before i is region i - 1 then), and
    # both or neither were accessed (a survivor keeps the accessedness of its parts).
    nr, waiting = t.nr_accesses, (t.hold > 0) & (t.nr_accesses == 0)
    may = np.zeros(len(starts), dtype=bool)
    may[1:] = (t.end[:-1] == t.start[1:]) & ~waiting[:-1] & ~waiting[1:]
    if UNACCESSED_APART:
        may[1:] &= (nr[:-1] == 0) == (nr[1:] == 0)
    may = may.tolist()
    keep = [0]
    for i in range(1, len(starts)):
        p = keep[-1]
        sz_p, sz_r = ends[p] - starts[p], ends[i] - starts[i]
        if may[i] and abs(nrs[p] - nrs[i]) <= thres and sz_p + sz_r <= sz_limit:
            nrs[p] = (nrs[p] * sz_p + nrs[i] * sz_r) // (sz_p + sz_r)
            ends[p] = ends[i]
        else:
            keep.append(i)
    if len(keep) < len(starts):
        idx = np.array(keep)
        sampling = t.sampling_addr[idx]
        # A merged region holds as long as its longest-held part; a cooling-off
        # (negative) hold spreads over what it merges with.
        lo, hi = np.minimum.reduceat(t.hold, idx), np.maximum.reduceat(t.hold, idx)
        t.set_regions(
            np.array(starts)[idx], np.array(ends)[idx], np.array(nrs, dtype=COUNT_DTYPE)[idx]
        )
        t.sampling_addr = sampling
        t.hold = np.where(lo < 0, lo, hi)
    t.last_nr_accesses = t.nr_accesses.copy()


def release_diffuse(t: Target) -> None:
    """End the searches whose pieces were hit in two or more separate places.

    The pieces of one evidence split are adjacent and share their hold.  A small
    object shows in one piece (or a run of adjacent ones); hits scattered over
    the pieces mean accesses spread thin over the whole region, which cutting
    finer would only fragment.  Such pieces cool off instead: a negative hold,
    counting up to 0, during which they merge as the seed's and are not
    searched again.
    """
    h, nr = t.hold, t.nr_accesses
    held = h > 0
    if not held.any():
        return
    same = np.zeros(len(h), dtype=bool)  # region i is in the family of region i - 1
    same[1:] = held[1:] & held[:-1] & (h[1:] == h[:-1]) & (t.end[:-1] == t.start[1:])
    family = np.cumsum(~same) - 1
    hit = nr > 0
    run_start = hit & held
    run_start[1:] &= ~(same[1:] & hit[:-1])
    runs = np.bincount(family, weights=run_start)
    diffuse = held & (runs[family] >= 2)
    h[diffuse] = -COOL_AGGREGATIONS


def _within(extra: np.ndarray, budget: int) -> np.ndarray:
    """`extra` pieces per region, cut to zero from the first region the budget runs out at."""
    return np.where(np.cumsum(extra) <= budget, extra, 0)


def narrow_split_counts(
    nr: np.ndarray, hold: np.ndarray, pages: np.ndarray, adjacent: np.ndarray,
    nr_subs: int, sparse_max: int, max_nr_regions: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces per region (>= 1) and which regions are evidence, within the budget.

    `adjacent[i]`: region i ends where region i + 1 starts (len n - 1).
    Evidence first, then accessed regions (the seed's `nr_subs`), then the cold
    ones share what is left of max_nr_regions // COLD_SHARE, by size.
    """
    n = len(nr)
    # An update may add a region for each of the three ranges before the next
    # merge: leave room for them (the seed's split leaves half of max free).
    budget = max_nr_regions - UPDATE_ROOM - n
    # An unaccessed neighbour, or none: the hit is alone there.
    quiet_left = np.ones(n, dtype=bool)
    quiet_right = np.ones(n, dtype=bool)
    quiet_left[1:] = ~adjacent | (nr[:-1] == 0)
    quiet_right[:-1] = ~adjacent | (nr[1:] == 0)
    splittable = pages > 2
    evidence = ((nr > 0) & (nr <= sparse_max) & quiet_left & quiet_right & (pages > 1)
                & (hold >= 0))
    accessed = (nr > 0) & ~evidence & splittable
    cold = (nr == 0) & (hold == 0) & splittable

    extra = np.zeros(n, dtype=np.int64)
    want = np.where(evidence, np.minimum(pages, EVIDENCE_PIECES) - 1, 0)
    extra += _within(want, budget)
    evidence &= extra > 0
    budget -= int(extra.sum())
    want = np.where(accessed, nr_subs - 1, 0)
    got = _within(want, max(budget, 0))
    extra += got
    budget -= int(got.sum())
    nr_cold = int(cold.sum())
    if nr_cold and budget > 0:
        cold_pieces = min(budget + nr_cold, max(max_nr_regions // COLD_SHARE, 2 * nr_cold))
        sizes = np.where(cold, pages, 0)
        piece = max(int(sizes.sum()) // cold_pieces, 1)
        want = np.where(cold, np.minimum(np.maximum(sizes // piece, 2), pages) - 1, 0)
        extra += _within(want, budget)
    return extra + 1, evidence


def split_evenly(
    t: Target, pieces: np.ndarray, rng: np.random.Generator, min_region: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boundaries of region i cut into `pieces[i]` near-even pieces at a random
    phase: (starts, ends, index of the region each piece comes from).

    A region of P minimum regions cut in k has its cuts at floor((j - 1/2 + u) P / k),
    j = 1..k-1, u uniform in [0, 1) (1/2 when P / k < 2): the pieces are P / k
    long except the first and last, which share 2 P / k, and the phase moves the
    cuts at every split, so no address stays a boundary.  Cuts are distinct and
    inside the region (for P / k >= 2 the first is at least P / k / 2 >= 1).
    """
    n = t.nr_regions
    k = pieces.astype(np.int64)
    cut_of = np.repeat(np.arange(n), k - 1)
    if len(cut_of) == 0:
        return t.start, t.end, np.arange(n)
    first = np.cumsum(k - 1) - (k - 1)
    j = np.arange(len(cut_of)) - first[cut_of] + 1  # 1..k-1 within each region
    pages = (t.end - t.start) // min_region
    step = pages / k
    # No phase for pieces under two minimum regions: the cuts fall on every
    # floor(j * step) then, distinct and inside the region.
    u = np.where(step < 2, 0.5, rng.random(n))
    offset = np.floor(step[cut_of] * (j - 0.5 + u[cut_of])).astype(np.int64)
    cut = t.start[cut_of] + offset * min_region
    new_starts = np.sort(np.concatenate((t.start, cut)))
    new_ends = np.sort(np.concatenate((t.end, cut)))
    parent = np.searchsorted(t.start, new_starts, side="right") - 1
    return new_starts, new_ends, parent


def narrow_split_regions(ctx: "Context") -> None:
    """Split for `narrow`: evidence into even pieces, held; accessed regions as the seed;
    cold regions into pieces covering cold memory densely.  Ages every hold by one."""
    targets = [t for t in ctx.targets if t.nr_regions]
    nr_regions = sum(t.nr_regions for t in targets)
    attrs = ctx.attrs
    nr_subs = 2
    if ctx.last_nr_regions == nr_regions and nr_regions < attrs.max_nr_regions // 3:
        nr_subs = 3
    ctx.last_nr_regions = nr_regions
    if not targets:
        return
    nr_samples = max(attrs.aggr_interval // attrs.sample_interval, 1)
    sparse_max = max(nr_samples // 4, 1)
    last = [t.last_nr_accesses if len(t.last_nr_accesses) == t.nr_regions
            else np.zeros(t.nr_regions, dtype=COUNT_DTYPE) for t in targets]
    nr = np.concatenate(last)
    hold = np.concatenate([t.hold for t in targets])
    pages = np.concatenate([(t.end - t.start) // ctx.min_region for t in targets])
    # Region i and i + 1 touch, within one target.
    adjacent = np.concatenate(
        [np.append(t.end[:-1] == t.start[1:], False) for t in targets])[:-1]
    pieces, evidence = narrow_split_counts(
        nr, hold, pages, adjacent, nr_subs, sparse_max, attrs.max_nr_regions)
    hold = hold - np.sign(hold).astype(hold.dtype)  # holds and cooling-offs run out
    # A small object found is held too: an aggregation in which a sparsely
    # accessed one happens to see no access does not merge it away.
    if HOLD_FOUND:
        hold[(nr > 0) & (pages <= EVIDENCE_PIECES) & (hold >= 0)] = HOLD_AGGREGATIONS
    hold[evidence] = HOLD_AGGREGATIONS
    base = 0
    for t in targets:
        n = t.nr_regions
        sl = slice(base, base + n)
        base += n
        if (pieces[sl] == 1).all():
            t.hold = hold[sl].astype(t.hold.dtype)
            continue
        new_starts, new_ends, parent = split_evenly(t, pieces[sl], ctx.rng, ctx.min_region)
        nrs = np.where(new_starts == t.start[parent], t.nr_accesses[parent], 0)
        t.set_regions(new_starts, new_ends, nrs)
        t.hold = hold[sl][parent].astype(t.hold.dtype)
