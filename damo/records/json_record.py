"""Upstream damo's record files: ``json`` and ``json_compressed`` (zlib of the same text).

The layout, as upstream damo (damonitor/damo, 3.x) writes and reads it
(`DamonRecord`, `DamonSnapshot` in src/_damo_records.py, `DamonRegion`,
`DamonNrAccesses`, `DamonAge`, `DamonIntervals` in src/_damon.py, number
formats in src/_damo_fmt_str.py):

- the file is a JSON list of *records*, one per monitored thing:
  ``kdamond_idx``, ``context_idx``, ``scheme_idx`` (ints or null),
  ``target_id`` (an int, or null for snapshots of DAMOS tried regions),
  ``intervals`` (``sample_us``, ``aggr_us``, ``ops_update_us``, or null),
  ``scheme_filters``, ``data_source`` and ``snapshots``;
- a snapshot: ``start_time``, ``end_time`` (ns, written as decimal strings),
  ``regions``, ``total_bytes``, ``damos_stats``, ``sample_interval_us``;
- a region: ``start`` and ``end`` (written as strings with thousands commas,
  "140,737,488,289,792"), ``nr_accesses`` (``samples`` and ``percent``),
  ``age`` (``usec``, a time text such as "1 s 200 ms", and
  ``aggr_intervals``, a number text with commas; either may be null), and
  optionally ``probe_hits`` and ``sz_filter_passed``.

Any number may also come as a JSON number; times may carry units ("5 ms").
A snapshot of one region 0-0 with nr_accesses and age -1 is the filler
upstream adds after a lone snapshot, and is dropped.

Reading: `JsonRecords.from_bytes` turns the whole text into one `Snapshots`
in time order (JSON cannot be walked a record at a time: one upstream record
holds every snapshot of its target, so the whole file is decoded first), and
`chunks_of` hands it out in chunks of whole records.  The region lists in
the writers' layout are parsed by regular expressions straight into numpy
columns (`_Fast`); anything else goes through `json.loads`, each region made
a tuple as soon as it is decoded.  The content is recognised by
`damo.records.reader` (a zlib stream, or text starting with ``[``).
Records are told apart by (kdamond, context, scheme, target); their
``target_id`` is kept when it tells them apart, else they are numbered 0, 1, ...
in file order.  Snapshots of different targets ending at the same time form
one record of the file, as recfmt's records do.

Writing: `JsonRecordWriter` has `damo.records.writer.RecordWriter`'s interface
(one `write` per aggregation).  A JSON file cannot grow by appending, so the
writer keeps the records and writes the whole file to a temporary file in
the same directory, then renames it over the output: at close, and during a
long run every `FLUSH_SECONDS` (less often when a rewrite gets expensive, so
rewriting costs at most ~1% of the run's time).  The file is valid at every
moment; a SIGKILL loses at most what came after the last rewrite.

Each snapshot written by damo carries one extra key upstream ignores,
``damo_order`` ([record, snapshot] numbers of the file it came from), so a
conversion back to recfmt restores the exact record layout.
"""

import json
import os
import re
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from damo.errors import OutputError, RecordFormatError
from damo.records.snapshots import Snapshots

FORMATS = ("json_compressed", "json")
FLUSH_SECONDS = 5.0
FLUSH_COST_SHARE = 0.01  # rewrites take at most this share of the wall time
ULONG_MAX = 2**64 - 1
_TIME_UNITS_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
                  "h": 3600 * 10**9, "d": 86400 * 10**9}
_TIME_PART = re.compile(r"\s*(-?[\d,]+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)\s*")


# ---- reading

def decode(data: bytes, kind: str, piece: int = 1 << 20) -> Any:
    """The JSON document of a file's bytes, regions already in columns or compacted.

    The fast path (`_Fast`) reads the text a `piece` at a time as it is
    decompressed, so the whole text is never held; the general path
    (`json.loads`) needs it whole.
    """
    try:
        fast = _Fast.decode_pieces(_pieces(data, kind, piece))
        if fast is not None:
            return fast
        if kind == "json_compressed":
            data = zlib.decompress(data)
        return json.loads(data, object_hook=_hook)
    except zlib.error as err:
        raise RecordFormatError(
            f"json_compressed: the zlib stream is corrupt or cut off ({err})") from None
    except UnicodeDecodeError:
        raise RecordFormatError(f"{kind}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise RecordFormatError(f"{kind}: not valid JSON ({err.msg} at line {err.lineno} "
                                f"column {err.colno}; cut off?)") from None
    except _RegionError as err:
        raise RecordFormatError(f"{kind}: region {err}") from None


def _pieces(data: bytes, kind: str, size: int) -> Iterator[bytes]:
    """The text of a file's bytes, `size` bytes at a time (decompressed as it goes)."""
    if kind != "json_compressed":
        for at in range(0, len(data), size):
            yield data[at : at + size]
        return
    d = zlib.decompressobj()
    out = d.decompress(data, size)
    while out:
        yield out
        out = d.decompress(d.unconsumed_tail, size)
    if not d.eof:
        raise zlib.error("incomplete or truncated stream")


class _RegionError(ValueError):
    pass


class _Columns:
    """The regions of one snapshot, parsed by `_Fast` straight into columns."""

    __slots__ = ("start", "end", "nr", "age", "filler")

    def __init__(self, start, end, nr, age, filler=False):
        self.start, self.end, self.nr, self.age, self.filler = start, end, nr, age, filler


class _Fast:
    """The common case at C speed: regions laid out as upstream's and damo's writers lay them.

    Each snapshot's list of regions is found by a regular expression and
    parsed by another (keys in the writers' order: start, end, nr_accesses
    {samples, percent}, age {usec, aggr_intervals}, then optional probe_hits
    and sz_filter_passed), straight into numpy columns; the list is replaced
    by its index before the rest, small, goes through `json.loads`.  A list
    that does not parse whole this way (another key order, samples given only
    as percent, an age only in usec) sends the whole file to the general path.
    """

    LIST = re.compile(rb'"regions":\s*\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]')
    REGION = re.compile(
        rb'\{\s*"start":\s*"?([\d,]+)"?,\s*"end":\s*"?([\d,]+)"?,\s*'
        rb'"nr_accesses":\s*\{\s*"samples":\s*(-?\d+),\s*"percent":\s*(?:-?[\d.]+|null)\s*\},'
        rb'\s*"age":\s*\{\s*"usec":\s*(null|-?[\d.]+|"[^"]*"),\s*'
        rb'"aggr_intervals":\s*(null|-?\d+|"-?[\d,]+")\s*\}'
        rb'(?:,\s*"probe_hits":\s*\[[^\]]*\])?(?:,\s*"sz_filter_passed":\s*(?:"[^"]*"|-?\d+))?'
        rb'\s*\}')

    class _Miss(Exception):
        pass

    KEY = b'"regions":'

    @classmethod
    def decode(cls, data: bytes) -> Any:
        """`decode_pieces` of text held whole."""
        return cls.decode_pieces(iter([data]))

    @classmethod
    def decode_pieces(cls, pieces: Iterator[bytes]) -> Any:
        """The document from its text in pieces, or None for the general path.

        Each region list is cut out of the text as soon as it is whole and
        replaced by its index; only the rest of the text (records, snapshot
        times: small) is kept for `json.loads`.
        """
        parsed: list[_Columns] = []
        rest: list[bytes] = []
        buf = b""
        try:
            for piece in pieces:
                buf += piece
                pos = 0
                while True:
                    k = buf.find(cls.KEY, pos)
                    if k < 0:
                        keep = max(pos, len(buf) - len(cls.KEY))  # a key cut in two stays
                        rest.append(buf[pos:keep])
                        buf = buf[keep:]
                        break
                    m = cls.LIST.match(buf, k)
                    rest.append(buf[pos:k])
                    if m is None:  # the list goes on in the next piece (or is not ours)
                        buf = buf[k:]
                        break
                    rows = cls.REGION.findall(m.group(1))
                    if len(rows) != m.group(1).count(b'"start"'):
                        raise cls._Miss
                    parsed.append(cls._columns(rows))
                    rest.append(b'"regions": %d' % (len(parsed) - 1))
                    pos = m.end()
        except (cls._Miss, ValueError, OverflowError):
            return None
        if cls.KEY in buf:
            return None  # a list that never closed the way the writers close it
        rest.append(buf)
        doc = json.loads(b"".join(rest))
        if not isinstance(doc, list):
            return doc
        for record in doc:
            snaps = record.get("snapshots") if isinstance(record, dict) else None
            for snap in snaps if isinstance(snaps, list) else []:
                if isinstance(snap, dict) and isinstance(snap.get("regions"), int):
                    snap["regions"] = parsed[snap["regions"]]
        return doc

    @staticmethod
    def _columns(rows: list) -> _Columns:
        if len(rows) == 1 and rows[0][:3] == (b"0", b"0", b"-1"):
            return _Columns(None, None, None, None, filler=True)
        n = len(rows)
        start = np.array([int(r[0].replace(b",", b"")) for r in rows], dtype=np.uint64) \
            if n else np.empty(0, np.uint64)
        end = np.array([int(r[1].replace(b",", b"")) for r in rows], dtype=np.uint64) \
            if n else np.empty(0, np.uint64)
        nr = np.array([int(r[2]) for r in rows], dtype=np.int64)
        if (nr < 0).any() or (nr >= 2**32).any():
            raise ValueError("nr_accesses out of range")
        ages = [r[4] for r in rows]
        if any(a == b"null" and r[3] != b"null" for a, r in zip(ages, rows, strict=True)):
            raise _Fast._Miss  # an age in usec only: the general path converts it
        age = None
        if n and b"null" not in ages:
            values = np.array([int(a.strip(b'"').replace(b",", b"")) for a in ages],
                              dtype=np.int64)
            if (values >= 0).all() and (values < 2**32).all():
                age = values.astype(np.uint32)
        return _Columns(start, end, nr.astype(np.uint32), age)


class _Region(tuple):
    """(start, end, samples or None, percent or None, age_aggr or None, age_usec or None)."""

    __slots__ = ()


def _hook(obj: dict) -> Any:
    """json.loads' object hook: a region dict becomes a `_Region` tuple at once."""
    if "start" in obj and "end" in obj and "nr_accesses" in obj:
        try:
            nr = obj["nr_accesses"] or {}
            age = obj.get("age") or {}
            return _Region((
                _number(obj["start"]), _number(obj["end"]),
                _opt(nr.get("samples"), _number), _opt(nr.get("percent"), _number),
                _opt(age.get("aggr_intervals"), _number), _opt(age.get("usec"), _time_us),
            ))
        except (ValueError, TypeError, AttributeError) as err:
            raise _RegionError(f"{_short(obj)}: {err}") from None
    return obj


def _short(obj: Any) -> str:
    text = json.dumps(obj, default=str)
    return text if len(text) < 120 else text[:117] + "..."


def _opt(value: Any, parse) -> Any:
    return None if value is None else parse(value)


def _number(value: Any) -> int | float:
    """A number as upstream writes or accepts it: 1234, "1,234", "max", 12.5."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a number: {value!r}")
    text = value.strip()
    if text == "max":
        return ULONG_MAX
    text = text.replace(",", "")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None


def _time_ns(value: Any) -> int | float:
    """A time in ns: a number, or upstream's time text ("1 s 200 ms", "5 ms", "1,024 us")."""
    try:
        return _number(value)
    except ValueError:
        if not isinstance(value, str):
            raise
    total = 0
    pos = 0
    for part in _TIME_PART.finditer(value):
        if part.start() != pos:
            break
        total += float(part.group(1).replace(",", "")) * _TIME_UNITS_NS[part.group(2)]
        pos = part.end()
    if pos != len(value) or not value.strip():
        raise ValueError(f"not a time: {value!r}")
    return total


def _time_us(value: Any) -> float:
    # A bare number is already in us; a text with units is converted.
    if isinstance(value, int | float):
        return value
    try:
        return _number(value)
    except ValueError:
        return _time_ns(value) / 1000


def _intervals(value: Any) -> dict[str, float] | None:
    if not isinstance(value, dict):
        return None
    try:
        out = {"sample_us": _time_us(value["sample_us"]), "aggr_us": _time_us(value["aggr_us"]),
               "update_us": _time_us(value["ops_update_us"])}
    except (KeyError, ValueError, TypeError):
        return None
    # Counts and ages are converted through them: positive and finite, or none at all.
    if not all(0 < v < float("inf") for v in out.values()):
        return None
    return out


class JsonRecords:
    """A parsed upstream record file: its snapshots (`Snapshots`, time order) and intervals.

    ``intervals`` are the first record's (``sample_us``, ``aggr_us``,
    ``update_us``) or None; ``has_age`` says whether every region had an age.
    """

    def __init__(self, doc: Any, kind: str):
        self.kind = kind
        if not isinstance(doc, list):
            raise RecordFormatError(f"{kind}: not a list of records (is it a damo record?)")
        self.intervals: dict[str, float] | None = None
        keys: list[tuple] = []
        rows: list[tuple] = []  # (order key, target index, end_ns, regions)
        has_order = True
        for r, record in enumerate(doc):
            if not isinstance(record, dict) or not isinstance(record.get("snapshots"), list):
                raise RecordFormatError(f"{kind}: record {r} has no list of snapshots")
            intervals = _intervals(record.get("intervals"))
            if self.intervals is None:
                self.intervals = intervals
            key = tuple(record.get(k) for k in ("kdamond_idx", "context_idx", "scheme_idx",
                                                  "target_id"))
            if key not in keys:
                keys.append(key)
            t = keys.index(key)
            for s, snap in enumerate(record["snapshots"]):
                where = f"record {r} snapshot {s}"
                if not isinstance(snap, dict) or not isinstance(snap.get("regions"),
                                                                 list | _Columns):
                    raise RecordFormatError(f"{kind}: {where} has no list of regions")
                regions = snap["regions"]
                if isinstance(regions, _Columns):
                    if regions.filler:
                        continue
                elif any(not isinstance(x, _Region) for x in regions):
                    raise RecordFormatError(f"{kind}: {where} has a region without start, end "
                                            "and nr_accesses")
                elif _is_filler(regions):
                    continue
                try:
                    end_ns = int(_time_ns(snap["end_time"]))
                    if not -2**63 <= end_ns < 2**63:  # a time in ns fits in 64 bits
                        raise ValueError
                except (KeyError, ValueError, TypeError, OverflowError):
                    raise RecordFormatError(f"{kind}: {where} has no valid end_time") from None
                order = snap.get("damo_order")
                if not (isinstance(order, list) and len(order) == 2
                        and all(type(x) is int and 0 <= x < 2**63 for x in order)):
                    has_order = False
                rows.append((order, t, end_ns, _columns_of(regions, intervals, kind, where)))
        if not rows:
            raise RecordFormatError(f"{kind}: the file holds no snapshots")
        self.target_ids = _target_ids(keys)
        self.snapshots = _assemble(rows, self.target_ids, has_order, kind)
        self.has_age = self.snapshots.age is not None

    @classmethod
    def from_bytes(cls, data: bytes, kind: str) -> "JsonRecords":
        return cls(decode(data, kind), kind)


def _is_filler(regions: list) -> bool:
    if len(regions) != 1:
        return False
    start, end, samples, _, age, _ = regions[0]
    return start == 0 and end == 0 and samples == -1 and age == -1


def _columns_of(regions: Any, intervals: dict | None, kind: str, where: str):
    if isinstance(regions, _Columns):
        bad = regions.start > regions.end
        if bad.any():
            k = int(np.argmax(bad))
            raise RecordFormatError(f"{kind}: {where} region {k} is not a valid region "
                                    f"({regions.start[k]}-{regions.end[k]})")
        return regions.start, regions.end, regions.nr, regions.age
    n = len(regions)
    start = np.empty(n, dtype=np.uint64)
    end = np.empty(n, dtype=np.uint64)
    nr = np.empty(n, dtype=np.uint32)
    age = np.empty(n, dtype=np.uint32)
    aged = True
    for k, region in enumerate(regions):
        s, e, samples, age_aggr = _region_numbers(region, intervals)
        if samples is None:
            raise RecordFormatError(f"{kind}: {where} region {k} has no nr_accesses samples")
        if not (0 <= s <= e <= ULONG_MAX) or not 0 <= samples < 2**32:
            raise RecordFormatError(f"{kind}: {where} region {k} is not a valid region "
                                    f"({s}-{e}, nr_accesses {samples})")
        start[k], end[k], nr[k] = int(s), int(e), round(samples)
        if age_aggr is None or not 0 <= age_aggr < 2**32:
            aged = False
        else:
            age[k] = round(age_aggr)
    return start, end, nr, (age if aged else None)


def _region_numbers(region: tuple, intervals: dict | None) -> tuple:
    """(start, end, samples or None, age in aggregations or None) of a `_Region`: samples
    from the percent and an age from usec through the intervals when not given."""
    s, e, samples, percent, age_aggr, age_us = region
    # A number too large for a float (an int of 400 digits) makes an invalid count, no age.
    if samples is None:
        if percent is None or intervals is None:
            return s, e, None, None
        try:
            samples = percent * intervals["aggr_us"] / intervals["sample_us"] / 100
        except OverflowError:
            samples = float("inf")
    if age_aggr is None and age_us is not None and intervals is not None:
        try:
            age_aggr = age_us / intervals["aggr_us"]
        except OverflowError:
            age_aggr = None
    return s, e, samples, age_aggr


def _target_ids(keys: list[tuple]) -> list[int]:
    """Each record key's target id: upstream's target_id when that tells them apart."""
    ids = [k[3] for k in keys]
    if all(isinstance(i, int) and 0 <= i < 2**64 for i in ids) and len(set(ids)) == len(ids):
        return ids
    return list(range(len(keys)))


def _assemble(rows: list[tuple], target_ids: list[int], has_order: bool, kind: str) -> Snapshots:
    """One `Snapshots` of every snapshot, in time order, records grouped by end time."""
    if has_order:
        rows.sort(key=lambda row: (row[0][0], row[0][1]))
        records = [row[0][0] for row in rows]
    else:
        rows.sort(key=lambda row: (row[2], row[1]))  # stable: per-target order kept
        records = []
        rec = -1
        seen: set[int] = set()
        last = None
        for _, t, end_ns, _ in rows:
            if end_ns != last or t in seen:
                rec += 1
                seen = set()
                last = end_ns
            seen.add(t)
            records.append(rec)
    # Record numbers from 0, dense, in file order.
    _, dense = np.unique(np.array(records, dtype=np.int64), return_inverse=True)
    counts = np.array([len(row[3][0]) for row in rows], dtype=np.int64)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    ages = [row[3][3] for row in rows]
    snaps = Snapshots(
        end_ns=np.array([row[2] for row in rows], dtype=np.int64),
        target_id=np.array([target_ids[row[1]] for row in rows], dtype=np.uint64),
        record=dense.astype(np.int64),
        offsets=offsets,
        start=_cat([row[3][0] for row in rows], np.uint64),
        end=_cat([row[3][1] for row in rows], np.uint64),
        nr_accesses=_cat([row[3][2] for row in rows], np.uint32),
        source=kind,
    )
    if all(a is not None for a in ages):
        snaps.age = _cat(ages, np.uint32)
    for t in set(snaps.target_id.tolist()):
        ends = snaps.end_ns[snaps.of_target(t)]
        if (np.diff(ends) < 0).any():
            raise RecordFormatError(f"{kind}: snapshots of target {t} go back in time")
    return snaps


def _cat(parts: list, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)


def chunks_of(snaps: Snapshots, chunk_regions: int) -> Iterator[Snapshots]:
    """`snaps` cut into chunks of whole records of about `chunk_regions` regions each."""
    n = len(snaps)
    if n == 0:
        return
    # Snapshot indices where a record starts; a chunk ends at one of them.
    starts = np.flatnonzero(np.diff(snaps.record, prepend=-1))
    lo = 0
    while lo < n:
        want = snaps.offsets[lo] + max(chunk_regions, 1)
        k = int(np.searchsorted(snaps.offsets[starts], want, side="right"))
        hi = int(starts[k]) if k < len(starts) else n
        if hi <= lo:  # one record bigger than a chunk
            later = starts[starts > lo]
            hi = int(later[0]) if len(later) else n
        yield _slice(snaps, lo, hi)
        lo = hi


def _slice(snaps: Snapshots, lo: int, hi: int) -> Snapshots:
    a, b = snaps.offsets[lo], snaps.offsets[hi]
    part = Snapshots(
        end_ns=snaps.end_ns[lo:hi], target_id=snaps.target_id[lo:hi],
        record=snaps.record[lo:hi], offsets=snaps.offsets[lo : hi + 1] - a,
        start=snaps.start[a:b], end=snaps.end[a:b], nr_accesses=snaps.nr_accesses[a:b],
        source=snaps.source, first_snapshot=snaps.first_snapshot + lo,
    )
    if snaps.age is not None:
        part.age = snaps.age[a:b]
    return part


# ---- writing

def _region_text(start: list, end: list, nr: list, age: list | None) -> str:
    if age is None:
        return ", ".join(
            f'{{"start": "{s:,}", "end": "{e:,}", "nr_accesses": {{"samples": {n}, '
            f'"percent": null}}, "age": {{"usec": null, "aggr_intervals": null}}}}'
            for s, e, n in zip(start, end, nr, strict=True))
    return ", ".join(
        f'{{"start": "{s:,}", "end": "{e:,}", "nr_accesses": {{"samples": {n}, '
        f'"percent": null}}, "age": {{"usec": null, "aggr_intervals": "{a:,}"}}}}'
        for s, e, n, a in zip(start, end, nr, age, strict=True))


class _Snap:
    __slots__ = ("order", "end_ns", "start", "end", "nr", "age")

    def __init__(self, order, end_ns, start, end, nr, age):
        self.order, self.end_ns = order, end_ns
        self.start, self.end, self.nr, self.age = start, end, nr, age


def encode(targets: dict[int, list[_Snap]], intervals: dict[str, float] | None) -> str:
    """The JSON text of a record file, in upstream's layout (one record per target)."""
    aggr_ns = None if intervals is None else round(intervals["aggr_us"] * 1000)
    if intervals is None:
        intervals_text = "null"
    else:
        intervals_text = json.dumps({"sample_us": str(round(intervals["sample_us"])),
                                     "aggr_us": str(round(intervals["aggr_us"])),
                                     "ops_update_us": str(round(intervals["update_us"]))})
    parts = ["["]
    for t, (target_id, snaps) in enumerate(targets.items()):
        parts.append(("," if t else "") + '\n{"kdamond_idx": null, "context_idx": null, '
                     f'"intervals": {intervals_text}, "scheme_idx": null, '
                     f'"target_id": {target_id}, "scheme_filters": [], "snapshots": [')
        gap = _first_gap(snaps, aggr_ns)
        prev = None
        for k, snap in enumerate(snaps):
            start_ns = prev if prev is not None else snap.end_ns - gap
            prev = snap.end_ns
            start, end = snap.start.tolist(), snap.end.tolist()
            total = int((snap.end.astype(np.int64, copy=False) - snap.start.astype(
                np.int64, copy=False)).sum()) if len(start) else 0
            regions = _region_text(start, end, snap.nr.tolist(),
                                   None if snap.age is None else snap.age.tolist())
            parts.append(
                f'{"," if k else ""}\n{{"start_time": "{start_ns}", "end_time": "{snap.end_ns}", '
                f'"regions": [{regions}], "total_bytes": "{total}", "damos_stats": null, '
                f'"sample_interval_us": null, "damo_order": [{snap.order[0]}, {snap.order[1]}]}}')
        parts.append('], "data_source": "unknown"}')
    parts.append("\n]\n")
    return "".join(parts)


def _first_gap(snaps: list[_Snap], aggr_ns: int | None) -> int:
    """How long before its end the first snapshot started (upstream needs a start_time)."""
    if aggr_ns is not None:
        return aggr_ns
    if len(snaps) >= 2:
        return (snaps[-1].end_ns - snaps[0].end_ns) // (len(snaps) - 1)
    return 0


class JsonRecordWriter:
    """A json or json_compressed record being written; `RecordWriter`'s interface.

    Created like `damo.records.writer.open_output` creates a file: an existing
    file is kept as ``<path>.old``, the new one is made 0600 without following
    a symlink (O_EXCL|O_NOFOLLOW) and holds an empty list of records until the
    first rewrite.  Every rewrite goes to a temporary file in the same
    directory (0600, O_EXCL) renamed over the output, so the output is always a
    whole file.  `flush_seconds` None rewrites only at `close`; 0 after every
    record.
    """

    done = ""  # it never ends a recording itself

    def __init__(self, path: str, fmt: str = "json_compressed",
                 intervals: dict[str, float] | None = None,
                 flush_seconds: float | None = FLUSH_SECONDS):
        from damo.records.writer import is_stream, open_output

        if fmt not in FORMATS:
            raise ValueError(f"unknown JSON record format {fmt!r}")
        self.path = path
        self.fmt = fmt
        self.intervals = intervals
        self.flush_seconds = flush_seconds
        self.nr_records = 0
        self.failed = False
        self.nr_rewrites = 0
        self.rewrite_seconds = 0.0  # CPU of all rewrites, for the docs' figures
        self._targets: dict[int, list[_Snap]] = {}
        self._nr_snaps = 0
        self._closed = False
        self._dirty = False
        # A device or FIFO (-o /dev/null) cannot be renamed over: written once, at close.
        self._stream_fd = open_output(path) if is_stream(path) else -1
        if self._stream_fd < 0:
            fd = open_output(path)
            try:
                self._write_fd(fd, self._payload("[]\n"))
                self._ino = os.fstat(fd).st_ino
            finally:
                os.close(fd)
        self._next_flush = time.monotonic() + (flush_seconds or 0)

    def write(self, time_ns: int, targets: Sequence[Any]) -> None:
        """Append one record (kept in memory; written at the next rewrite)."""
        if self.failed:
            raise OutputError(f"cannot write {self.path}: an earlier write failed")
        for t in targets:
            age = getattr(t, "age", None)
            self._targets.setdefault(int(t.target_id), []).append(_Snap(
                (self.nr_records, self._nr_snaps), int(time_ns),
                np.array(t.start, dtype=np.uint64), np.array(t.end, dtype=np.uint64),
                np.array(t.nr_accesses, dtype=np.uint32),
                None if age is None else np.array(age, dtype=np.uint32)))
            self._nr_snaps += 1
        self.nr_records += 1
        self._dirty = True
        if self.flush_seconds is not None and self._stream_fd < 0 \
                and time.monotonic() >= self._next_flush:
            self.flush()

    def write_snapshots(self, snaps: Snapshots) -> None:
        """Append every record of a `Snapshots` chunk (conversion), ages included."""
        for _, idx in snaps.record_groups():
            self.write(int(snaps.end_ns[idx.start]), [_SnapView(snaps, i) for i in idx])

    def flush(self) -> None:
        """Rewrite the whole file now (temporary file, then rename)."""
        if self.failed:
            raise OutputError(f"cannot write {self.path}: an earlier write failed")
        cpu0, wall0 = time.process_time(), time.monotonic()
        if self._stream_fd >= 0:
            self._flush_stream()
            return
        self._check_still_ours()
        data = self._payload(encode(self._targets, self.intervals))
        folder = os.path.dirname(self.path) or "."
        try:
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(self.path) + ".",
                                       suffix=".tmp", dir=folder)
        except OSError as err:
            self.failed = True
            raise OutputError(f"cannot write {self.path}: {err.strerror}") from None
        try:
            try:
                self._write_fd(fd, data)
                ino = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as err:
            self.failed = True
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise OutputError(f"cannot write {self.path}: {err.strerror}") from None
        self._ino = ino
        self._dirty = False
        self.nr_rewrites += 1
        self.rewrite_seconds += time.process_time() - cpu0
        took = time.monotonic() - wall0
        if self.flush_seconds:  # 0: after every record, whatever it costs (tests)
            self._next_flush = time.monotonic() + max(self.flush_seconds,
                                                      took / FLUSH_COST_SHARE)

    def _flush_stream(self) -> None:
        try:
            self._write_fd(self._stream_fd, self._payload(encode(self._targets, self.intervals)))
        except OSError as err:
            self.failed = True
            raise OutputError(f"cannot write {self.path}: {err.strerror}") from None
        finally:
            os.close(self._stream_fd)
            self._stream_fd = -2  # written: never again
        self._dirty = False

    def _check_still_ours(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        if st is None or st.st_ino != self._ino:
            self.failed = True
            what = "removed" if st is None else "replaced"
            raise OutputError(f"cannot write {self.path}: the file was {what}")

    def _payload(self, text: str) -> bytes:
        data = text.encode()
        return zlib.compress(data) if self.fmt == "json_compressed" else data

    @staticmethod
    def _write_fd(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def close(self) -> None:
        """The last rewrite (if anything is new), unless a write failed."""
        if self._closed:
            return
        self._closed = True
        if (self._dirty or self._stream_fd >= 0) and not self.failed:
            self.flush()

    def __enter__(self) -> "JsonRecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SnapView:
    """One snapshot of a `Snapshots` seen as a `TargetRegions` (with its age)."""

    __slots__ = ("target_id", "start", "end", "nr_accesses", "age")

    def __init__(self, snaps: Snapshots, i: int):
        lo, hi = snaps.offsets[i], snaps.offsets[i + 1]
        self.target_id = int(snaps.target_id[i])
        self.start, self.end, self.nr_accesses = snaps.regions(i)
        self.age = None if snaps.age is None else snaps.age[lo:hi]
