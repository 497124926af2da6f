"""`narrow`, damo's default region adjustment (`--adjust narrow`).

The seed's merge and split (damo.core.adjust) find a small hot object only by
luck; `narrow` keeps the evidence of a sparse hit until the search has
narrowed in on it.  It merges through the seed's loop
(`damo.core.adjust.merge_regions`) with rules that keep some neighbours apart,
and splits by the seed's rule of 2 or 3 pieces (`nr_subregions`) except where
its own rules cut finer.  Its switches are a `NarrowSettings`, so a benchmark
(bench/narrow --ablate) measures each rule's part without rewriting globals;
docs/design.md argues each with measurements.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from damo.core import adjust
from damo.core.adjust import merge_regions, nr_subregions
from damo.core.target import COUNT_DTYPE, Target

if TYPE_CHECKING:
    from damo.core.context import Context


# The rules.
#
# The seed's merge and split find a small hot object only by luck: a sample
# lands on it rarely, its region's split pieces get no second hit within the
# next aggregation, and the merge joins them back before the search narrows.
# `narrow` changes three things, on per-aggregation counts only (nr_accesses at
# aggregation time, and a per-region `hold` kept across aggregations):
#
# - evidence is kept: a region with a sparse hit (a few samples of an
#   aggregation, neighbours unaccessed) is cut into up to evidence_pieces even
#   pieces, each held out of merges for hold_aggregations aggregations while it
#   sees no access; a piece that is hit is cut again, so the search narrows by
#   a factor of evidence_pieces per hit; a small object found (an accessed
#   region of at most evidence_pieces pages) is held the same way;
# - accessed and unaccessed neighbours never merge, whatever the threshold (a
#   region hit once stays apart when another object's count raised the
#   threshold);
# - unaccessed regions are cut into more pieces for the next aggregation, up to
#   1 / cold_share of max_nr_regions pieces in all, so samples cover cold memory
#   densely (the merge joins them back as the seed's does: the snapshots keep
#   the seed's few cold regions).  An unaccessed region is the cheap kind to
#   sample (no Accessed bit to clear), and the chance of a sample landing on a
#   small hot object grows with the number of regions covering it.
#
# Accessed regions that are not evidence are cut into the seed's 2 or 3 pieces
# (as every narrow cut, near-even at a random phase: `split_evenly`).
#
# - the edge of a fully accessed region is probed: an unaccessed neighbour gets
#   thin pieces at their shared boundary (`edge_cuts`).  Merge and split move a
#   boundary only when a sample lands on the part of the hot object left in the
#   cold neighbour, whose pieces are cold memory's share (12-19 MiB beside
#   GiB of cold mapped memory): at the CPU budget's 3 samples an aggregation
#   such a tail stayed unfound for whole 8 s phases (docs/sampler.md).


@dataclass(frozen=True)
class NarrowSettings:
    """narrow's constants and switches (bench/narrow --ablate NAME=VALUE sets them)."""

    hold_aggregations: int = 10
    cool_aggregations: int = 10
    evidence_pieces: int = 16
    unaccessed_apart: bool = True  # accessed and unaccessed neighbours never merge
    release_diffuse: bool = True  # searches hit in separate places end (release_diffuse)
    hold_found: bool = True  # accessed regions of up to evidence_pieces pages are held too
    cold_share: int = 3  # cold pieces: up to max_nr_regions // cold_share
    update_room: int = 3  # regions an update may add before the next merge
    # Pieces of an accessed region whose count is neither sparse nor full and
    # differs much from a neighbour's (it straddles a boundary of the access
    # pattern): 0 for the seed's 2 or 3.
    straddle_pieces: int = 8
    # Neighbours whose counts in the last aggregation were far apart (more
    # than half the highest count) do not merge on one alike aggregation: 0
    # merges on the current counts alone, as the seed's.
    changed_apart: bool = True
    # Cooling-off pieces (a diffuse search released) merge with their
    # neighbours as the seed's, accessed or not: unaccessed_apart spares them.
    cooling_merges: bool = False
    # Cuts into an unaccessed region at these fractions of its fully accessed
    # neighbour's size from their shared boundary (`edge_cuts`): () for none;
    # only beside neighbours of at least edge_min_pages (a smaller object's
    # tail is a few pages, and a real process has many small hot regions).
    edge_probes: tuple[int, ...] = (8,)
    edge_min_pages: int = 64
    edge_ratio: int = 8  # and only into a cold neighbour this many times its size


DEFAULT = NarrowSettings()


def narrow_merge_regions_of(t: Target, thres: int, sz_limit: int,
                            settings: NarrowSettings = DEFAULT) -> None:
    """The seed's merge, except that held pieces without an access stay apart and
    accessed regions never join unaccessed ones; remembers the merged counts.

    Before the merge the searches hit in separate places end (`release_diffuse`).
    Region i may join the region before it, as far as does not depend on the
    merges before, when neither is a held piece waiting for its hit (nothing
    merges into one, so the survivor before i is region i - 1 then), both or
    neither were accessed (a survivor keeps the accessedness of its parts;
    `unaccessed_apart`; with `cooling_merges`, not where either cools off),
    and their counts in the last aggregation were not far
    apart (`changed_apart`).  A merged region holds as long as its
    longest-held part; a cooling-off (negative) hold spreads over what it
    merges with.

    Far apart is more than half the highest count (`thres` is a tenth of it),
    beyond what a few checks' noise moves a count.  An aggregation that spans
    a change of the access pattern sees the old hot memory and the new both
    partly accessed, with alike counts: merged on those, a resolved layout
    collapses and must be found again, an aggregation per halving.  Regions
    far apart the aggregation before keep apart for this one; alike again in
    the next, they merge then.  Split pieces share their region's last count,
    so a split's pieces merge back as before.
    """
    n = t.nr_regions
    if n < 2:
        t.last_nr_accesses = t.nr_accesses.copy()
        return
    hold = t.hold
    last = t.last_nr_accesses if settings.changed_apart and len(t.last_nr_accesses) == n \
        else None
    may = np.empty(n, dtype=bool)
    adjust.loops().narrow_may_merge(t.start, t.end, t.nr_accesses, hold, last, thres,
                          settings.cool_aggregations if settings.release_diffuse else -1,
                          (2 if settings.cooling_merges else 1) if settings.unaccessed_apart
                          else 0, may)
    idx = merge_regions(t, thres, sz_limit, may)
    if idx is not None:
        t.hold = np.empty(len(idx), dtype=hold.dtype)
        adjust.loops().narrow_merged_holds(hold, idx, t.hold)
    t.last_nr_accesses = t.nr_accesses.copy()


def release_diffuse(t: Target, settings: NarrowSettings = DEFAULT) -> None:
    """End the searches whose pieces were hit in two or more separate places.

    The pieces of one evidence split are adjacent and share their hold.  A small
    object shows in one piece (or a run of adjacent ones); hits scattered over
    the pieces mean accesses spread thin over the whole region, which cutting
    finer would only fragment.  Such pieces cool off instead: a negative hold,
    counting up to 0, during which they merge as the seed's and are not
    searched again.  (`narrow_merge_regions_of` runs it first.)
    """
    adjust.loops().narrow_may_merge(t.start, t.end, t.nr_accesses, t.hold, None, 0,
                          settings.cool_aggregations, 0, np.empty(t.nr_regions, dtype=bool))


def split_plan(
    nr: np.ndarray, hold: np.ndarray, pages: np.ndarray, adjacent: np.ndarray,
    nr_subs: int, sparse_max: int, max_nr_regions: int, settings: NarrowSettings = DEFAULT,
    full: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces per region (>= 1), which regions are evidence, within the budget, and the
    holds for the next aggregation.

    `adjacent[i]`: region i ends where region i + 1 starts (len n - 1).
    Evidence first: a hit of at most `sparse_max` counts with no accessed
    neighbour touching it, not cooling off, into up to evidence_pieces.  Then
    accessed regions: the seed's `nr_subs`, or up to straddle_pieces when
    neither sparse nor `full` and beside a region counted far from it (a
    boundary of the access pattern inside; alike neighbours mean memory
    accessed in part throughout: cutting it finer would find nothing).  Then
    the cold ones share what is left of max_nr_regions // cold_share, by
    size.  An update may add a region for each of the three ranges before the
    next merge: update_room of max_nr_regions stays free.  Each kind's extra
    pieces are granted in address order until the budget runs out.  Holds
    and cooling-offs run out by one; evidence, and with hold_found an
    accessed region of at most evidence_pieces pages, is held for
    hold_aggregations.  (C: damo/core/_adjust.c; it runs every aggregation,
    where each numpy call costs more than its work.)
    """
    n = len(nr)
    pieces, evidence = np.empty(n, dtype=np.int64), np.empty(n, dtype=bool)
    new_hold = np.empty(n, dtype=np.int32)
    adjust.loops().narrow_split_plan(
        np.ascontiguousarray(nr, dtype=np.int64), np.ascontiguousarray(hold, dtype=np.int32),
        np.ascontiguousarray(pages, dtype=np.int64), np.ascontiguousarray(adjacent, dtype=bool),
        nr_subs, sparse_max, max_nr_regions, -1 if full is None else full,
        settings.evidence_pieces, settings.cold_share, settings.update_room,
        settings.straddle_pieces, settings.hold_aggregations, int(settings.hold_found),
        pieces, evidence, new_hold)
    return pieces, evidence, new_hold


def narrow_split_counts(
    nr: np.ndarray, hold: np.ndarray, pages: np.ndarray, adjacent: np.ndarray,
    nr_subs: int, sparse_max: int, max_nr_regions: int, settings: NarrowSettings = DEFAULT,
    full: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces per region (>= 1) and which regions are evidence (`split_plan`)."""
    pieces, evidence, _ = split_plan(nr, hold, pages, adjacent, nr_subs, sparse_max,
                                     max_nr_regions, settings, full)
    return pieces, evidence


def edge_cuts(start: np.ndarray, end: np.ndarray, full: np.ndarray, cold: np.ndarray,
              min_region: int, fractions: tuple[int, ...], room: int,
              min_pages: int = 1, ratio: int = 1) -> np.ndarray:
    """Addresses to cut the `cold` regions at, beside a `full` neighbour (accessed at
    nearly every sample): at its size / f from their shared boundary, for each f of
    `fractions` (at most `room` cuts), if it has at least `min_pages` pages and
    the cold region is at least `ratio` times its size.

    Only beside full regions: a region accessed in part (diffuse access, or a
    straddle, which rule 4 cuts finer) would spread probes all over thinly
    accessed memory.  Only into a much larger cold region: a neighbour of a
    like size is sampled near the boundary often enough (many's interleaved
    1 MiB regions would each get probes, and their cost).  A cut lies strictly
    inside its region (a region too small for it gets none) and off every
    boundary; the result is sorted and unique.
    The pieces left cold merge back with the rest of their region.
    """
    n = len(start)
    if n < 2 or not fractions or room <= 0:
        return np.zeros(0, dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    size = end - start
    hit = full & (size >= min_pages * min_region)
    if not hit.any():  # (it runs every aggregation: the common case returns early)
        return none
    touch = end[:-1] == start[1:]
    # Region i + 1 cold after an accessed region i (its start probed), and region i
    # cold before an accessed region i + 1 (its end probed), ratio x its size or more.
    after = np.flatnonzero(touch & hit[:-1] & cold[1:] & (size[:-1] * ratio <= size[1:])) + 1
    before = np.flatnonzero(touch & cold[:-1] & hit[1:] & (size[1:] * ratio <= size[:-1]))
    if not len(after) and not len(before):
        return none
    cuts = []
    for f in fractions:
        d = (end[after - 1] - start[after - 1]) // f // min_region * min_region
        cuts.append(np.where(d > 0, start[after] + d, 0))
        d = (end[before + 1] - start[before + 1]) // f // min_region * min_region
        cuts.append(np.where(d > 0, end[before] - d, 0))
    idx = np.concatenate([after, before] * len(fractions))
    cut = np.concatenate(cuts)
    inside = (cut > start[idx]) & (cut < end[idx])
    cut = np.unique(cut[inside])
    return cut[:room]


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
    k = pieces.astype(np.int64, copy=False)
    total = int(k.sum())
    if total == n:
        return t.start, t.end, np.arange(n)
    phase = rng.random(n)
    out = np.empty((3, total), dtype=np.int64)  # damo/core/_adjust.c cuts
    if not adjust.loops().split_evenly(adjust._int64(t.start), adjust._int64(t.end), k, phase,
                                       min_region, out[0], out[1], out[2]):
        raise ValueError("split_evenly: a region cut into more pieces than it has minimum "
                         "regions, or regions out of address order")
    return out[0], out[1], out[2]


def narrow_split_regions(ctx: "Context", settings: NarrowSettings = DEFAULT) -> None:
    """Split for `narrow`: evidence into even pieces, held; accessed regions as the seed;
    cold regions into pieces covering cold memory densely.  Ages every hold by one."""
    targets = [t for t in ctx.targets if t.nr_regions]
    nr_subs = nr_subregions(ctx, sum(t.nr_regions for t in targets))
    if not targets:
        return
    attrs = ctx.attrs
    # Counts are in units of the nominal samples (a CPU budget may take fewer,
    # damo.ops.vaddr.budget): the ratio of the intervals before its scaling.
    units = ctx.base_attrs
    nr_samples = max(units.aggr_interval // units.sample_interval, 1)
    sparse_max = max(nr_samples // 4, 1)
    last = [t.last_nr_accesses if len(t.last_nr_accesses) == t.nr_regions
            else np.zeros(t.nr_regions, dtype=COUNT_DTYPE) for t in targets]
    nr = _joined(last)
    hold = _joined([t.hold for t in targets])
    pages = _joined([(t.end - t.start) // ctx.min_region for t in targets])
    # Region i and i + 1 touch, within one target.
    adjacent = targets[0].end[:-1] == targets[0].start[1:] if len(targets) == 1 else \
        np.concatenate([np.append(t.end[:-1] == t.start[1:], False) for t in targets])[:-1]
    full = nr_samples * 9 // 10
    pieces, _, hold = split_plan(nr, hold, pages, adjacent, nr_subs, sparse_max,
                                 attrs.max_nr_regions, settings, full=full)
    room = attrs.max_nr_regions - settings.update_room - int(pieces.sum())
    base = 0
    for t in targets:
        n = t.nr_regions
        sl = slice(base, base + n)
        base += n
        cuts = edge_cuts(t.start, t.end, nr[sl] >= full, (nr[sl] == 0) & (hold[sl] <= 0),
                         ctx.min_region, settings.edge_probes, room, settings.edge_min_pages,
                         settings.edge_ratio)
        room -= len(cuts)
        if (pieces[sl] == 1).all() and not len(cuts):
            t.hold = hold[sl].astype(t.hold.dtype)
            continue
        new_starts, new_ends, parent = split_evenly(t, pieces[sl], ctx.rng, ctx.min_region)
        if len(cuts):
            cuts = cuts[~np.isin(cuts, new_starts)]
            new_starts = np.sort(np.concatenate((new_starts, cuts)))
            new_ends = np.sort(np.concatenate((new_ends, cuts)))
            parent = np.searchsorted(t.start, new_starts, side="right") - 1
        nrs = np.where(new_starts == t.start[parent], t.nr_accesses[parent], 0)
        t.set_regions(new_starts, new_ends, nrs, parent=parent)
        t.hold = hold[sl][parent].astype(t.hold.dtype, copy=False)


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The targets' arrays end to end (one target's as it is: nothing here writes to it)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


class Narrow:
    """The `narrow` adjustment with its settings (`--adjust narrow`, the default)."""

    name = "narrow"

    def __init__(self, settings: NarrowSettings = DEFAULT):
        self.settings = settings

    def merge(self, t: Target, thres: int, sz_limit: int) -> None:
        narrow_merge_regions_of(t, thres, sz_limit, self.settings)

    def split(self, ctx: "Context") -> None:
        narrow_split_regions(ctx, self.settings)
