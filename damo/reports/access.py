"""`damo report access`: per-region access rate, age, idle time and temperature.

What upstream damo's main report shows (its styles and names), from any
record file, streamed: the record is read chunk by chunk, the regions' ages
come from the sidecar or are derived on the way (`damo.records.ages`), and
only the snapshots shown are kept (the last of each target by default).

Per region of a snapshot, with the monitoring intervals (from the sidecar;
without one, the aggregation interval is the snapshots' spacing and the
sampling interval DAMON's default, 5 ms):

- access rate: ``nr_accesses`` per aggregation, in Hz (per second), or as a
  percentage of the samples of an aggregation (upstream's "access rate");
- age: aggregations its access rate has stayed about the same, as time;
- idle time: for an unaccessed region, how long it has not been accessed:
  its age plus the aggregation it was seen idle in (upstream's rule); 0 for
  an accessed one;
- temperature: ``w_size * size + w_rate * rate% + w_age * age_us``, negated
  for an unaccessed region (so the longest idle is the coldest), weights
  ``--temperature_weights`` (upstream's default 0, 100, 100).

Styles: ``detailed`` (the default listing), ``simple-boxes``, ``hot`` and
``cold`` (listings sorted by temperature, with a box whose length shows the
age and whose digit the access rate), ``recency-percentiles`` (alias
``idle-time-percentiles``) and ``temperature-percentiles`` (per-byte
percentiles with bars), ``recency-sz-hist`` (alias ``cold-memory-tail``) and
``temperature-sz-hist`` (bytes per range of values, with bars).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from damo.errors import UsageError

DEFAULT_SAMPLE_US = 5000
DEFAULT_WEIGHTS = (0, 100, 100)
DEFAULT_PERCENTILES = (0, 1, 25, 50, 75, 99, 100)
BAR = 20  # stars of a full bar, as upstream
STYLES = ("detailed", "simple-boxes", "hot", "cold", "recency-percentiles",
          "temperature-percentiles", "recency-sz-hist", "temperature-sz-hist")
ALIASES = {"idle-time-percentiles": "recency-percentiles", "cold-memory-tail": "recency-sz-hist"}
SORT_KEYS = ("address", "access_rate", "age", "size", "temperature")
RATE_UNITS = ("hz", "per_aggr", "percent")


def style_of(name: str) -> str:
    style = ALIASES.get(name, name)
    if style not in STYLES:
        raise UsageError(f"--style: unknown style {name!r} (choices: "
                         f"{', '.join([*STYLES, *ALIASES])})")
    return style


# numbers for people, in upstream's shapes

SIZE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_size(nbytes: float) -> str:
    """``512 B``, ``4.000 KiB``, ``1.371 GiB``."""
    if abs(nbytes) < 1024:
        return f"{int(nbytes)} B"
    value = float(nbytes)
    for unit in SIZE_UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == SIZE_UNITS[-1]:
            return f"{value:.3f} {unit}"
    raise AssertionError("unreachable")


def format_time_us(us: float) -> str:
    """``0 ns``, ``200 ms``, ``35.800 s``, ``2 m 3.500 s``, ``1 h 5 m``."""
    ns = int(round(us * 1000))
    if ns >= 3600 * 10**9:
        hours, rest = divmod(ns, 3600 * 10**9)
        return f"{hours} h" if rest == 0 else f"{hours} h {format_time_us(rest / 1000)}"
    if ns >= 60 * 10**9:
        minutes, rest = divmod(ns, 60 * 10**9)
        if rest == 0:
            return f"{minutes} m"
        if rest % 10**9 == 0:
            return f"{minutes} m {rest // 10**9} s"
        return f"{minutes} m {rest / 1e9:.3f} s"
    for scale, unit in ((10**9, "s"), (10**6, "ms"), (10**3, "us")):
        if ns >= scale:
            return f"{ns // scale} {unit}" if ns % scale == 0 else f"{ns / scale:.3f} {unit}"
    return f"{ns} ns"


def format_number(value: float) -> str:
    """``-3,600,000,000``, ``12.500``."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}"


def format_rate(value: float, unit: str) -> str:
    text = format_number(value)
    return {"hz": f"{text} hz", "per_aggr": text, "percent": f"{text} %"}[unit]


# parsing filter values

_SIZE_SUFFIX = {"b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
                "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40,
                "tb": 1 << 40, "tib": 1 << 40}
_TIME_SUFFIX = {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6, "sec": 1e6, "m": 60e6, "min": 60e6,
                "h": 3600e6, "hour": 3600e6}


def _split(text: str, what: str) -> tuple[float, str]:
    t = text.strip().lower().replace(",", "").replace(" ", "")
    k = len(t)
    while k and not (t[k - 1].isdigit() or t[k - 1] == "."):
        k -= 1
    try:
        return float(t[:k]), t[k:]
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a number") from None


def parse_bound(text: str, what: str, kind: str) -> float:
    """One bound of a filter: ``min``/``max``, or a value in the kind's units.

    kind ``size``: bytes, ``4K``, ``1.5 MiB``; ``time``: microseconds, ``5s``,
    ``100ms``, ``2m``; ``rate``: percent (``50``, ``50%``) or ``10hz``, returned
    as (value, unit) through `parse_rate`; ``number``: a plain number.
    """
    low = text.strip().lower()
    if low == "min":
        return -math.inf
    if low == "max":
        return math.inf
    value, unit = _split(text, what)
    if kind == "size":
        if unit not in ("", *_SIZE_SUFFIX):
            raise UsageError(f"{what}: unknown size unit in {text!r}")
        return value * _SIZE_SUFFIX.get(unit, 1)
    if kind == "time":
        if unit not in ("", *_TIME_SUFFIX):
            raise UsageError(f"{what}: unknown time unit in {text!r}")
        return value * _TIME_SUFFIX.get(unit, 1)
    if unit:
        raise UsageError(f"{what}: {text!r} is not a number")
    return value


def parse_rate_bound(text: str, what: str) -> tuple[float, str]:
    """An access rate bound: (value, "percent" | "hz" | "per_aggr")."""
    low = text.strip().lower()
    if low in ("min", "max"):
        return (-math.inf if low == "min" else math.inf), "percent"
    value, unit = _split(text, what)
    units = {"": "percent", "%": "percent", "hz": "hz", "/aggr": "per_aggr", "aggr": "per_aggr"}
    if unit not in units:
        raise UsageError(f"{what}: unknown access rate unit in {text!r} (%, hz or aggr)")
    return value, units[unit]


@dataclass
class Filters:
    """Ranges a region must fall in (inclusive); sizes in bytes, ages in us."""

    size: tuple[float, float] | None = None
    rate: tuple[tuple[float, str], tuple[float, str]] | None = None
    age_us: tuple[float, float] | None = None
    temperature: tuple[float, float] | None = None


@dataclass
class Intervals:
    sample_us: int
    aggr_us: int
    source: str  # "sidecar", or "record" (aggregation from the spacing, sampling assumed)


@dataclass
class Shot:
    """One snapshot to show, its regions' values computed."""

    target_id: int
    end_ns: int
    duration_ns: int
    start: np.ndarray
    end: np.ndarray
    nr: np.ndarray
    age: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)


def values_of(shot: Shot, iv: Intervals, weights: Sequence[int]) -> dict[str, np.ndarray]:
    """Every per-region value the styles show, filter and sort by."""
    size = (shot.end - shot.start).astype(np.float64)
    nr = shot.nr.astype(np.float64)
    max_nr = max(iv.aggr_us / iv.sample_us, 1)
    percent = nr * 100 / max_nr
    age_us = shot.age.astype(np.float64) * iv.aggr_us
    temperature = size * weights[0] + percent * weights[1] + age_us * weights[2]
    return {
        "address": shot.start.astype(np.float64),
        "size": size,
        "per_aggr": nr,
        "hz": nr * 1e6 / iv.aggr_us,
        "percent": percent,
        "access_rate": nr,
        "age": age_us,
        "idle": np.where(nr > 0, 0.0, age_us + iv.aggr_us),
        "temperature": np.where(nr > 0, temperature, -temperature),
    }


def keep(values: dict[str, np.ndarray], filters: Filters) -> np.ndarray:
    ok = np.ones(len(values["size"]), dtype=bool)
    for key, bounds in (("size", filters.size), ("age", filters.age_us),
                        ("temperature", filters.temperature)):
        if bounds is not None:
            ok &= (values[key] >= bounds[0]) & (values[key] <= bounds[1])
    if filters.rate is not None:
        (lo, lo_unit), (hi, hi_unit) = filters.rate
        ok &= (values[lo_unit] >= lo) & (values[hi_unit] <= hi)
    return ok


def order(values: dict[str, np.ndarray], keys: Sequence[str], dsc: Sequence[str]) -> np.ndarray:
    """Region order: by the keys, the last one given first (as upstream's sorts, each stable)."""
    idx = np.arange(len(values["size"]))
    for key in keys:
        v = values[key][idx]
        if key in dsc or "all" in dsc:
            idx = idx[np.argsort(-v, kind="stable")]
        else:
            idx = idx[np.argsort(v, kind="stable")]
    return idx


def percentiles(metric: np.ndarray, size: np.ndarray,
                points: Sequence[float]) -> list[tuple[float, float]]:
    """Per-byte percentiles: the value at which the bytes up to it reach p %."""
    if len(metric) == 0 or size.sum() == 0:
        return []
    o = np.argsort(metric, kind="stable")
    cum = np.cumsum(size[o]) * 100 / size.sum()
    at = np.minimum(np.searchsorted(cum, np.asarray(points, dtype=np.float64) - 1e-9), len(o) - 1)
    return [(p, float(metric[o][k])) for p, k in zip(points, at.tolist(), strict=True)]


def histogram(metric: np.ndarray, size: np.ndarray, logscale: bool,
              nr_ranges: int = 10) -> list[tuple[float, float, float]]:
    """(from, to, bytes) of value ranges [from, to), as upstream splits them."""
    if len(metric) == 0:
        return []
    lo, hi = float(metric.min()), float(metric.max())
    if logscale:
        step = max(int((hi - lo) / 2 ** nr_ranges), 1)
        ranges = [(lo, lo + step)]
        while ranges[-1][1] <= hi:
            a, b = ranges[-1]
            ranges.append((b, b + (b - a) * 2))
    else:
        step = max(math.ceil((hi + 1 - lo) / nr_ranges), 1)
        ranges = [(lo + step * i, lo + step * (i + 1)) for i in range(nr_ranges)]
    return [(a, b, float(size[(metric >= a) & (metric < b)].sum())) for a, b in ranges]


def bars(values: Sequence[float], floor_min: bool = True) -> list[str]:
    """``|*****     |`` bars, 20 wide, from the smallest value to the largest."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    per = (hi - lo) / BAR if hi != lo else 1
    out = []
    for v in values:
        n = min(int((v - lo) / per) if floor_min else math.ceil((v - lo) / per), BAR)
        out.append("|" + "*" * n + " " * (BAR - n) + "|")
    return out


def box(age_us: np.ndarray, percent: np.ndarray) -> list[str]:
    """Region boxes: length 1-40 by age (log scale), one digit 0-9 by access rate."""
    ages = np.log2(np.maximum(age_us, 1))
    lo, hi = float(ages.min()), float(ages.max())
    length = 1 + np.floor((ages - lo) * 39 / (hi - lo)).astype(int) if hi > lo else \
        np.ones(len(ages), dtype=int)
    level = np.minimum((percent / 10).astype(int), 9)
    return [f"{'':>{40 - n}}|{str(d) * n}|" for n, d in zip(length.tolist(), level.tolist(),
                                                           strict=True)]


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))] if rows else []
    return ["".join(f"{c:<{w}} " if k < len(r) - 1 else c for k, (c, w) in
                    enumerate(zip(r, widths, strict=True))).rstrip() for r in rows]


def listing(shot: Shot, idx: np.ndarray, style: str, rate_unit: str) -> list[str]:
    v = shot.values
    rates = [format_rate(x, rate_unit) for x in v[rate_unit][idx].tolist()]
    sizes = [format_size(x) for x in v["size"][idx].tolist()]
    ages = [format_time_us(x) for x in v["age"][idx].tolist()]
    if style == "detailed":
        rows = [[str(k), "addr", f"0x{a:x}", "size", s, "access", r, "age", g]
                for k, (a, s, r, g) in enumerate(zip(shot.start[idx].tolist(), sizes, rates, ages,
                                                     strict=True))]
        return _columns(rows)
    boxes = box(v["age"][idx], v["percent"][idx]) if len(idx) else []
    if style == "simple-boxes":
        rows = [[b, "size", s, "access", r, "age", g]
                for b, s, r, g in zip(boxes, sizes, rates, ages, strict=True)]
    else:
        rows = [[b, s, "access", r, g] for b, s, r, g in zip(boxes, sizes, rates, ages,
                                                             strict=True)]
    return _columns(rows)


def percentile_lines(shot: Shot, idx: np.ndarray, metric: str, points: Sequence[float],
                     weights: Sequence[int]) -> list[str]:
    v = shot.values
    found = percentiles(v[metric][idx], v["size"][idx], points)
    if not found:
        return ["no region in snapshot"]
    if metric == "idle":
        head = ["# total recency percentiles", "<percentile> <idle time>"]
        texts = [format_time_us(x) for _, x in found]
    else:
        head = ["# total temperature percentiles",
                f"<percentile> <temperature (weights: [{', '.join(map(str, weights))}])>"]
        texts = [format_number(round(x)) for _, x in found]
    ps = [format_number(p) for p, _ in found]
    pw, tw = max(map(len, ps)), max(map(len, texts))
    return head + [f"{p:>{pw}}  {t:>{tw}}  {b}" for p, t, b in
                   zip(ps, texts, bars([x for _, x in found]), strict=True)]


def histogram_lines(shot: Shot, idx: np.ndarray, metric: str, logscale: bool) -> list[str]:
    v = shot.values
    found = histogram(v[metric][idx], v["size"][idx], logscale)
    if not found:
        return ["no region in snapshot"]
    fmt = format_time_us if metric == "idle" else (lambda x: format_number(round(x)))
    head = "<idle time> <total size>" if metric == "idle" else "<temperature> <total size>"
    ranges = [f"[{fmt(a)}, {fmt(b)})" for a, b, _ in found]
    sizes = [format_size(s) for _, _, s in found]
    rw, sw = max(map(len, ranges)), max(map(len, sizes))
    return [head] + [f"{r:<{rw}} {s:<{sw}} {b}" for r, s, b in
                     zip(ranges, sizes, bars([s for _, _, s in found], floor_min=False),
                         strict=True)]


@dataclass
class Options:
    style: str = "detailed"
    sort_keys: Sequence[str] = ("address",)
    sort_dsc: Sequence[str] = ()
    weights: Sequence[int] = DEFAULT_WEIGHTS
    points: Sequence[float] = DEFAULT_PERCENTILES
    rate_unit: str = "hz"
    filters: Filters = field(default_factory=Filters)
    hist_logscale: bool = False
    all_snapshots: bool = False


def region_order(shot: Shot, opts: Options) -> np.ndarray:
    """The regions to show, filtered, in the style's order."""
    ok = np.flatnonzero(keep(shot.values, opts.filters))
    keys, dsc = list(opts.sort_keys), list(opts.sort_dsc)
    if opts.style in ("hot", "cold"):
        keys, dsc = ["temperature"], (["temperature"] if opts.style == "hot" else [])
    sub = {k: v[ok] for k, v in shot.values.items()}
    return ok[order(sub, keys, dsc)]


def snapshot_text(shot: Shot, opts: Options, iv: Intervals, rec_start_ns: int,
                  show_time: bool, show_target: bool) -> list[str]:
    """The lines of one snapshot in the chosen style."""
    lines = []
    if show_time:
        begin = (shot.end_ns - shot.duration_ns - rec_start_ns) / 1000
        lines.append(f"snapshot time: [{format_time_us(begin)}, "
                     f"{format_time_us((shot.end_ns - rec_start_ns) / 1000)}] "
                     f"({format_time_us(shot.duration_ns / 1000)})")
    if show_target:
        lines.append(f"target id: {shot.target_id}")
    idx = region_order(shot, opts)
    style = opts.style
    if style in ("detailed", "simple-boxes", "hot", "cold"):
        lines += listing(shot, idx, style, opts.rate_unit)
    elif style.endswith("-percentiles"):
        metric = "idle" if style.startswith("recency") else "temperature"
        lines += percentile_lines(shot, idx, metric, opts.points, opts.weights)
    else:
        metric = "idle" if style.startswith("recency") else "temperature"
        lines += histogram_lines(shot, idx, metric, opts.hist_logscale)
    v = shot.values
    bw = float((v["size"][idx] * v["per_aggr"][idx]).sum()) * 1e6 / iv.aggr_us
    lines.append(f"memory bw estimate: {format_size(bw)} per second")
    lines.append(f"total size: {format_size(float(v['size'][idx].sum()))}")
    return lines


# reading: intervals, snapshots, ages

def sidecar_intervals(record_path: str) -> tuple[int, int] | None:
    """(sample_us, aggr_us) from the sidecar's start message, reading only that far."""
    import msgpack

    from damo.records.meta import meta_path

    try:
        with open(meta_path(record_path), "rb") as f:
            unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=False, read_size=1 << 14)
            for message in unpacker:
                if isinstance(message, dict) and message.get("type") == "start":
                    attrs = message.get("attrs") or {}
                    sample, aggr = attrs.get("sample_us"), attrs.get("aggr_us")
                    if isinstance(sample, int) and isinstance(aggr, int) and sample > 0 \
                            and aggr > 0:
                        return sample, aggr
                    return None
                break
    except Exception:  # no sidecar, or a damaged one: the record decides
        return None
    return None


class Walk:
    """One pass over a record: ages for every snapshot, the snapshots to show.

    Iterating yields the shots: with `all_snapshots`, each snapshot as soon as
    it is read (streaming); otherwise the last snapshot of each target, at the
    end, by target id.  `intervals` is known before the first shot;
    `ages_from` ("sidecar", "derived" or "mixed") and `rec_start_ns` after the
    first chunk, `ages_from` final at the end.
    """

    def __init__(self, record: Any, path: str | None, all_snapshots: bool):
        self.record, self.path, self.all_snapshots = record, path, all_snapshots
        self.intervals: Intervals | None = None
        self.rec_start_ns = 0
        self.nr_shown = 0
        self.ages_from = "derived"

    def __iter__(self) -> Iterator[Shot]:
        from damo.records.ages import RecordAges

        given = sidecar_intervals(self.path) if self.path is not None else None
        if given is None:
            self.intervals = spacing_intervals(self.record)
        ages = RecordAges(self.path)
        last: dict[int, Shot] = {}
        last_end: dict[int, int] = {}
        try:
            for chunk in self.record.chunks():
                snaps = chunk.columns()
                if not len(snaps):
                    continue
                if self.intervals is None:
                    self.intervals = Intervals(given[0], given[1], "sidecar")
                if not self.rec_start_ns:
                    self.rec_start_ns = int(snaps.end_ns[0]) - self.intervals.aggr_us * 1000
                aggr_ns = self.intervals.aggr_us * 1000
                age = ages.for_chunk(snaps)
                ends, tids = snaps.end_ns.tolist(), snaps.target_id.tolist()
                offsets = snaps.offsets.tolist()
                # In `last` mode only the last snapshot of each target in the chunk counts.
                final = {tid: i for i, tid in enumerate(tids)}
                for i, tid in enumerate(tids):
                    before = last_end.get(tid)
                    last_end[tid] = ends[i]
                    if not self.all_snapshots and final[tid] != i:
                        continue
                    lo, hi = offsets[i], offsets[i + 1]
                    duration = ends[i] - before if before is not None and before < ends[i] \
                        else aggr_ns
                    shot = Shot(int(tid), ends[i], duration, snaps.start[lo:hi].copy(),
                                snaps.end[lo:hi].copy(), snaps.nr_accesses[lo:hi].copy(),
                                age[lo:hi].copy())
                    if self.all_snapshots:
                        self.nr_shown += 1
                        self._source(ages)
                        yield shot
                    else:
                        last[int(tid)] = shot
        finally:
            ages.close()
        self._source(ages)
        if not self.all_snapshots:
            self.nr_shown = len(last)
            for tid in sorted(last):
                yield last[tid]

    def _source(self, ages: Any) -> None:
        if ages.from_sidecar and ages.derived:
            self.ages_from = "mixed"
        else:
            self.ages_from = "sidecar" if ages.from_sidecar else "derived"


SPACING_SNAPSHOTS = 50


def spacing_intervals(record: Any) -> Intervals:
    """Without a sidecar: the aggregation interval is the median spacing of the first
    target's first `SPACING_SNAPSHOTS` snapshots (read ahead; the same however the
    file is chunked), the sampling interval DAMON's default."""
    ends: list[int] = []
    first: int | None = None
    for chunk in record.chunks():
        snaps = chunk.columns()
        if not len(snaps):
            continue
        if first is None:
            first = int(snaps.target_id[0])
        ends += snaps.end_ns[snaps.of_target(first)].tolist()
        if len(ends) > SPACING_SNAPSHOTS:
            break
    gaps = np.diff(np.array(ends[:SPACING_SNAPSHOTS + 1], dtype=np.int64))
    gaps = gaps[gaps > 0]
    aggr_us = int(round(float(np.median(gaps)) / 1000)) if len(gaps) else 100_000
    return Intervals(DEFAULT_SAMPLE_US, max(aggr_us, 1), "record")


def intervals_line(iv: Intervals) -> str:
    text = (f"monitoring intervals: sample {format_time_us(iv.sample_us)}, "
            f"aggr {format_time_us(iv.aggr_us)}")
    if iv.source != "sidecar":
        text += " (no sidecar: aggr from the snapshots' spacing, sample assumed)"
    return text


def ages_line(source: str) -> str | None:
    if source == "sidecar":
        return None
    if source == "mixed":
        return "# ages: from the sidecar where it has them, else derived from the snapshots"
    return "# ages: derived from the snapshots (the sidecar has none): approximate"


def text_report(record: Any, path: str | None, opts: Options) -> Iterator[str]:
    """The report's text, a snapshot at a time."""
    walk = Walk(record, path, opts.all_snapshots)
    k = 0
    for shot in walk:
        iv = walk.intervals
        shot.values = values_of(shot, iv, opts.weights)
        many = opts.all_snapshots or walk.nr_shown > 1
        lines = [""] if k else []
        lines += snapshot_text(shot, opts, iv, walk.rec_start_ns, many, many)
        k += 1
        yield "\n".join(lines) + "\n"
    tail = [intervals_line(walk.intervals)]
    note = ages_line(walk.ages_from)
    if note:
        tail.append(note)
    yield "\n".join(tail) + "\n"


def json_report(record: Any, path: str, opts: Options, style_name: str) -> dict[str, Any]:
    """The report as one JSON object (docs/reports.md, `report access --json`)."""
    walk = Walk(record, path, opts.all_snapshots)
    out = []
    for shot in walk:
        iv = walk.intervals
        shot.values = values_of(shot, iv, opts.weights)
        idx = region_order(shot, opts)
        v = shot.values
        regions = [
            {"start": int(shot.start[k]), "end": int(shot.end[k]), "size": int(v["size"][k]),
             "nr_accesses": int(shot.nr[k]), "access_hz": float(v["hz"][k]),
             "access_rate_percent": float(v["percent"][k]), "age": int(shot.age[k]),
             "age_us": int(v["age"][k]), "idle_us": int(v["idle"][k]),
             "temperature": float(v["temperature"][k])}
            for k in idx.tolist()]
        entry: dict[str, Any] = {
            "target_id": shot.target_id, "start_ns": shot.end_ns - shot.duration_ns,
            "end_ns": shot.end_ns, "total_size": int(v["size"][idx].sum()),
            "regions": regions, "percentiles": None, "histogram": None}
        style = opts.style
        metric = "idle" if style.startswith("recency") else "temperature"
        if style.endswith("-percentiles"):
            entry["percentiles"] = [
                {"percentile": float(p), "value": float(x)}
                for p, x in percentiles(v[metric][idx], v["size"][idx], opts.points)]
        elif style.endswith("-sz-hist"):
            entry["histogram"] = [
                {"from": float(a), "to": float(b), "size": int(s)}
                for a, b, s in histogram(v[metric][idx], v["size"][idx], opts.hist_logscale)]
        out.append(entry)
    iv = walk.intervals
    return {
        "report": "access", "version": 1, "input": path, "style": style_name,
        "sample_us": iv.sample_us, "aggr_us": iv.aggr_us, "intervals_from": iv.source,
        "ages_from": walk.ages_from, "temperature_weights": list(opts.weights),
        "snapshots": out,
    }
