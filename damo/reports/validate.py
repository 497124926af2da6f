"""`damo validate`: is a record file what a monitor with given attributes should write?

After the seed's selftest (`_chk_record.py`, patch 13), per target and
snapshot, in one pass over the chunks of the file:

- ``interval``: consecutive snapshots of a target are about the aggregation
  interval apart (within `tolerance` percent, 15 as in the selftest), or that
  plus the time its aggregation waited for regions' missing checks, which the
  sidecar's ``"wait"`` message at the snapshot's time gives (damo's monitor);
- ``nr_regions``: the number of regions is within [min, max];
- ``region``: a region is not empty (start < end) and, within a snapshot,
  regions are sorted and do not overlap;
- ``nr_accesses``: no region was found accessed more often than there were
  samples in an aggregation (aggr / sample), plus the tolerance;
- ``format``: the reader's own findings: a truncated end, stray bytes, or
  corruption that stops the reading.

The attributes default to what the record's ``.meta`` sidecar says it was
recorded with, else DAMON's defaults (5 ms, 100 ms, at most 1000 regions).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from damo.core.attrs import Attrs
from damo.errors import RecordFormatError
from damo.records.meta import read_meta
from damo.records.reader import RecordFile

DEFAULT_TOLERANCE = 15.0
KEEP_PROBLEMS = 1000  # listed; more are only counted


@dataclass
class Limits:
    sample_us: int
    aggr_us: int
    min_nr_regions: int
    max_nr_regions: int
    tolerance: float = DEFAULT_TOLERANCE
    source: str = "DAMON's defaults"
    # (time_ns, aggr_us) from the sidecar: the aggregation interval a CPU budget or an
    # intervals goal put in force from that time on (the ratio to sampling is kept).
    aggr_changes: list[tuple[int, int]] = field(default_factory=list)
    # time_ns -> ns: how long the aggregation recorded at that time waited for its
    # regions' missing checks (the sidecar's wait messages): it ended that much later.
    waits: dict[int, int] = field(default_factory=dict)

    def aggr_ns_at(self, time_ns: int) -> int:
        """The aggregation interval in force at `time_ns`."""
        aggr_us = self.aggr_us
        for at, us in self.aggr_changes:
            if at > time_ns:
                break
            aggr_us = us
        return aggr_us * 1000

    @property
    def max_nr_accesses(self) -> float:
        return self.aggr_us / self.sample_us * (1 + self.tolerance / 100)


@dataclass
class Problem:
    kind: str
    message: str
    snapshot: int | None = None
    target_id: int | None = None


@dataclass
class Result:
    path: str
    limits: Limits
    nr_records: int = 0
    nr_snapshots: int = 0
    targets: dict[int, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    nr_problems: int = 0

    @property
    def valid(self) -> bool:
        return self.nr_problems == 0

    def add(self, problem: Problem) -> None:
        self.nr_problems += 1
        self.listed(problem)

    def listed(self, problem: Problem) -> None:
        """Keep `problem` for the listing (it is counted already)."""
        if len(self.problems) < KEEP_PROBLEMS:
            self.problems.append(problem)


def limits_for(path: str, sample_us: int | None, aggr_us: int | None,
               nr_regions: tuple[int, int] | None, tolerance: float) -> Limits:
    """The limits given, the rest from the sidecar if there is one, else DAMON's defaults."""
    defaults = Attrs()
    found: dict[str, Any] = {}
    source = "DAMON's defaults"
    try:
        messages = read_meta(path) or []
    except RecordFormatError:
        messages = []
    changes: list[tuple[int, int]] = []
    waits: dict[int, int] = {}
    for message in messages:
        kind = message.get("type")
        if kind == "start" and isinstance(message.get("attrs"), dict) and not found:
            found = message["attrs"]
            source = f"{path}.meta"
        elif kind in ("budget", "intervals") and isinstance(message.get("aggr_us"), int) \
                and isinstance(message.get("time_ns"), int):
            changes.append((message["time_ns"], message["aggr_us"]))
        elif kind == "wait" and isinstance(message.get("time_ns"), int) \
                and isinstance(message.get("waited_ns"), int):
            waits[message["time_ns"]] = waits.get(message["time_ns"], 0) + message["waited_ns"]
    # DAMON's merging goes below min_nr_regions at times (the kernel's own
    # conformance record has snapshots of 7 regions with a minimum of 10), so
    # the minimum is checked only when given.
    lo, hi = nr_regions if nr_regions is not None else (
        1, found.get("max_nr_regions", defaults.max_nr_regions))
    return Limits(
        sample_us=sample_us or found.get("sample_us", defaults.sample_interval),
        aggr_us=aggr_us or found.get("aggr_us", defaults.aggr_interval),
        min_nr_regions=int(lo), max_nr_regions=int(hi), tolerance=tolerance, source=source,
        aggr_changes=[] if aggr_us else sorted(changes), waits=waits)


def spacing(path: str, ends_ns: np.ndarray) -> np.ndarray:
    """Each gap between consecutive record times (`ends_ns`, sorted, distinct) as a multiple
    of the aggregation interval in force (the sidecar's budget and intervals messages;
    DAMON's default without a sidecar): the longer of those at its two ends, as the
    change is logged when the aggregation that decided it ends.  A gap's part that
    its aggregation waited for regions' missing checks (the sidecar's wait
    messages) is not counted: it is explained, not late."""
    lim = limits_for(path, None, None, None, DEFAULT_TOLERANCE)
    ends = np.asarray(ends_ns, dtype=np.int64).tolist()
    return np.array([(b - a - lim.waits.get(b, 0)) / max(lim.aggr_ns_at(a), lim.aggr_ns_at(b))
                     for a, b in zip(ends[:-1], ends[1:], strict=True)], dtype=float)


def validate(path: str, limits: Limits, chunk_bytes: int | None = None) -> Result:
    """Check the file at `path` against `limits`; reading problems are problems too."""
    result = Result(path, limits)
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    last_ns: dict[int, int] = {}
    try:
        record = RecordFile(path, warn=False, **kwargs)
        for chunk in record.chunks():
            _check_chunk(chunk, limits, last_ns, result)
    except RecordFormatError as err:
        result.add(Problem("format", str(err).removeprefix(f"{path}: ")))
        return result
    for message in record.warnings or []:
        result.add(Problem("format", message))
    return result


def _check_chunk(chunk: Any, lim: Limits, last_ns: dict[int, int], result: Result) -> None:
    snaps = chunk.columns()
    first = chunk.first_snapshot
    listed_before = len(result.problems)
    result.nr_snapshots = first + len(snaps)
    result.nr_records = int(snaps.record[-1]) + 1 if len(snaps) else result.nr_records
    tids = snaps.target_id.tolist()
    ends = snaps.end_ns.tolist()
    nrs = snaps.nr_regions.tolist()
    for i, (tid, ns, nr) in enumerate(zip(tids, ends, nrs, strict=True)):
        result.targets[tid] = result.targets.get(tid, 0) + 1
        prev = last_ns.get(tid)
        last_ns[tid] = ns
        where = f"snapshot {first + i} (target {tid}, at {ns} ns)"
        # An aggregation that spans a change of the interval may take either.
        aggr_ns = lim.aggr_ns_at(ns if prev is None else prev)
        # The aggregation's wait for missing checks (the sidecar says how long) explains
        # that much more; the rest must be the interval.
        waited = lim.waits.get(ns, 0)
        if prev is not None and all(abs(ns - prev - waited - a) * 100 > lim.tolerance * a
                                    for a in (aggr_ns, lim.aggr_ns_at(ns))):
            why = f" plus the {waited} ns its aggregation waited" if waited else ""
            result.add(Problem(
                "interval", f"{where}: {ns - prev} ns after the previous one, "
                f"not {aggr_ns} ns{why} (+-{lim.tolerance:g} %)", first + i, tid))
        if not lim.min_nr_regions <= nr <= lim.max_nr_regions:
            result.add(Problem(
                "nr_regions", f"{where}: {nr} regions, not within "
                f"{lim.min_nr_regions}-{lim.max_nr_regions}", first + i, tid))
    # Per region, vectorised: empty, unsorted or overlapping, too many accesses.
    start, end, acc = snaps.start, snaps.end, snaps.nr_accesses
    bad = start >= end
    follows = np.ones(len(start), dtype=bool)
    follows[snaps.offsets[:-1][snaps.nr_regions > 0]] = False  # first region of a snapshot
    overlap = np.zeros(len(start), dtype=bool)
    overlap[1:] = follows[1:] & (start[1:] < end[:-1])
    hot = acc > lim.max_nr_accesses
    found = np.flatnonzero(bad | overlap | hot)
    # Only the problems that will be listed are written out; the rest are counted.
    room = max(KEEP_PROBLEMS - len(result.problems), 0)
    result.nr_problems += int(bad.sum() + overlap.sum() + hot.sum())
    for k in found[:room].tolist():
        i = int(np.searchsorted(snaps.offsets, k, side="right") - 1)
        tid = tids[i]
        r = k - int(snaps.offsets[i])
        where = (f"snapshot {first + i} (target {tid}, at {ends[i]} ns), region {r} "
                 f"{int(start[k]):#x}-{int(end[k]):#x}")
        if bad[k]:
            result.listed(Problem("region", f"{where}: empty", first + i, tid))
        if overlap[k]:
            result.listed(Problem("region", f"{where}: starts before the previous region ends "
                                  f"({int(end[k - 1]):#x})", first + i, tid))
        if hot[k]:
            result.listed(Problem(
                "nr_accesses", f"{where}: nr_accesses {int(acc[k])}, more than "
                f"{lim.aggr_us}/{lim.sample_us} samples (+{lim.tolerance:g} %)", first + i, tid))
    # In file order: the snapshot checks above ran over the chunk before the region checks.
    result.problems[listed_before:] = sorted(result.problems[listed_before:],
                                             key=lambda p: p.snapshot)


def text(result: Result, verbose: bool) -> str:
    if result.valid:
        return (f"{result.path}: valid: {result.nr_records} records, {result.nr_snapshots} "
                f"snapshots of {len(result.targets)} target(s); checked against "
                f"{_limits_text(result.limits)}\n")
    shown = result.problems if verbose else result.problems[:1]
    lines = [f"{result.path}: {p.kind}: {p.message}" for p in shown]
    if verbose and result.nr_problems > len(shown):
        lines.append(f"{result.path}: ... {result.nr_problems - len(shown)} more problems")
    elif not verbose and result.nr_problems > 1:
        lines[0] += f" (and {result.nr_problems - 1} more problems; -v lists them)"
    return "\n".join(lines) + "\n"


def _limits_text(lim: Limits) -> str:
    return (f"sample {lim.sample_us} us, aggr {lim.aggr_us} us, "
            f"{lim.min_nr_regions}-{lim.max_nr_regions} regions (+-{lim.tolerance:g} %, "
            f"from {lim.source})")


def as_json(result: Result) -> str:
    import json

    lim = result.limits
    return json.dumps({
        "report": "validate",
        "version": 1,
        "file": result.path,
        "valid": result.valid,
        "nr_records": result.nr_records,
        "nr_snapshots": result.nr_snapshots,
        "targets": [{"target_id": tid, "nr_snapshots": n} for tid, n in result.targets.items()],
        "limits": {
            "sample_ns": lim.sample_us * 1000, "aggr_ns": lim.aggr_us * 1000,
            "min_nr_regions": lim.min_nr_regions, "max_nr_regions": lim.max_nr_regions,
            "tolerance_percent": lim.tolerance, "from": lim.source,
        },
        "nr_problems": result.nr_problems,
        "problems": [{"kind": p.kind, "message": p.message, "snapshot": p.snapshot,
                      "target_id": p.target_id} for p in result.problems],
    }) + "\n"
