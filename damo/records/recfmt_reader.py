"""Reading recfmt v0/v1/v2 in bounded chunks of whole records.

Every field of the format is a multiple of four bytes long, so a record starts
at a 4-byte boundary and a buffer holding whole records is a sequence of
32-bit words.  A Python loop walks the counts (one `struct` read per record
and per snapshot, never per region) to find where each record and snapshot
sits, checks what can be checked there (plausible counts, possible times, time
order per target) and keeps the headers as lists.  That is all `damo report
raw` needs; other reports ask a chunk for numpy columns (`RecfmtChunk.columns`),
built by masking the header words out of the word array: what is left is
exactly the regions, back to back, which a structured dtype view turns into
columns.  numpy is imported only then.
"""

import struct
from collections.abc import Iterator
from typing import BinaryIO

from damo.errors import RecordFormatError
from damo.records import recfmt

# Counts beyond these are corruption, not a record cut short by a crash.
MAX_PLAUSIBLE_TARGETS = 1 << 16
MAX_PLAUSIBLE_REGIONS = 1 << 24

MAX_SEC = (2**63 - 1) // recfmt.NSEC_PER_SEC - 1
RECORD_HEADER = struct.Struct("<qqI")
REGION = struct.Struct("<QQI")
SNAP_HEADER = {0: struct.Struct("<QI"), 1: struct.Struct("<iI"), 2: struct.Struct("<QI")}
DEFAULT_CHUNK_BYTES = 1 << 20


class RecfmtChunk:
    """Consecutive whole records of a recfmt file, as read from one buffer.

    Per record (``rec_pos`` byte offset in ``buf``, ``rec_ns``,
    ``rec_nr_snaps``; records without targets included) and per snapshot
    (``snap_pos`` byte offset of its header in ``buf``, ``end_ns``,
    ``target_id``, ``nr_regions``, ``record`` the file-wide record number),
    all plain lists.  ``first_snapshot`` and
    ``first_record`` place the chunk in the file.
    """

    def __init__(self, buf: bytes, version: int, first_record: int, first_snapshot: int):
        self.buf = buf
        self.version = version
        self.first_record = first_record
        self.first_snapshot = first_snapshot
        self.rec_pos: list[int] = []
        self.rec_ns: list[int] = []
        self.rec_nr_snaps: list[int] = []
        self.snap_pos: list[int] = []
        self.end_ns: list[int] = []
        self.target_id: list[int] = []
        self.nr_regions: list[int] = []
        self.record: list[int] = []
        self.path: str | None = None
        self._columns = None

    def __len__(self) -> int:
        return len(self.snap_pos)

    def region_rows(self, i: int) -> Iterator[tuple[int, int, int]]:
        """(start, end, nr_accesses) of each region of snapshot `i`, as Python ints."""
        lo = self.snap_pos[i] + SNAP_HEADER[self.version].size
        return REGION.iter_unpack(self.buf[lo : lo + REGION.size * self.nr_regions[i]])

    def record_groups(self) -> Iterator[tuple[int, range]]:
        """(time, snapshot indices) of each record, in file order, records without targets too."""
        i = 0
        for ns, n in zip(self.rec_ns, self.rec_nr_snaps, strict=True):
            yield ns, range(i, i + n)
            i += n

    def columns(self):
        """The chunk as `damo.records.snapshots.Snapshots` (numpy columns), built once."""
        if self._columns is None:
            self._columns = _columns(self)
        return self._columns


def _columns(chunk: RecfmtChunk):
    import numpy as np

    from damo.records.snapshots import Snapshots

    words = np.frombuffer(chunk.buf, dtype="<u4")
    counts = np.array(chunk.nr_regions, dtype=np.int64)
    # Everything that is not a header word is a region word.
    keep = np.ones(len(words), dtype=bool)
    rec = np.array(chunk.rec_pos, dtype=np.int64) // 4
    keep[(rec[:, None] + np.arange(RECORD_HEADER.size // 4)).ravel()] = False
    snap = np.array(chunk.snap_pos, dtype=np.int64) // 4
    keep[(snap[:, None] + np.arange(SNAP_HEADER[chunk.version].size // 4)).ravel()] = False
    regions = words[keep].view(recfmt.REGION_DTYPE)
    offsets = np.zeros(len(snap) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    target_dtype = np.int64 if chunk.version == 1 else np.uint64
    result = Snapshots(
        end_ns=np.array(chunk.end_ns, dtype=np.int64),
        target_id=np.array(chunk.target_id, dtype=target_dtype),
        record=np.array(chunk.record, dtype=np.int64),
        offsets=offsets,
        start=np.ascontiguousarray(regions["start"], dtype=np.uint64),
        end=np.ascontiguousarray(regions["end"], dtype=np.uint64),
        nr_accesses=np.ascontiguousarray(regions["nr_accesses"], dtype=np.uint32),
        source=f"recfmt v{chunk.version}",
        first_snapshot=chunk.first_snapshot,
    )
    inverted = result.start > result.end
    if inverted.any():
        k = int(np.argmax(inverted))
        i = int(np.searchsorted(offsets, k, side="right") - 1)
        raise_inverted(chunk, i)
    return result


def raise_inverted(chunk, i: int) -> None:
    """Snapshot `i` of `chunk` has a region ending before it starts.

    Found when a chunk's columns are built, after the reader handed it out:
    the message names the file itself (``chunk.path``, set by `RecordFile`).
    """
    message = f"snapshot {chunk.first_snapshot + i} has a region ending before it starts (corrupt)"
    path = getattr(chunk, "path", None)
    err = RecordFormatError(f"{path}: {message}" if path else message)
    err.prefixed = bool(path)
    raise err


class Walker:
    """Walks a recfmt file from `f` (positioned after the header), chunk by chunk.

    `file_size` is the size of the whole file; `header_bytes` where the records
    begin.  Iterating yields `RecfmtChunk`s of whole records, about
    `chunk_bytes` each (more when one record is bigger); afterwards
    ``warning`` says whether the end was cut short or had stray bytes.
    """

    def __init__(self, f: BinaryIO, version: int, file_size: int, header_bytes: int,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        self.f = f
        self.version = version
        self.file_size = file_size
        self.header_bytes = header_bytes
        self.chunk_bytes = max(int(chunk_bytes), 64)
        self.warning: str | None = None
        self.nr_records = 0
        self.nr_snapshots = 0
        self._last_ns: dict[int, int] = {}

    def __iter__(self) -> Iterator[RecfmtChunk]:
        rest = b""  # the start of a record the last read cut off
        at = self.header_bytes  # file offset of the buffer's first byte
        eof = False
        cut = None
        while not eof:
            # A fresh buffer each time: the chunk yielded keeps a view of it.
            want = self.chunk_bytes
            buf = bytearray(len(rest) + want)
            buf[: len(rest)] = rest
            got = self.f.readinto(memoryview(buf)[len(rest) :])
            eof = got < want
            if eof:
                del buf[len(rest) + got :]
            chunk, used, cut = self._walk(buf, at, eof)
            if chunk.rec_ns:
                yield chunk
            # A record longer than what is read stays in rest and grows with the next read.
            rest = bytes(buf[used:])
            at += used
        self._finish(rest, cut)

    def _walk(self, buf: bytearray, at: int, eof: bool):
        """Whole records at the start of `buf`: (chunk, bytes used, cut record or None).

        A record running past the end of `buf` stops the walk; at the end of
        the file it is the cut record, (byte offset, the count that overran or 0).
        """
        chunk = RecfmtChunk(b"", self.version, self.nr_records, self.nr_snapshots)
        snap_header = SNAP_HEADER[self.version]
        unpack_snap = snap_header.unpack_from
        unpack_rec = RECORD_HEADER.unpack_from
        n = len(buf) - len(buf) % 4
        pos = 0
        cut = None
        last_ns = self._last_ns
        rec_ns, rec_nr_snaps = chunk.rec_ns, chunk.rec_nr_snaps
        snap_pos, end_ns, target_id = chunk.snap_pos, chunk.end_ns, chunk.target_id
        nr_regions, record = chunk.nr_regions, chunk.record
        rec_no = self.nr_records
        while pos < n:
            if pos + RECORD_HEADER.size > n:
                cut = (at + pos, 0)
                break
            sec, nsec, nr_targets = unpack_rec(buf, pos)
            if nr_targets > MAX_PLAUSIBLE_TARGETS and (
                at + pos + RECORD_HEADER.size + nr_targets * snap_header.size > self.file_size
            ):
                raise RecordFormatError(
                    f"record at byte {at + pos} claims {nr_targets} targets, "
                    "past the end of the file (corrupt)"
                )
            p = pos + RECORD_HEADER.size
            first = len(snap_pos)
            for _ in range(nr_targets):
                if p + snap_header.size > n:
                    cut = (at + pos, 0)
                    break
                tid, nr = unpack_snap(buf, p)
                snap_pos.append(p)
                target_id.append(tid)
                nr_regions.append(nr)
                p += snap_header.size + REGION.size * nr
                if p > n:
                    cut = (at + pos, nr)
                    break
            if cut is not None:
                del snap_pos[first:], target_id[first:], nr_regions[first:]
                break
            # Beyond MAX_SEC the time in ns would not fit in int64 (about 292 years).
            if not (0 <= sec <= MAX_SEC and 0 <= nsec < recfmt.NSEC_PER_SEC):
                raise RecordFormatError(
                    f"record {rec_no} (byte {at + pos}) has an impossible time")
            ns = sec * recfmt.NSEC_PER_SEC + nsec
            for tid in target_id[first:]:
                if last_ns.get(tid, ns) > ns:
                    raise RecordFormatError(
                        f"snapshots of target {tid} go back in time (corrupt)")
                last_ns[tid] = ns
            chunk.rec_pos.append(pos)
            rec_ns.append(ns)
            rec_nr_snaps.append(nr_targets)
            end_ns.extend([ns] * nr_targets)
            record.extend([rec_no] * nr_targets)
            rec_no += 1
            pos = p
        if cut is not None and not eof:
            cut = None  # the rest of the record is in the next read
        chunk.buf = memoryview(buf)[:pos]  # no copy
        self.nr_records = rec_no
        self.nr_snapshots += len(snap_pos)
        return chunk, pos, cut

    def _finish(self, rest: bytes, cut) -> None:
        if cut is not None:
            where, nr = cut
            if nr > MAX_PLAUSIBLE_REGIONS:
                raise RecordFormatError(
                    f"record at byte {where} claims {nr} regions, past the end of the file "
                    "(corrupt)"
                )
            if not self.nr_records:
                raise RecordFormatError(
                    "no complete record: the file is cut off in its first record")
            self.warning = (
                f"last record (at byte {where}) is truncated; "
                f"using the {self.nr_records} complete records before it"
            )
        elif not self.nr_records:
            raise RecordFormatError("the file holds no records")
        elif rest:
            self.warning = f"{len(rest)} stray bytes at the end of the file ignored"
