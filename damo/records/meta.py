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
  ``sampling_scale`` (the intervals' multiple of the nominal ones),
  ``steady_period`` (steps between two checks of a steady region),
  ``sample_us`` and ``aggr_us`` (the intervals in force), ``sample_floor``,
  ``checks_per_region_mean`` and ``_min`` (checks made per region in the last
  aggregation), ``makeup_steps`` (steps aggregations waited for, so far),
  ``nominal_checks``; written at the start, at each change and, with
  ``run_checks_per_region_mean`` (the mean over the run), at the end.
- ``"intervals"`` (``--monitoring_intervals_goal``): ``time_ns``,
  ``sample_us`` and ``aggr_us`` chosen (before the budget's scale),
  ``score_bp`` (the access events observed, per 10,000 of the goal) and
  ``goal_bp``; written at each change.
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
        for message in unpacker:
            if not isinstance(message, dict) or "type" not in message:
                raise RecordFormatError(f"{path}: not a damo metadata file")
            yield message
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as err:
        raise RecordFormatError(f"{path}: corrupt metadata ({err})") from None
