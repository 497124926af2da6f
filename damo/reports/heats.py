"""`damo report heats`: access frequency over time x address, and the guide to pick an area.

Without an address range the map shows the region union (monitored area)
that holds the accesses, not merely the biggest one: a process's heap area
may be large and idle while its mmap area holds every access.

A cell of the map is the time-by-address weighted mean of ``nr_accesses`` over
its area; address space that no region covers counts as 0.  The map is built
with numpy: per snapshot, the integral of ``nr_accesses`` over each address
cell (difference arrays over the cells a region spans, plus its partial end
cells), then weighted by how long the snapshot overlaps each time cell.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from damo.errors import UsageError
from damo.records.snapshots import Snapshots, flat_ranges

DEFAULT_RESOLUTION = (500, 500)
# Snapshots x address cells held at once while building the map.
CHUNK_CELLS = 1 << 22


@dataclass
class Guide:
    """Where one target has data: its time span and the unions of its regions."""

    target_id: int
    start_ns: int
    end_ns: int
    regions: list[tuple[int, int]]

    @property
    def total_space(self) -> int:
        return sum(end - start for start, end in self.regions)

    def largest_region(self) -> tuple[int, int]:
        return max(self.regions, key=lambda r: r[1] - r[0])

    def text(self) -> str:
        lines = [
            f"target_id:{self.target_id}",
            f"time: {self.start_ns}-{self.end_ns} ({self.end_ns - self.start_ns})",
        ]
        for k, (start, end) in enumerate(self.regions):
            lines.append(f"region\t{k:2d}: {start:020d}-{end:020d} ({end - start})")
        return "\n".join(lines)


def guides(snaps: Snapshots) -> list[Guide]:
    """One guide per target, the target covering the most address space first."""
    result = []
    for tid in snaps.target_ids():
        indices = snaps.of_target(tid)
        flat, _ = snaps.region_index(indices)
        order = np.argsort(snaps.start[flat], kind="stable")
        starts = snaps.start[flat][order]
        ends = snaps.end[flat][order]
        # A union ends where no earlier region reaches the next region's start.
        reach = np.maximum.accumulate(ends)
        breaks = np.flatnonzero(starts[1:] > reach[:-1]) + 1
        first = np.concatenate([[0], breaks])
        last = np.concatenate([breaks - 1, [len(starts) - 1]])
        regions = list(zip(starts[first].tolist(), reach[last].tolist(), strict=True))
        result.append(
            Guide(tid, int(snaps.end_ns[indices[0]]), int(snaps.end_ns[indices[-1]]), regions)
        )
    result.sort(key=lambda g: g.total_space, reverse=True)
    return result


def guide_text(snaps: Snapshots) -> str:
    return "".join(g.text() + "\n" for g in guides(snaps))


def area_accesses(snaps: Snapshots, guide: Guide, tmin: int, tmax: int) -> np.ndarray:
    """Per region union of `guide`: its regions' size x nr_accesses x time in [tmin, tmax)."""
    indices = snaps.of_target(guide.target_id)
    t0 = np.maximum(snaps.start_ns(indices), tmin)
    t1 = np.minimum(snaps.end_ns[indices], tmax)
    flat, owner = snaps.region_index(indices)
    dt = np.maximum(t1 - t0, 0).astype(np.float64)[owner]
    weight = (snaps.end[flat] - snaps.start[flat]).astype(np.float64) \
        * snaps.nr_accesses[flat] * dt
    union_starts = np.array([start for start, _ in guide.regions], dtype=np.uint64)
    union = np.searchsorted(union_starts, snaps.start[flat], side="right") - 1
    return np.bincount(union, weight, minlength=len(guide.regions))


def busiest_region(snaps: Snapshots, guide: Guide, tmin: int, tmax: int) -> tuple[int, int]:
    """The region union holding the accesses (the most size x nr_accesses x time).

    Where nothing was accessed, the largest one, as DAMON's tool picks.
    """
    accesses = area_accesses(snaps, guide, tmin, tmax)
    if not accesses.any():
        return guide.largest_region()
    return guide.regions[int(np.argmax(accesses))]


@dataclass
class Area:
    """The part of one target's time x address space a map shows, and its cells."""

    target_id: int
    tmin: int
    tres: int
    tunit: int
    amin: int
    ares: int
    aunit: int
    union: int | None = None  # the guide's region union it shows, when it shows one

    @property
    def tmax(self) -> int:
        return self.tmin + self.tunit * self.tres

    @property
    def amax(self) -> int:
        return self.amin + self.aunit * self.ares


def guide_of(snaps: Snapshots, target_id: int | None) -> Guide:
    """The guide of `target_id`, or of the first target of the guide."""
    all_guides = guides(snaps)
    if target_id is None:
        return all_guides[0]
    matching = [g for g in all_guides if g.target_id == target_id]
    if not matching:
        known = ", ".join(str(g.target_id) for g in all_guides)
        raise UsageError(f"no target {target_id} in the record (targets: {known})")
    return matching[0]


def area(
    snaps: Snapshots,
    target_id: int | None = None,
    resolution: tuple[int, int] = DEFAULT_RESOLUTION,
    time_range: tuple[int | None, int | None] = (None, None),
    addr_range: tuple[int | None, int | None] = (None, None),
    union: int | None = None,
) -> Area:
    """Fill what is not given from the guide.

    The target defaults to the first of the guide, the time range to its first
    to last snapshot, the address range to region union number `union` of the
    guide or else the one holding the accesses (`busiest_region`).  The
    maxima are then shrunk so each cell is a whole number of ns and bytes.
    """
    guide = guide_of(snaps, target_id)
    tres, ares = resolution
    if tres <= 0 or ares <= 0:
        raise UsageError(f"resolution must be positive, got {tres} x {ares}")
    tmin = guide.start_ns if time_range[0] is None else time_range[0]
    tmax = guide.end_ns if time_range[1] is None else time_range[1]
    chosen = None
    if union is not None:
        if not 0 <= union < len(guide.regions):
            raise UsageError(f"--area: target {guide.target_id} has region unions 0-"
                             f"{len(guide.regions) - 1} (see --guide), not {union}")
        chosen = guide.regions[union]
    elif None in addr_range:
        chosen = busiest_region(snaps, guide, tmin, tmax)
    amin = chosen[0] if addr_range[0] is None else addr_range[0]
    amax = chosen[1] if addr_range[1] is None else addr_range[1]
    if not 0 <= amin < amax < 1 << 64:
        raise UsageError(f"address range {amin}-{amax} is not within 0-{(1 << 64) - 1}")
    tunit = (tmax - tmin) // tres
    aunit = (amax - amin) // ares
    if tunit <= 0:
        raise UsageError(
            f"time range {tmin}-{tmax} is shorter than {tres} ns (the time resolution)"
        )
    if aunit <= 0:
        raise UsageError(
            f"address range {amin}-{amax} is smaller than {ares} bytes (the address resolution)"
        )
    shown = guide.regions.index(chosen) \
        if chosen is not None and addr_range == (None, None) else None
    return Area(guide.target_id, tmin, tres, tunit, amin, ares, aunit, shown)


def _address_integrals(snaps: Snapshots, indices: np.ndarray, a: Area) -> np.ndarray:
    """Integral of nr_accesses over each address cell, per snapshot: (len(indices), ares)."""
    n, cols = len(indices), a.ares + 1
    flat, owner = snaps.region_index(indices)
    lo, hi = np.uint64(a.amin), np.uint64(a.amax)
    x0 = np.clip(snaps.start[flat], lo, hi) - lo
    x1 = np.clip(snaps.end[flat], lo, hi) - lo
    inside = x1 > x0
    x0, x1, owner = x0[inside], x1[inside], owner[inside]
    nr = snaps.nr_accesses[flat][inside].astype(np.float64)
    unit = np.uint64(a.aunit)
    c0 = x0 // unit
    c1 = (x1 - np.uint64(1)) // unit
    single = c0 == c1
    multi = ~single
    base = owner * cols
    # Whole-or-partial first and last cells go straight in ...
    direct_at = np.concatenate([
        base[single] + c0[single].astype(np.int64),
        base[multi] + c0[multi].astype(np.int64),
        base[multi] + c1[multi].astype(np.int64),
    ])
    direct_w = np.concatenate([
        nr[single] * (x1[single] - x0[single]).astype(np.float64),
        nr[multi] * ((c0[multi] + np.uint64(1)) * unit - x0[multi]).astype(np.float64),
        nr[multi] * (x1[multi] - c1[multi] * unit).astype(np.float64),
    ])
    # ... and the full cells between them as a difference array.  The sums are
    # whole numbers, exact in float64 below 2**53 (nr_accesses x cell bytes).
    full = nr[multi] * float(a.aunit)
    diff_at = np.concatenate([
        base[multi] + c0[multi].astype(np.int64) + 1,
        base[multi] + c1[multi].astype(np.int64),
    ])
    diff_w = np.concatenate([full, -full])
    direct = np.bincount(direct_at, direct_w, minlength=n * cols).reshape(n, cols)
    diff = np.bincount(diff_at, diff_w, minlength=n * cols).reshape(n, cols)
    return (direct + np.cumsum(diff, axis=1))[:, : a.ares]


def heat_matrix(snaps: Snapshots, a: Area) -> np.ndarray:
    """The map: float64 array of shape (tres, ares), time-major."""
    heat = np.zeros((a.tres, a.ares), dtype=np.float64)
    indices = snaps.of_target(a.target_id)
    t0 = np.maximum(snaps.start_ns(indices), a.tmin)
    t1 = np.minimum(snaps.end_ns[indices], a.tmax)
    overlapping = np.flatnonzero(t1 > t0)
    if not len(overlapping):
        return heat
    t0, t1 = t0[overlapping], t1[overlapping]
    # Split each snapshot's time span over the rows it overlaps.
    rows, piece_owner = flat_ranges((t0 - a.tmin) // a.tunit, (t1 - 1 - a.tmin) // a.tunit + 1)
    row_start = a.tmin + rows * a.tunit
    duration = (
        np.minimum(t1[piece_owner], row_start + a.tunit) - np.maximum(t0[piece_owner], row_start)
    ).astype(np.float64)

    chunk = max(1, CHUNK_CELLS // (a.ares + 1))
    for first in range(0, len(overlapping), chunk):
        last = min(first + chunk, len(overlapping))
        integrals = _address_integrals(snaps, indices[overlapping[first:last]], a)
        sel = (piece_owner >= first) & (piece_owner < last)
        contrib = integrals[piece_owner[sel] - first] * duration[sel, None]
        # Pieces are in time order, so equal rows are adjacent.
        piece_rows = rows[sel]
        starts = np.flatnonzero(np.diff(piece_rows, prepend=-1))
        heat[piece_rows[starts]] += np.add.reduceat(contrib, starts, axis=0)
    heat /= float(a.tunit) * float(a.aunit)
    return heat


def heats_text(
    heat: np.ndarray, a: Area, abs_time: bool = False, abs_addr: bool = False
) -> Iterator[str]:
    """``<time>\\t<address>\\t<heat>`` lines, time-major, in chunks of rows."""
    t_base = 0 if abs_time else a.tmin
    a_base = 0 if abs_addr else a.amin
    # One %-template per row, with the time put in by str.replace: the float
    # formatting then runs in C, one call per row.
    template = "".join(f"\0\t{a.amin + j * a.aunit - a_base}\t%r\n" for j in range(a.ares))
    rows_per_chunk = max(1, 100_000 // a.ares)
    for first in range(0, a.tres, rows_per_chunk):
        last = min(first + rows_per_chunk, a.tres)
        yield "".join(
            template.replace("\0", str(a.tmin + i * a.tunit - t_base)) % tuple(row)
            for i, row in zip(range(first, last), heat[first:last].tolist(), strict=True)
        )
