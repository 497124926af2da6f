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
from typing import Any

import numpy as np

from damo.errors import UsageError
from damo.records.snapshots import Snapshots, flat_ranges
from damo.reports import spans

DEFAULT_RESOLUTION = (500, 500)
# Snapshots x address cells held at once while building the map.
CHUNK_CELLS = 1 << 22


@dataclass
class GuideArea:
    """One union of a target's regions: its address range, when it held regions, its accesses.

    ``accesses`` is the sum over snapshots of each region's size times its
    ``nr_accesses`` (bytes x accesses per aggregation), a float.
    ``timed_accesses`` weighs each snapshot by the time it covers within the
    guide's span (first to last snapshot): what `area_accesses` gives for
    that span, so choosing the default area needs no pass of its own.
    """

    start: int
    end: int
    first_ns: int
    last_ns: int
    accesses: float
    timed_accesses: float = 0.0


@dataclass
class Guide:
    """Where one target has data: its time span and the unions of its regions."""

    target_id: int
    start_ns: int
    end_ns: int
    areas: list[GuideArea]
    nr_snapshots: int = 0
    # No snapshot ends after the last one, so `timed_accesses` needs no clipping at the end.
    ends_last: bool = True

    @property
    def regions(self) -> list[tuple[int, int]]:
        return [(x.start, x.end) for x in self.areas]

    @property
    def total_space(self) -> int:
        return sum(x.end - x.start for x in self.areas)

    @property
    def span(self) -> spans.Span:
        return spans.Span(self.target_id, self.nr_snapshots, self.start_ns, self.end_ns)

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


class _Unions:
    """A target's region unions so far, as parallel arrays, merged chunk by chunk."""

    def __init__(self) -> None:
        self.start = np.zeros(0, dtype=np.uint64)
        self.end = np.zeros(0, dtype=np.uint64)
        self.first = np.zeros(0, dtype=np.int64)
        self.last = np.zeros(0, dtype=np.int64)
        self.accesses = np.zeros(0, dtype=np.float64)
        self.timed = np.zeros(0, dtype=np.float64)

    def add(self, start: np.ndarray, end: np.ndarray, when: np.ndarray,
            accesses: np.ndarray, timed: np.ndarray) -> None:
        """Merge regions (or unions: a union is never split again) into the unions."""
        starts = np.concatenate([self.start, start])
        ends = np.concatenate([self.end, end])
        s, e = np.sort(starts), np.sort(ends)
        # A union ends at the k-th smallest end when exactly k + 1 regions start
        # at or before it (a region starting where another ends joins it).
        closes = np.flatnonzero(np.searchsorted(s, e, side="right") == np.arange(1, len(e) + 1))
        self.end = e[closes]
        self.start = np.concatenate([s[:1], s[closes[:-1] + 1]])
        group = np.searchsorted(self.start, starts, side="right") - 1
        n = len(self.start)
        first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(first, group, np.concatenate([self.first, when]))
        np.maximum.at(last, group, np.concatenate([self.last, when]))
        self.first, self.last = first, last
        self.accesses = np.bincount(group, np.concatenate([self.accesses, accesses]),
                                    minlength=n)
        self.timed = np.bincount(group, np.concatenate([self.timed, timed]), minlength=n)

    def areas(self) -> list[GuideArea]:
        return [GuideArea(*row) for row in zip(
            self.start.tolist(), self.end.tolist(), self.first.tolist(), self.last.tolist(),
            self.accesses.tolist(), self.timed.tolist(), strict=True)]


def _runs(start: np.ndarray, end: np.ndarray, when: np.ndarray, weight: np.ndarray,
          timed: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, ...]:
    """The same regions as fewer ranges: runs of touching regions of one snapshot joined.

    DAMON writes a snapshot's regions in address order, mostly back to back,
    so this leaves a few ranges a snapshot for `_Unions.add` to sort.  Regions
    out of order are passed on as they are.
    """
    n = len(start)
    if n < 2 or bool((start[1:] < start[:-1])[owner[1:] == owner[:-1]].any()):
        return start, end, when, weight, timed
    # A run goes on while the next region of the same snapshot starts by the
    # furthest end so far (regions in address order: the previous one's end).
    joins = (owner[1:] == owner[:-1]) & (start[1:] <= end[:-1])
    heads = np.flatnonzero(np.concatenate([[True], ~joins]))
    return (start[heads], np.maximum.reduceat(end, heads), when[heads],
            np.add.reduceat(weight, heads), np.add.reduceat(timed, heads))


def guides(source: Any) -> list[Guide]:
    """One guide per target, the target covering the most address space first.

    One pass over the chunks of `source` (a `RecordFile` or a `Snapshots`);
    what is kept is the unions, not the regions.
    """
    found: dict[int, tuple[spans.Span, _Unions]] = {}
    max_end: dict[int, int] = {}
    for chunk in source.chunks():
        snaps = chunk.columns()
        for tid in snaps.target_ids():
            indices = snaps.of_target(tid)
            ends = snaps.end_ns[indices]
            if tid not in found:
                found[tid] = (spans.Span(tid, 0, int(ends[0]), 0), _Unions())
            span, unions = found[tid]
            # A snapshot covers the time since the previous one; the first one
            # starts before the span (its time in the span is 0).
            starts = np.empty_like(ends)
            starts[0] = span.last_ns if span.nr_snapshots else span.first_ns
            starts[1:] = ends[:-1]
            covered = np.maximum(ends - np.maximum(starts, span.first_ns), 0).astype(np.float64)
            span.nr_snapshots += len(indices)
            span.last_ns = int(ends[-1])
            max_end[tid] = max(max_end.get(tid, span.last_ns), int(ends.max()))
            flat, owner = snaps.region_index(indices)
            start, end = snaps.start[flat], snaps.end[flat]
            weight = (end - start).astype(np.float64) * snaps.nr_accesses[flat]
            unions.add(*_runs(start, end, ends[owner], weight, weight * covered[owner], owner))
    result = [Guide(tid, span.first_ns, span.last_ns, unions.areas(), span.nr_snapshots,
                    max_end[tid] <= span.last_ns)
              for tid, (span, unions) in found.items()]
    result.sort(key=lambda g: g.total_space, reverse=True)
    return result


def guide_text(all_guides: list[Guide]) -> str:
    return "".join(g.text() + "\n" for g in all_guides)


def guide_json(all_guides: list[Guide]) -> str:
    """The guide as one JSON object (docs/reports.md, "JSON output")."""
    import json

    return json.dumps({
        "report": "heats_guide",
        "version": 1,
        "targets": [{
            "target_id": g.target_id,
            "start_ns": g.start_ns,
            "end_ns": g.end_ns,
            "nr_snapshots": g.nr_snapshots,
            "areas": [{
                "start": x.start, "end": x.end, "first_ns": x.first_ns, "last_ns": x.last_ns,
                "accesses": round(x.accesses),
            } for x in g.areas],
        } for g in all_guides],
    }) + "\n"


def area_accesses(source: Any, guide: Guide, tmin: int, tmax: int) -> np.ndarray:
    """Per region union of `guide`: its regions' size x nr_accesses x time in [tmin, tmax).

    A snapshot covers the time since the previous snapshot of its target (the
    first one, the mean interval).  For the guide's own span this is in the
    guide already; any other time range takes one pass over `source`.
    """
    if (tmin, tmax) == (guide.start_ns, guide.end_ns) and guide.ends_last:
        return np.array([x.timed_accesses for x in guide.areas], dtype=np.float64)
    union_starts = np.array([x.start for x in guide.areas], dtype=np.uint64)
    total = np.zeros(len(union_starts), dtype=np.float64)
    for snaps, indices, starts, ends in _snapshots_of(source, guide.span):
        dt = np.maximum(np.minimum(ends, tmax) - np.maximum(starts, tmin), 0).astype(np.float64)
        flat, owner = snaps.region_index(indices)
        weight = (snaps.end[flat] - snaps.start[flat]).astype(np.float64) \
            * snaps.nr_accesses[flat] * dt[owner]
        union = np.searchsorted(union_starts, snaps.start[flat], side="right") - 1
        total += np.bincount(union, weight, minlength=len(union_starts))
    return total


def _snapshots_of(source: Any, span: spans.Span) -> Iterator[tuple[Snapshots, np.ndarray,
                                                                   np.ndarray, np.ndarray]]:
    """Per chunk holding `span`'s target: its columns, the target's snapshots and their
    start and end times (a snapshot starts where the previous one of its target ended)."""
    prev_end = span.first_start_ns
    for chunk in source.chunks():
        snaps = chunk.columns()
        indices = snaps.of_target(span.target_id)
        if not len(indices):
            continue
        ends = snaps.end_ns[indices]
        starts = np.empty_like(ends)
        starts[0] = prev_end
        starts[1:] = ends[:-1]
        prev_end = int(ends[-1])
        yield snaps, indices, starts, ends


def busiest_region(source: Any, guide: Guide, tmin: int, tmax: int) -> tuple[int, int]:
    """The region union holding the accesses (the most size x nr_accesses x time).

    Where nothing was accessed, the largest one, as DAMON's tool picks.
    """
    accesses = area_accesses(source, guide, tmin, tmax)
    if not accesses.any():
        return guide.largest_region()
    return guide.regions[int(np.argmax(accesses))]


def guide_of(source: Any, target_id: int | None,
             all_guides: list[Guide] | None = None) -> Guide:
    """The guide of `target_id`, or of the first target of the guide."""
    if all_guides is None:
        all_guides = guides(source)
    if target_id is None:
        return all_guides[0]
    matching = [g for g in all_guides if g.target_id == target_id]
    if not matching:
        known = ", ".join(str(g.target_id) for g in all_guides)
        raise UsageError(f"no target {target_id} in the record (targets: {known})")
    return matching[0]


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


def area(
    source: Any,
    target_id: int | None = None,
    resolution: tuple[int, int] = DEFAULT_RESOLUTION,
    time_range: tuple[int | None, int | None] = (None, None),
    addr_range: tuple[int | None, int | None] = (None, None),
    union: int | None = None,
    all_guides: list[Guide] | None = None,
) -> Area:
    """Fill what is not given from the guide.

    The target defaults to the first of the guide, the time range to its first
    to last snapshot, the address range to region union number `union` of the
    guide or else the one holding the accesses (`busiest_region`).  The
    maxima are then shrunk so each cell is a whole number of ns and bytes.
    """
    guide = guide_of(source, target_id, all_guides)
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
        chosen = busiest_region(source, guide, tmin, tmax)
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
    lo, hi = np.uint64(a.amin), np.uint64(a.amax)
    if n == len(snaps) and int(indices[0]) == 0 and int(indices[-1]) == n - 1:
        # Every snapshot of the chunk (one target): no gather needed.
        start, end, nr = snaps.start, snaps.end, snaps.nr_accesses
        owner = np.repeat(np.arange(n), snaps.nr_regions)
    else:
        flat, owner = snaps.region_index(indices)
        start, end, nr = snaps.start[flat], snaps.end[flat], snaps.nr_accesses[flat]
    x0 = np.minimum(np.maximum(start, lo), hi) - lo
    x1 = np.minimum(np.maximum(end, lo), hi) - lo
    nr = nr.astype(np.float64)
    inside = x1 > x0
    if not inside.all():
        x0, x1, owner, nr = x0[inside], x1[inside], owner[inside], nr[inside]
    unit = np.uint64(a.aunit)
    c0 = x0 // unit
    c1 = (x1 - np.uint64(1)) // unit
    multi = (c1 > c0).astype(np.float64)
    at0 = owner * cols + c0.astype(np.int64)
    at1 = owner * cols + c1.astype(np.int64)
    # The first and last cells get their covered part straight; the full
    # cells between them (regions over several cells only) come from a
    # difference array, summed along the row.  All are whole numbers, exact
    # in float64 below 2**53 (nr_accesses x cell bytes), whatever the order.
    first_w = nr * (np.minimum(x1, (c0 + np.uint64(1)) * unit) - x0).astype(np.float64)
    last_w = nr * (x1 - c1 * unit).astype(np.float64) * multi
    full = nr * float(a.aunit) * multi
    cells = n * cols
    sums = np.bincount(
        np.concatenate([at0, at1, cells + at0 + 1, cells + at1]),
        np.concatenate([first_w, last_w, full, -full]),
        minlength=2 * cells,
    )
    direct, diff = sums[:cells].reshape(n, cols), sums[cells:].reshape(n, cols)
    return (direct + np.cumsum(diff, axis=1))[:, : a.ares]


def heat_matrix(source: Any, a: Area, span: spans.Span | None = None) -> np.ndarray:
    """The map: float64 array of shape (tres, ares), time-major.

    One pass over the chunks of `source`; `span` (the target's, from its guide)
    saves a pass to find it.  Each cell sums its pieces in time order, so the
    map is the same to the last bit however the file is cut into chunks.
    """
    if span is None:
        span = spans.spans(source)[a.target_id]
    heat = np.zeros((a.tres, a.ares), dtype=np.float64)
    for snaps, indices, starts, ends in _snapshots_of(source, span):
        _add_snapshots(heat, snaps, indices, starts, ends, a)
    heat /= float(a.tunit) * float(a.aunit)
    return heat


def _add_snapshots(heat: np.ndarray, snaps: Snapshots, indices: np.ndarray, starts: np.ndarray,
                   ends: np.ndarray, a: Area) -> None:
    t0 = np.maximum(starts, a.tmin)
    t1 = np.minimum(ends, a.tmax)
    overlapping = np.flatnonzero(t1 > t0)
    if not len(overlapping):
        return
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
        piece_rows = rows[sel]
        # Pieces are in time order, so equal rows are adjacent.  Each row's
        # sum starts from what the row holds, then adds its pieces one by one.
        heads = np.flatnonzero(np.diff(piece_rows, prepend=-1))
        at = heads + np.arange(len(heads))  # where each row's running value goes
        stacked = np.empty((len(piece_rows) + len(heads), a.ares), dtype=np.float64)
        is_piece = np.ones(len(stacked), dtype=bool)
        is_piece[at] = False
        stacked[at] = heat[piece_rows[heads]]
        stacked[is_piece] = integrals[piece_owner[sel] - first] * duration[sel, None]
        heat[piece_rows[heads]] = np.add.reduceat(stacked, at, axis=0)


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
