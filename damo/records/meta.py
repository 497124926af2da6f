"""The metadata sidecar `<record>.meta`: what recfmt v2 cannot hold.

A stream of small msgpack maps, each written with one `write` call so that a
run cut short leaves every message whole.  Every message has a ``type``:

- ``"start"``: ``time_ns``, ``clock`` (``"CLOCK_MONOTONIC"`` or ``"virtual"``),
  ``damo_version``, ``kernel`` (uname release), ``ops``, ``attrs`` (a map of the
  monitoring attributes in microseconds and region counts), ``targets`` (a list
  of maps with ``id`` and, for processes, ``pid`` and ``cmdline``), ``command``
  (the command damo started, if any), ``startup_cpu_s`` (damo's CPU from its
  exec until monitoring started, with that of helper processes such as a
  compiler), ``adjust`` (the region adjustment, for damo's own monitor), and
  any ``extra`` fields of the source.
- ``"maps"``: ``time_ns``, ``target_id``, ``maps`` (a list of
  ``[start, end, perms, offset, path, dev, inode]``; files written before
  dev and inode were added have the first five), written at the start and
  whenever a target's mappings change at a regions update.
- ``"footprints"``: ``time_ns``, ``targets`` (a list of ``[target_id, vsz,
  rss]``, bytes, from ``/proc/PID/statm``), once per aggregation, for
  process targets (a target that exited has no entry).
- ``"target"``: ``time_ns``, ``id``, ``pid``, ``parent`` (the target that forked
  it), ``cmdline``: a child process joined the recording
  (``--include_child_tasks``; the start message's ``include_child_tasks`` and
  ``max_targets`` say how the run followed children).
- ``"target_end"``: ``time_ns``, ``id``: the target's process exited; its
  last record is the one before this message.
- ``"budget"`` (``vaddr``, and ``sim`` with ``--max-cpu``): ``time_ns``,
  ``max_cpu``, ``level``, ``cpu`` (% of a core measured, or nil),
  ``sampling_scale`` (the aggregation interval's multiple of the nominal
  one), ``samples_per_aggr`` (sampling steps per aggregation in force: fewer
  than nominal when the sampling interval alone was lengthened; counts stay
  in units of the nominal samples), ``steady_period`` (steps between two
  checks of a steady region),
  ``sample_us`` and ``aggr_us`` (the intervals in force), ``sample_floor``,
  ``checks_per_region_mean`` and ``_min`` (checks made per region in the last
  aggregation), ``nominal_checks``; written at the start, at each change and, with
  ``run_checks_per_region_mean`` (the mean over the run), at the end.
- ``"wait"`` (``vaddr``): ``time_ns`` (the record's time), ``steps`` (the
  sampling intervals the aggregations since the last record waited for
  regions checked fewer than the sample floor's times: steps lost to a stalled
  damo or late ticks), ``waited_ns`` (how long those waits took: the record
  came that much later than the aggregation interval), ``makeup_steps`` (the
  run's total so far); written only after an aggregation that waited, on
  both sampling paths (native loop and kernel-side checks).
- ``"relief"`` (``vaddr``): ``time_ns``, ``target_id``, ``on``: the target's
  memory-pressure relief started (true) or ended (false); while it is on,
  the regions over the target's file mappings are checked once per
  aggregation and never cleared, so their counts say whether a page was
  accessed since anything last cleared it (docs/recording.md, "Memory
  pressure").  A relief on when the target or the run ends has no end message.
- ``"intervals"`` (``--monitoring_intervals_goal``): ``time_ns``,
  ``sample_us`` and ``aggr_us`` chosen (before the budget's scale),
  ``score_bp`` (the access events observed, per 10,000 of the goal) and
  ``goal_bp``; written at each change.
- ``"ages"``: ``time_ns``, ``nr``, ``width``, ``ages``: the regions' ages of
  the record at ``time_ns`` (recfmt has no field for them), in aggregations,
  ``nr`` unsigned integers of ``width`` bytes (`damo.records.ages`); one per
  record, when the source knows ages (damo's own monitor; kernel DAMON
  whose tracepoint carries them).
- ``"end"``: ``time_ns``, ``nr_records``, ``reason`` (why monitoring ended),
  ``error`` (the write that failed, when one did), ``cpu_s`` (damo's own CPU
  from its exec), ``bpf_kernel_s`` (the kernel-side time of its attached BPF
  programs, which no thread of damo's is charged for), ``peak_rss_bytes``
  (its VmHWM), and source-specific counters such as ``lost_events``.

Reports use it when present and work without it.
"""

from collections.abc import Iterator
from typing import Any

import msgpack

from damo.errors import RecordFormatError
from damo.records.writer import OutputFile

SUFFIX = ".meta"


def meta_path(record_path: str) -> str:
    return record_path + SUFFIX


class MetaWriter(OutputFile):
    """The sidecar of a record being written."""

    def __init__(self, record_path: str):
        super().__init__(meta_path(record_path))
        self._packer = msgpack.Packer()

    def write(self, kind: str, **fields: Any) -> None:
        self._write(self._packer.pack({"type": kind, **fields}))


def read_meta(record_path: str) -> list[dict[str, Any]] | None:
    """Every message of `record_path`'s sidecar, or None when it has none.

    A message cut off at the end (a crash mid-write) is dropped.
    """
    try:
        with open(meta_path(record_path), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    return list(_unpack(data, meta_path(record_path)))


def _unpack(data: bytes, path: str) -> Iterator[dict[str, Any]]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    try:
        for index, message in enumerate(unpacker):
            if not isinstance(message, dict) or "type" not in message:
                raise RecordFormatError(f"{path}: not a damo metadata file")
            why = malformed(message)
            if why is not None:
                raise RecordFormatError(f"{path}: message {index} ({str(message['type'])[:20]}) "
                                        f"is malformed: {why}")
            yield message
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError,
            TypeError) as err:  # TypeError: a map key that cannot be one (a list)
        raise RecordFormatError(f"{path}: corrupt metadata ({err})") from None


_U64 = range(0, 2**64)


def _is_u64(value: Any) -> bool:
    return type(value) is int and value in _U64


def _row_of_u64(row: Any, n: int) -> bool:
    return isinstance(row, list) and len(row) >= n and all(_is_u64(v) for v in row[:n])


def malformed(message: dict[str, Any]) -> str | None:
    """What is wrong with the fields reports read from a message of a known type, or None.

    Unknown types and fields are left alone (a newer damo may write more); the fields
    reports use must have the shapes the module docstring gives.
    """
    kind = message["type"]
    if "time_ns" in message and not (type(message["time_ns"]) is int
                                     and 0 <= message["time_ns"] < 2**63):
        return "time_ns is not a time"
    if kind in ("maps", "footprints", "target", "target_end") and "time_ns" not in message:
        return "no time_ns"
    if kind == "maps":
        if not _is_u64(message.get("target_id")):
            return "target_id is not an id"
        maps = message.get("maps")
        if not isinstance(maps, list):
            return "maps is not a list"
        for m in maps:
            if not (isinstance(m, list) and len(m) >= 5 and all(_is_u64(m[i]) for i in (0, 1, 3))
                    and isinstance(m[2], str) and isinstance(m[4], str)
                    and all(isinstance(v, str) for v in m[5:6])
                    and all(_is_u64(v) for v in m[6:7])):
                return "a mapping is not [start, end, perms, offset, path, dev, inode]"
    elif kind == "footprints":
        rows = message.get("targets")
        if not isinstance(rows, list) or not all(_row_of_u64(r, 3) for r in rows):
            return "targets is not a list of [target_id, vsz, rss]"
    elif kind in ("target", "target_end"):
        if not _is_u64(message.get("id")):
            return "id is not an id"
    elif kind == "start":
        attrs = message.get("attrs")
        if attrs is not None and not (isinstance(attrs, dict) and all(
                _is_u64(v) for k, v in attrs.items() if k in _ATTRS)):
            return "attrs is not a map of intervals and region counts"
        targets = message.get("targets")
        if targets is not None and not (isinstance(targets, list) and all(
                isinstance(t, dict) and _is_u64(t.get("id", 0)) for t in targets)):
            return "targets is not a list of maps with ids"
    return None


_ATTRS = ("sample_us", "aggr_us", "update_us", "min_nr_regions", "max_nr_regions")
