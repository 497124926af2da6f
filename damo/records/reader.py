"""Reading any DAMON record file: the one entry point is `read_snapshots(path)`.

Usage::

    from damo.records.reader import read_snapshots

    snaps = read_snapshots("damon.data")      # damo.records.snapshots.Snapshots
    for tid in snaps.target_ids():            # ids in order of first appearance
        idx = snaps.of_target(tid)            # that target's snapshots, time order
        ends = snaps.end_ns[idx]              # int64 ns, end of each aggregation
        for i in idx:
            start, end, nr_accesses = snaps.regions(i)   # numpy views

The result is columnar: per-snapshot arrays ``end_ns``, ``target_id``,
``record`` (which record of the file a snapshot came from; snapshots sharing
a record were written by one aggregation) and ``offsets`` into the flat region
arrays ``start``, ``end`` (uint64) and ``nr_accesses`` (uint32).

The content decides the format, never the file name:

- ``damon_recfmt_ver`` magic and an int32 version: recfmt v1 or v2;
- text with ``damon:damon_aggregated:`` events: ``perf script`` output;
- otherwise recfmt v0 (no header) if the bytes are a plausible sequence of
  records up to the end of the file.

Problems the user can fix raise `damo.errors.RecordFormatError` with a one-line
message.  A truncated last record or snapshot is not an error: it is dropped,
the rest is returned, and the message is printed to stderr as a warning (and
kept in ``Snapshots.warnings``).
"""

import os
import sys

import numpy as np

from damo.errors import RecordFormatError
from damo.records import perf_script, recfmt, recfmt_reader
from damo.records.snapshots import Snapshots

SNIFF_BYTES = 1 << 16


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise RecordFormatError("no such file") from None
    except IsADirectoryError:
        raise RecordFormatError("is a directory") from None
    except OSError as err:
        raise RecordFormatError(str(err.strerror)) from None


def parse_bytes(data: bytes) -> Snapshots:
    """Sniff and parse the content of a record file (see the module docstring)."""
    if not data:
        raise RecordFormatError("the file is empty")
    if data.startswith(recfmt.MAGIC):
        if len(data) < recfmt.HEADER_SIZE:
            raise RecordFormatError("the file is cut off in its header")
        version = int(np.frombuffer(data, "<i4", 1, len(recfmt.MAGIC))[0])
        if version not in recfmt.VERSIONS or version == 0:
            raise RecordFormatError(f"unknown record format version {version}")
        snaps = recfmt_reader.parse(data, version)
    elif perf_script.looks_like(data[:SNIFF_BYTES]):
        snaps = perf_script.parse(data)
    else:
        try:
            snaps = recfmt_reader.parse(data, 0)
        except RecordFormatError:
            raise RecordFormatError(
                "not a DAMON record file (no recfmt magic, no perf script events, "
                "and not a valid version 0 record)"
            ) from None
    _check(snaps)
    return snaps


def _check(snaps: Snapshots) -> None:
    """Reject content no monitor could have written, or nothing to report on."""
    if not len(snaps):
        raise RecordFormatError("the file holds no snapshots (every record has no target)")
    inverted = snaps.start > snaps.end
    if inverted.any():
        k = int(np.argmax(inverted))
        i = int(np.searchsorted(snaps.offsets, k, side="right") - 1)
        raise RecordFormatError(f"snapshot {i} has a region ending before it starts (corrupt)")
    for tid in snaps.target_ids():
        back = np.diff(snaps.end_ns[snaps.of_target(tid)]) < 0
        if back.any():
            raise RecordFormatError(f"snapshots of target {tid} go back in time (corrupt)")


def read_snapshots(path: str | os.PathLike, warn: bool = True) -> Snapshots:
    """Read the record file at `path`; see the module docstring."""
    path = os.fspath(path)
    try:
        snaps = parse_bytes(_read_bytes(path))
    except RecordFormatError as err:
        raise RecordFormatError(f"{path}: {err}") from None
    if warn:
        for message in snaps.warnings:
            print(f"damo: warning: {path}: {message}", file=sys.stderr)
    return snaps
