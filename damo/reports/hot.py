"""`damo report hot`: the hottest, largest or longest-hot address ranges of a record.

DAMON's regions move from snapshot to snapshot, so ranges are built from the
record itself.  Every region start and end of a target (and, with a sidecar,
every mapping boundary) cuts its address space into *segments*; per segment,
difference arrays over all snapshots give the time it was monitored, the
time-weighted sum of ``nr_accesses``, the time it was hot (``nr_accesses`` of
at least ``acc_thres``) and when its accesses happened on average.  Adjacent
segments whose mean ``nr_accesses`` differ by at most a tenth of the target's
highest mean and whose hot times differ by at most a tenth of the time span
join into one range, unless their means differ by more than a quarter of the
highest in one of 16 equal parts of the time span (regions taking turns), and
never across a mapping boundary or a gap; a range's figures are the
size-weighted means of its segments', and its peak is the highest
``nr_accesses`` of any region that overlapped it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damo.errors import UsageError
from damo.records.snapshots import Snapshots, flat_ranges
from damo.reports import spans

ORDERS = ("heat", "size", "time", "accesses")
MERGE_SHARE = 0.1
# Neighbours are also compared over time, in this many parts of the time span
# (fewer when segments x parts would pass PROFILE_CELLS).
TIME_BINS = 16
PROFILE_SHARE = 0.25
PROFILE_CELLS = 1 << 22
# Region occurrences expanded over ranges at once when finding peaks.
CHUNK = 1 << 21


@dataclass
class HotRange:
    target_id: int
    start: int
    end: int
    mean_nr_accesses: float  # time-weighted, over the time the range was monitored
    peak_nr_accesses: int
    hot_ns: int  # how long it had at least acc_thres accesses
    first_hot_ns: int | None  # absolute times of the first and last hot snapshot
    last_hot_ns: int | None
    when_ns: int  # the time its accesses happened on average (annotation looks there)
    access_share: float = 0.0  # its share of the target's size x nr_accesses x time

    @property
    def size(self) -> int:
        return self.end - self.start


def _segment_sums(
    lo_idx: np.ndarray, hi_idx: np.ndarray, weights: list[np.ndarray], n: int
) -> list[np.ndarray]:
    """For each weight array, its sum over the segments each occurrence spans."""
    out = []
    for w in weights:
        diff = np.bincount(lo_idx, w, minlength=n + 1) - np.bincount(hi_idx, w, minlength=n + 1)
        out.append(np.cumsum(diff)[:n])
    return out


def _profiles_differ(i0: np.ndarray, i1: np.ndarray, heat_w: np.ndarray, dt: np.ndarray,
                     mid: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per pair of neighbouring segments: whether their mean nr_accesses differ by more than
    `PROFILE_SHARE` of the highest in some of `TIME_BINS` equal parts of the time span.

    Two regions that take turns (one hot while the other is idle) have the same
    mean and hot time over the run; over time they do not.
    """
    bins = int(min(TIME_BINS, max(1, PROFILE_CELLS // max(n, 1))))
    if bins <= 1 or n < 2:
        return np.zeros(max(n - 1, 0), dtype=bool)
    lo, hi = float(mid.min()), float(mid.max())
    of_snapshot = np.minimum(((mid - lo) / max(hi - lo, 1.0) * bins).astype(np.int64), bins - 1)
    b = of_snapshot[owner]
    cells = (n + 1) * bins

    def per_bin(w: np.ndarray) -> np.ndarray:
        diff = np.bincount(i0 * bins + b, w, minlength=cells) \
            - np.bincount(i1 * bins + b, w, minlength=cells)
        return np.cumsum(diff.reshape(n + 1, bins), axis=0)[:n]

    heat, covered = per_bin(heat_w), per_bin(dt)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(covered > 0, heat / covered, 0.0)
    # Wider than for the whole run: a boundary the adaptive regions moved a
    # snapshot late shows in one part, and that is noise, not a pattern.
    return np.abs(mean[1:] - mean[:-1]).max(axis=1) > PROFILE_SHARE * float(mean.max())


def target_ranges(
    snaps: Snapshots, target_id: int, tmin: int | None, tmax: int | None, acc_thres: int,
    cuts: np.ndarray | None = None,
) -> list[HotRange]:
    """Ranges of one target that were hot at least once in [tmin, tmax); see the docstring.

    `cuts` are extra boundaries ranges must not cross (the mappings').
    """
    indices = snaps.of_target(target_id)
    t0 = spans.starts_of(snaps.end_ns[indices])
    t1 = snaps.end_ns[indices]
    if tmin is not None:
        t0 = np.maximum(t0, tmin)
    if tmax is not None:
        t1 = np.minimum(t1, tmax)
    keep = t1 > t0
    if not keep.any():
        return []
    indices, t0, t1 = indices[keep], t0[keep], t1[keep]
    flat, owner = snaps.region_index(indices)
    rs, re = snaps.start[flat], snaps.end[flat]
    nr = snaps.nr_accesses[flat]
    nonempty = re > rs
    flat, owner, rs, re, nr = flat[nonempty], owner[nonempty], rs[nonempty], re[nonempty], \
        nr[nonempty]
    if not len(flat):
        return []
    dt = (t1 - t0).astype(np.float64)[owner]
    mid = ((t0 + t1) / 2.0)[owner]
    extra = np.zeros(0, np.uint64) if cuts is None else cuts.astype(np.uint64)
    extra = extra[(extra > rs.min()) & (extra < re.max())]
    bounds = np.unique(np.concatenate([rs, re, extra]))
    n = len(bounds) - 1
    i0 = np.searchsorted(bounds, rs)
    i1 = np.searchsorted(bounds, re)
    nrf = nr.astype(np.float64)
    hot = nr >= acc_thres
    covered, heat, hot_t, heat_t = _segment_sums(
        i0, i1, [dt, nrf * dt, dt * hot, nrf * dt * mid], n)
    size = (bounds[1:] - bounds[:-1]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(covered > 0, heat / covered, 0.0)

    # Where a range must end: a gap, a mapping boundary, or a different neighbour.
    span = float(t1.max() - t0.min())
    heat_thr = MERGE_SHARE * float(mean.max())
    is_cut = np.zeros(n + 1, dtype=bool)
    is_cut[np.searchsorted(bounds, extra)] = True
    brk = np.ones(n, dtype=bool)  # brk[k]: segment k starts a new range
    brk[1:] = (
        (covered[1:] <= 0) | (covered[:-1] <= 0) | is_cut[1:n]
        | (np.abs(mean[1:] - mean[:-1]) > heat_thr)
        | (np.abs(hot_t[1:] - hot_t[:-1]) > MERGE_SHARE * span)
        | _profiles_differ(i0, i1, nrf * dt, dt, (t0 + t1) / 2.0, owner, n)
    )
    starts = np.flatnonzero(brk)
    r_size = np.add.reduceat(size, starts)
    r_mean = np.add.reduceat(mean * size, starts) / r_size
    r_hot = np.add.reduceat(hot_t * size, starts) / r_size
    r_heat = np.add.reduceat(heat * size, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_when = np.where(r_heat > 0, np.add.reduceat(heat_t * size, starts) / r_heat, 0.0)
    r_cov = np.add.reduceat(covered, starts)
    r_lo = bounds[starts]
    r_hi = bounds[np.append(starts[1:], n)]
    nr_ranges = len(starts)

    # Peaks and first/last hot times, over the occurrences that were hot.
    peak = np.zeros(nr_ranges, dtype=np.int64)
    first = np.full(nr_ranges, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(nr_ranges, np.iinfo(np.int64).min, dtype=np.int64)
    sel = np.flatnonzero(hot)
    seg_to_range = np.cumsum(brk) - 1
    for k in range(0, len(sel), CHUNK):
        part = sel[k:k + CHUNK]
        r0 = seg_to_range[i0[part]]
        r1 = seg_to_range[i1[part] - 1] + 1
        ridx, who = flat_ranges(r0, r1)
        occ = part[who]
        np.maximum.at(peak, ridx, nr[occ].astype(np.int64))
        np.minimum.at(first, ridx, t0[owner[occ]])
        np.maximum.at(last, ridx, t1[owner[occ]])

    total = float(r_heat.sum())
    out = []
    for r in np.flatnonzero((r_hot > 0) & (r_cov > 0)).tolist():
        out.append(HotRange(
            target_id, int(r_lo[r]), int(r_hi[r]), float(r_mean[r]), int(peak[r]),
            round(float(r_hot[r])), int(first[r]), int(last[r]), round(float(r_when[r])),
            float(r_heat[r]) / total if total > 0 else 0.0,
        ))
    return out


def sort_key(order: str):
    if order not in ORDERS:
        raise UsageError(f"--by: expected one of {', '.join(ORDERS)}, not {order!r}")
    if order == "heat":
        return lambda r: (-r.mean_nr_accesses, -r.size, r.start)
    if order == "size":
        return lambda r: (-r.size, -r.mean_nr_accesses, r.start)
    if order == "accesses":
        return lambda r: (-r.access_share, -r.mean_nr_accesses, r.start)
    return lambda r: (-r.hot_ns, -r.mean_nr_accesses, -r.size, r.start)


def hot_ranges(
    snaps: Snapshots, target_ids: list[int], order: str, tmin: int | None,
    tmax: int | None, acc_thres: int, cuts: dict[int, np.ndarray] | None = None,
) -> list[HotRange]:
    """Every hot range of the given targets, best first by `order`."""
    key = sort_key(order)
    ranges = []
    for tid in target_ids:
        ranges.extend(target_ranges(snaps, tid, tmin, tmax, acc_thres,
                                    None if cuts is None else cuts.get(tid)))
    ranges.sort(key=key)
    return ranges


def select(ranges: list[HotRange], annotator, top: int) -> tuple[list[HotRange], list, int]:
    """The first `top` ranges with their annotations, and how many were left out.

    A range wholly outside every mapping is left out: nothing can access
    unmapped space; a region that also covered a gap between mappings gave it
    its counts.
    """
    chosen, anns, skipped = [], [], 0
    for r in ranges:
        if len(chosen) == top:
            break
        ann = None if annotator is None else annotator.annotate(r.target_id, r.start, r.end,
                                                                r.when_ns)
        if ann is not None and ann.main() is None:
            skipped += 1
            continue
        chosen.append(r)
        anns.append(ann)
    return chosen, anns, skipped


# Output: a table for people (rich on a terminal, plain text otherwise) and JSON.

def rows(ranges: list[HotRange], anns: list, origin_ns: dict[int, int]) -> list[list[str]]:
    """The table's cells: one row per range."""
    from damo.reports.numbers import format_size

    out = []
    for k, (r, ann) in enumerate(zip(ranges, anns, strict=True)):
        base = origin_ns.get(r.target_id, 0)
        when = f"{(r.first_hot_ns - base) / 1e9:.1f}-{(r.last_hot_ns - base) / 1e9:.1f}" \
            if r.first_hot_ns is not None else "-"
        label = "" if ann is None else ann.label()
        if ann is not None and ann.notes():
            label += " [" + "; ".join(ann.notes()) + "]"
        out.append([
            str(k + 1), str(r.target_id), f"{r.start:#x}-{r.end:#x}", format_size(r.size),
            f"{r.access_share:.1%}", f"{r.mean_nr_accesses:.2f}", str(r.peak_nr_accesses),
            f"{r.hot_ns / 1e9:.1f}",
            when, label,
        ])
    return out


HEADERS = ["#", "target", "address range", "size", "accesses", "mean", "peak", "hot s",
           "hot from-to s", "what"]
RIGHT = {0, 1, 3, 4, 5, 6, 7}


def table_text(cells: list[list[str]], footer: str) -> str:
    """Plain aligned columns, for pipes and files."""
    if not cells:
        return footer + "\n"
    widths = [max(len(h), *(len(c[k]) for c in cells)) for k, h in enumerate(HEADERS)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if k in RIGHT else v.ljust(w)
                         for k, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()
    return "\n".join([line(HEADERS), *(line(c) for c in cells), footer]) + "\n"


def print_rich(cells: list[list[str]], title: str, footer: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text, not markup: names such as [heap] are not style tags.
    table = Table(title=Text(title), caption=Text(footer), caption_justify="left")
    for k, h in enumerate(HEADERS):
        table.add_column(h, justify="right" if k in RIGHT else "left",
                         overflow="fold", no_wrap=k in (2,))
    for c in cells:
        table.add_row(*(Text(x) for x in c))
    Console().print(table)


def to_json(ranges: list[HotRange], anns: list, annotator, snaps: Snapshots,
            target_ids: list[int], order: str, acc_thres: int, tmin: int | None,
            tmax: int | None, input_path: str, skipped: int) -> dict:
    """The `report hot --json` document (schema in docs/reports.md)."""
    targets = []
    for tid in target_ids:
        idx = snaps.of_target(tid)
        info = {} if annotator is None else annotator.targets.get(tid, {})
        targets.append({
            "target_id": tid, "pid": info.get("pid"), "cmdline": info.get("cmdline"),
            "start_ns": int(spans.starts_of(snaps.end_ns[idx])[0]),
            "end_ns": int(snaps.end_ns[idx[-1]]),
            "nr_snapshots": len(idx),
        })
    out_ranges = []
    for k, (r, ann) in enumerate(zip(ranges, anns, strict=True)):
        out_ranges.append({
            "rank": k + 1, "target_id": r.target_id, "start": r.start, "end": r.end,
            "size": r.size, "access_share": r.access_share,
            "mean_nr_accesses": r.mean_nr_accesses,
            "peak_nr_accesses": r.peak_nr_accesses, "hot_ns": r.hot_ns,
            "first_hot_ns": r.first_hot_ns, "last_hot_ns": r.last_hot_ns,
            "annotation": None if ann is None else {
                "label": ann.label(), "time_ns": r.when_ns, "notes": ann.notes(),
                "parts": [p.to_json() for p in ann.parts],
            },
        })
    return {
        "report": "hot", "version": 1, "input": input_path, "by": order, "acc_thres": acc_thres,
        "tmin_ns": tmin, "tmax_ns": tmax, "targets": targets, "ranges": out_ranges,
        "unmapped_left_out": skipped,
    }
