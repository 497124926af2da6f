"""What the virtual-address operations share (the seed's vaddr.c address-range logic).

A process's address space is mostly unmapped.  DAMON covers it with three
regions separated by the two biggest unmapped gaps (normally heap..mmap and
mmap..stack), splits them evenly into about `min_nr_regions` pieces at start,
and every update interval trims, extends or replaces its regions to fit the
new three regions.  damo also leaves out every other gap of at least the
mapped bytes over `min_nr_regions` (`big_gap`): this kernel places the heap up
to 1 GiB above the program (brk randomization), and a region over that gap
spends its samples on nothing.  `VaddrOperations` builds the sampling loop of
a virtual-address backend on these; a backend supplies the mappings of a
target and the young/old state of sampled addresses.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from damo.core.operations import Operations
from damo.core.target import ADDR_DTYPE, Target

if TYPE_CHECKING:
    from damo.core.context import Context

AddrRange = tuple[int, int]


def align_down(x: int, align: int) -> int:
    return x // align * align


def align_up(x: int, align: int) -> int:
    return -(-x // align) * align


def draw_sampling_addrs(rng: np.random.Generator, start: np.ndarray,
                        end: np.ndarray) -> np.ndarray:
    """`damon_rand(start, end)` for every region at once: uniform in `[start, end)`.

    A float draw scaled by the sizes costs a third of `rng.integers` with array
    bounds.  The offsets stay below the sizes: for a size under 2**53, u * size
    with u <= 1 - 2**-53 rounds to at most the next double below the size; and a
    double has 53 bits, so every page of a region up to 2**47 bytes gets its
    share to within a few parts per million.
    """
    offset = rng.random(len(start))
    offset *= end - start
    return start + offset.astype(ADDR_DTYPE)


def big_gap(mappings: Sequence[AddrRange], min_nr_regions: int) -> int:
    """The least gap left out besides the two biggest: the mapped bytes / min_nr_regions.

    A gap that size is a whole region's share of the address space or more
    (the merge's size limit, before the gap is left out).  The operations
    leave out at most min_nr_regions - 3 such gaps, the biggest: the ranges
    are then at most the regions DAMON keeps at least.
    """
    mapped = sum(e - s for s, e in mappings)
    return max(mapped // max(min_nr_regions, 1), 1)


def three_regions(mappings: Sequence[AddrRange], min_region: int,
                  min_gap: int = 0, max_ranges: int = 3) -> list[AddrRange] | None:
    """The three ranges covering `mappings` (sorted) except its two biggest gaps, and
    except the next biggest gaps of at least `min_gap` bytes when it is positive,
    up to `max_ranges` ranges in all (`big_gap`; a target of thousands of sparse
    mappings must not become thousands of regions).

    None when the mappings have fewer than two non-empty gaps.  Of equal
    gaps, the lower ones are taken, as the seed's scan keeps the first found.
    """
    if len(mappings) < 3:
        return None
    starts = np.array([m[0] for m in mappings], dtype=ADDR_DTYPE)
    ends = np.array([m[1] for m in mappings], dtype=ADDR_DTYPE)
    gaps = starts[1:] - ends[:-1]
    # A stable sort on descending size keeps address order among equals.
    order = np.argsort(-gaps, kind="stable")
    first, second = order[:2]
    if gaps[first] <= 0 or gaps[second] <= 0:
        return None
    more = order[2:max(max_ranges - 1, 2)] if min_gap > 0 else order[:0]
    cut = sorted({int(first), int(second), *(int(i) for i in more if gaps[i] >= min_gap)})
    lows = [0] + [i + 1 for i in cut]
    highs = cut + [len(mappings) - 1]
    return [(align_up(int(starts[lo]), min_region), align_up(int(ends[hi]), min_region))
            for lo, hi in zip(lows, highs, strict=True)]


def monitored_ranges(mappings: Sequence[AddrRange], min_region: int,
                     min_nr_regions: int) -> list[AddrRange] | None:
    """The ranges the operations cover: DAMON's three, less the big gaps (`big_gap`)."""
    return three_regions(mappings, min_region, big_gap(mappings, min_nr_regions),
                         max(min_nr_regions, 3))


def evenly_split_region(t: Target, index: int, nr_pieces: int, min_region: int) -> bool:
    """Split region `index` into `nr_pieces` equal pieces; the last takes the remainder.

    False, and nothing changes, when there is no such region, `nr_pieces` is
    zero, or a piece would be smaller than `min_region`.
    """
    if not 0 <= index < t.nr_regions or nr_pieces < 1:
        return False
    start, orig_end, _ = t.region(index)
    sz_piece = align_down((orig_end - start) // nr_pieces, min_region)
    if sz_piece == 0:
        return False
    # Pieces start every sz_piece while a whole piece still fits.
    piece_starts = np.arange(start, orig_end - sz_piece + 1, sz_piece, dtype=ADDR_DTYPE)
    piece_ends = piece_starts + sz_piece
    piece_ends[-1] = orig_end
    parent = np.arange(t.nr_regions + len(piece_starts) - 1)
    parent[index : index + len(piece_starts)] = index  # the pieces keep the region's history
    parent[index + len(piece_starts):] -= len(piece_starts) - 1
    t.set_regions(
        np.concatenate((t.start[:index], piece_starts, t.start[index + 1 :])),
        np.concatenate((t.end[:index], piece_ends, t.end[index + 1 :])),
        np.concatenate(
            (
                t.nr_accesses[:index],
                [t.nr_accesses[index]],
                np.zeros(len(piece_starts) - 1, dtype=t.nr_accesses.dtype),
                t.nr_accesses[index + 1 :],
            )
        ),
        parent=parent,
    )
    return True


def init_regions(
    t: Target, ranges: Sequence[AddrRange], min_nr_regions: int, min_region: int
) -> None:
    """Give `t` the three ranges as regions, each split evenly into pieces of
    about (total size / min_nr_regions)."""
    sz = sum(e - s for s, e in ranges)
    if min_nr_regions:
        sz //= min_nr_regions
    sz = max(sz, min_region)
    for s, e in ranges:
        t.add_region(s, e)
        evenly_split_region(t, t.nr_regions - 1, (e - s) // sz, min_region)


def _intersect(start: int, end: int, r: AddrRange) -> bool:
    return not (end <= r[0] or r[1] <= start)


def apply_three_regions(t: Target, bregions: Sequence[AddrRange], min_region: int) -> None:
    """Fit the regions of `t` to new ranges (the three regions, less big gaps).

    Regions outside all three go; in each big region the first and the last
    intersecting regions are stretched to its bounds and the holes between its
    regions get new ones; a big region no region touches gets a new region of
    its own.
    """
    # Each kept region keeps its history (the kernel's damon_set_regions()
    # resizes regions in place): its index goes along as `p`.
    regions = [
        [s, e, n, a, h, p]
        for p, (s, e, n, a, h) in enumerate(zip(
            t.start.tolist(),
            t.end.tolist(),
            t.nr_accesses.tolist(),
            t.sampling_addr.tolist(),
            t.hold.tolist(),
            strict=True,
        ))
        if any(_intersect(s, e, br) for br in bregions)
    ]
    for br in bregions:
        hits = [i for i, r in enumerate(regions) if _intersect(r[0], r[1], br)]
        if hits:
            regions[hits[0]][0] = align_down(br[0], min_region)
            regions[hits[-1]][1] = align_up(br[1], min_region)
            # Two ranges that became one (a gap no longer left out) leave a hole
            # between their regions: a new region fills it (damon_fill_regions_holes).
            for i in reversed(hits[:-1]):
                if regions[i][1] < regions[i + 1][0]:
                    hole = regions[i][1]
                    regions.insert(i + 1, [hole, regions[i + 1][0], 0, hole, 0, -1])
        else:
            at = next((i for i, r in enumerate(regions) if r[0] >= br[1]), len(regions))
            start = align_down(br[0], min_region)
            regions.insert(at, [start, align_up(br[1], min_region), 0, start, 0, -1])
    columns = list(zip(*regions, strict=True)) if regions else [(), (), (), (), (), ()]
    t.set_regions(*columns[:3], parent=np.array(columns[5], dtype=np.int64))
    t.sampling_addr = np.array(columns[3], dtype=ADDR_DTYPE)
    # A search in progress survives the update (the adjustment's own state).
    t.hold = np.array(columns[4], dtype=t.hold.dtype)


class VaddrOperations(Operations):
    """The sampling loop of a virtual-address backend.

    Subclasses give `mappings(target)` (sorted `(start, end)` pairs, or None
    when the target is gone), `mkold(target)` to clear the Accessed state of
    the pages at `target.sampling_addr`, and `young(target)`, a bool array
    telling which of them were accessed since (`sim`); or they replace
    `prepare_access_checks` and `check_accesses` as a whole (`vaddr`, whose
    BPF program draws, checks and counts in one pass).
    """

    def mappings(self, target: Target) -> Sequence[AddrRange] | None:
        raise NotImplementedError

    def mkold(self, target: Target) -> None:
        raise NotImplementedError

    def young(self, target: Target) -> np.ndarray:
        raise NotImplementedError

    def _monitored_ranges(self, ctx: "Context", target: Target) -> list[AddrRange] | None:
        maps = self.mappings(target)
        if maps is None:
            return None
        return monitored_ranges(maps, ctx.min_region, ctx.attrs.min_nr_regions)

    def init(self, ctx: "Context") -> None:
        for t in ctx.targets:
            # the user may set the target regions as they want
            if t.nr_regions:
                continue
            ranges = self._monitored_ranges(ctx, t)
            if ranges is not None:
                init_regions(t, ranges, ctx.attrs.min_nr_regions, ctx.min_region)

    def update(self, ctx: "Context") -> None:
        for t in ctx.targets:
            ranges = self._monitored_ranges(ctx, t)
            if ranges is not None:
                apply_three_regions(t, ranges, ctx.min_region)

    def prepare_access_checks(self, ctx: "Context") -> None:
        for t in ctx.targets:
            if t.nr_regions:
                t.sampling_addr = draw_sampling_addrs(ctx.rng, t.start, t.end)
                self.mkold(t)

    def check_accesses(self, ctx: "Context") -> int:
        max_nr_accesses = 0
        for t in ctx.targets:
            if t.nr_regions:
                t.nr_accesses += self.young(t)
                max_nr_accesses = max(max_nr_accesses, int(t.nr_accesses.max()))
        return max_nr_accesses
