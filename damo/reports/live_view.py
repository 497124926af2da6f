"""What `damo monitor` shows: hottest and longest-idle ranges, WSS, a heat strip.

Pure functions and small state over one target's snapshots (numpy arrays of
region starts, ends and nr_accesses), so the view is testable without a
terminal; `damo.live` feeds them and draws the frames.

Idle time lives in one place, `IdleTracker`: the time since each byte's
range last had nr_accesses > 0 in a snapshot the monitor saw, at the
resolution of one refresh (the accessed ranges of the aggregations between
two refreshes are painted at once, with the refresh's time).  Ranges never
seen accessed are idle since the monitor started (shown as ">=").  When the
engine keeps DAMON's region age, `IdleTracker.idle` is the one function to
switch: idle = age x aggregation interval for regions with nr_accesses == 0.
"""

from dataclasses import dataclass

import numpy as np

from damo.reports.numbers import format_size

HEAT_CHARS = " .:-=+*#%@"
NEVER = -1


@dataclass
class Range:
    start: int
    end: int
    nr_accesses: int = 0
    idle_ns: int = 0
    never: bool = False  # idle since the monitor started: a lower bound
    name: str = ""

    @property
    def size(self) -> int:
        return self.end - self.start


class IdleTracker:
    """Per byte of one target, when its range last had nr_accesses > 0 (see module doc)."""

    def __init__(self, start_ns: int):
        self.start_ns = start_ns
        self.bounds = np.zeros(0, dtype=np.uint64)  # segment k is [bounds[k], bounds[k+1])
        self.last = np.zeros(0, dtype=np.int64)  # its last access time, or NEVER
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def saw(self, start: np.ndarray, end: np.ndarray, nr_accesses: np.ndarray) -> None:
        """One aggregation's snapshot: keep its accessed ranges (cheap: once per aggregation)."""
        hit = nr_accesses > 0
        self._pending.append((start[hit], end[hit]))

    def paint(self, now_ns: int) -> None:
        """Fold the kept ranges in, as accessed at `now_ns`."""
        pieces = self._pending
        self._pending = []
        if not pieces:
            return
        starts = np.concatenate([p[0] for p in pieces]).astype(np.uint64, copy=False)
        ends = np.concatenate([p[1] for p in pieces]).astype(np.uint64, copy=False)
        edges = np.union1d(self.bounds, np.concatenate([starts, ends]))
        if len(edges) < 2:
            return
        seg = edges[:-1]
        k = np.searchsorted(self.bounds, seg, side="right") - 1
        inside = (k >= 0) & (k < len(self.last))
        last = np.full(len(seg), NEVER, dtype=np.int64)
        last[inside] = self.last[k[inside]]
        real = starts < ends
        cover = np.zeros(len(edges) + 1, dtype=np.int64)
        np.add.at(cover, np.searchsorted(edges, starts[real]), 1)
        np.add.at(cover, np.searchsorted(edges, ends[real]), -1)
        last[np.cumsum(cover)[: len(seg)] > 0] = now_ns
        keep = np.concatenate([[True], last[1:] != last[:-1]])
        self.bounds = np.concatenate([seg[keep], edges[-1:]])
        self.last = last[keep]

    def idle(self, start: np.ndarray, end: np.ndarray, nr_accesses: np.ndarray,
             now_ns: int) -> list[Range]:
        """The idle parts of a snapshot's regions (nr_accesses == 0), split by last access."""
        idle = nr_accesses == 0
        if not idle.any():
            return []
        s = start[idle].astype(np.uint64)
        e = end[idle].astype(np.uint64)
        cuts = np.union1d(np.concatenate([s, e]), self.bounds)
        lo, hi = cuts[:-1], cuts[1:]
        # The pieces that lie in an idle region.
        r = np.searchsorted(s, lo, side="right") - 1
        ok = (r >= 0) & (lo < e[np.clip(r, 0, None)])
        lo, hi = lo[ok], hi[ok]
        k = np.searchsorted(self.bounds, lo, side="right") - 1
        known = (k >= 0) & (k < len(self.last))
        last = np.full(len(lo), NEVER, dtype=np.int64)
        last[known] = self.last[k[known]]
        out: list[Range] = []
        for a, b, t in zip(lo.tolist(), hi.tolist(), last.tolist(), strict=True):
            never = t == NEVER
            idle_ns = now_ns - (self.start_ns if never else t)
            if out and out[-1].end == a and out[-1].never == never \
                    and out[-1].idle_ns == idle_ns:
                out[-1].end = b
            else:
                out.append(Range(a, b, 0, idle_ns, never))
        return out


def hottest(start: np.ndarray, end: np.ndarray, nr_accesses: np.ndarray, top: int) -> list[Range]:
    """The `top` ranges with the most nr_accesses (adjacent equal regions joined), then size."""
    out: list[Range] = []
    for a, b, n in zip(start.tolist(), end.tolist(), nr_accesses.tolist(), strict=True):
        if n <= 0:
            continue
        if out and out[-1].end == a and out[-1].nr_accesses == n:
            out[-1].end = b
        else:
            out.append(Range(a, b, n))
    out.sort(key=lambda r: (-r.nr_accesses, -r.size, r.start))
    return out[:top]


def longest_idle(ranges: list[Range], top: int, min_bytes: int = 4096) -> list[Range]:
    ranges = [r for r in ranges if r.size >= min_bytes]
    ranges.sort(key=lambda r: (-r.idle_ns, -r.size, r.start))
    return ranges[:top]


def wss_bytes(start: np.ndarray, end: np.ndarray, nr_accesses: np.ndarray) -> int:
    """Bytes of the regions with nr_accesses > 0 (`report wss`'s threshold of 1)."""
    hit = nr_accesses > 0
    return int((end[hit] - start[hit]).sum())


def heat_column(start: np.ndarray, end: np.ndarray, nr_accesses: np.ndarray, rows: int,
                max_nr: int) -> list[float]:
    """Access intensity (0..1) of `rows` equal slices of the monitored bytes, gaps left out."""
    sizes = (end - start).astype(np.float64)
    total = sizes.sum()
    if total <= 0 or rows <= 0:
        return [0.0] * max(rows, 0)
    cum = np.concatenate([[0.0], np.cumsum(sizes)])
    weight = sizes * np.minimum(nr_accesses, max_nr) / max(max_nr, 1)
    acc = np.concatenate([[0.0], np.cumsum(weight)])
    edges = np.linspace(0.0, total, rows + 1)
    # Accessed weight up to each edge, regions cut pro rata.
    k = np.clip(np.searchsorted(cum, edges, side="right") - 1, 0, len(sizes) - 1)
    frac = np.where(sizes[k] > 0, (edges - cum[k]) / np.maximum(sizes[k], 1), 0.0)
    upto = acc[k] + weight[k] * np.clip(frac, 0.0, 1.0)
    return (np.diff(upto) / (total / rows)).clip(0.0, 1.0).tolist()


def heat_char(value: float) -> str:
    if value <= 0:
        return HEAT_CHARS[0]
    return HEAT_CHARS[min(1 + int(value * (len(HEAT_CHARS) - 1)), len(HEAT_CHARS) - 1)]


def format_idle(ns: int, never: bool) -> str:
    seconds = ns / 1e9
    text = f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    return (">=" if never else "") + text


def range_line(r: Range, extra: str, width: int) -> str:
    line = f"  {r.start:012x}-{r.end:012x} {format_size(r.size):>10}  {extra:>12}  {r.name}"
    return line[:width]
