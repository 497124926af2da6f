"""Parsing recfmt v0/v1/v2 bytes into `Snapshots`.

Every field of the format is a multiple of four bytes long, so the whole file is
a sequence of 32-bit words.  One Python loop walks the counts (a few word reads
per snapshot, never per region) to find where each record and snapshot header
sits; everything else is numpy: the headers are masked out of the word array
and what is left is exactly the regions, back to back, which a structured dtype
view turns into columns.
"""

import sys
from array import array

import numpy as np

from damo.errors import RecordFormatError
from damo.records import recfmt
from damo.records.snapshots import Snapshots

# Counts beyond these are corruption, not a record cut short by a crash.
MAX_PLAUSIBLE_TARGETS = 1 << 16
MAX_PLAUSIBLE_REGIONS = 1 << 24

MAX_SEC = (2**63 - 1) // recfmt.NSEC_PER_SEC - 1
RECORD_HEADER_WORDS = recfmt.TIME_DTYPE.itemsize // 4
REGION_WORDS = recfmt.REGION_DTYPE.itemsize // 4


def _words(buf: bytes, nwords: int):
    """The file as a sequence of native ints, one per little-endian 32-bit word."""
    if sys.byteorder == "little":
        return memoryview(buf)[: nwords * 4].cast("I")
    swapped = array("I", buf[: nwords * 4])
    swapped.byteswap()
    return swapped


def _walk(buf: bytes, version: int, header_words: int):
    """Find the record and snapshot headers.

    Returns (record word offsets, snapshot word offsets, snapshot record
    numbers, end word of the last complete record, warning or None).
    """
    nwords = len(buf) // 4
    w = _words(buf, nwords)
    id_words = recfmt.TARGET_ID_DTYPE[version].itemsize // 4
    snap_header = id_words + 1
    records: list[int] = []
    snaps: list[int] = []
    snap_records: list[int] = []
    pos = header_words
    cut = None  # (word offset of the incomplete record, the count that overran or 0)
    while pos < nwords:
        if pos + RECORD_HEADER_WORDS > nwords:
            cut = (pos, 0)
            break
        nr_targets = w[pos + RECORD_HEADER_WORDS - 1]
        if nr_targets > MAX_PLAUSIBLE_TARGETS and (
            pos + RECORD_HEADER_WORDS + nr_targets * snap_header > nwords
        ):
            raise RecordFormatError(
                f"record at byte {pos * 4} claims {nr_targets} targets, "
                "past the end of the file (corrupt)"
            )
        p = pos + RECORD_HEADER_WORDS
        first_snap = len(snaps)
        for _ in range(nr_targets):
            if p + snap_header > nwords:
                cut = (pos, 0)
                break
            nr = w[p + id_words]
            snaps.append(p)
            p += snap_header + REGION_WORDS * nr
            if p > nwords:
                cut = (pos, nr)
                break
        if cut is not None:
            del snaps[first_snap:]
            break
        snap_records.extend([len(records)] * nr_targets)
        records.append(pos)
        pos = p
    warning = None
    if cut is not None:
        at, nr = cut
        if nr > MAX_PLAUSIBLE_REGIONS:
            raise RecordFormatError(
                f"record at byte {at * 4} claims {nr} regions, past the end of the file (corrupt)"
            )
        warning = (
            f"last record (at byte {at * 4}) is truncated; "
            f"using the {len(records)} complete records before it"
        )
    elif len(buf) % 4:
        warning = f"{len(buf) % 4} stray bytes at the end of the file ignored"
    return records, snaps, snap_records, pos, warning


def _u64(words: np.ndarray, at: np.ndarray) -> np.ndarray:
    return words[at].astype(np.uint64) | (words[at + 1].astype(np.uint64) << np.uint64(32))


def parse(buf: bytes, version: int) -> Snapshots:
    """Parse a whole recfmt file; `version` 0 means no header.

    Raises RecordFormatError for content that cannot be a record file; a
    truncated last record becomes a warning in the result.
    """
    header_words = 0 if version == 0 else recfmt.HEADER_SIZE // 4
    records, snaps, snap_records, end, warning = _walk(buf, version, header_words)
    if not records:
        if warning:
            raise RecordFormatError("no complete record: the file is cut off in its first record")
        raise RecordFormatError("the file holds no records")

    words = np.frombuffer(buf, dtype="<u4", count=end)
    rec = np.array(records, dtype=np.int64)
    sec = _u64(words, rec).view(np.int64)
    nsec = _u64(words, rec + 2).view(np.int64)
    # Beyond MAX_SEC the time in ns would not fit in int64 (about 292 years).
    bad = (sec < 0) | (sec > MAX_SEC) | (nsec < 0) | (nsec >= recfmt.NSEC_PER_SEC)
    if bad.any():
        k = int(np.argmax(bad))
        raise RecordFormatError(f"record {k} (byte {records[k] * 4}) has an impossible time")
    rec_ns = sec * recfmt.NSEC_PER_SEC + nsec

    snap = np.array(snaps, dtype=np.int64)
    id_words = recfmt.TARGET_ID_DTYPE[version].itemsize // 4
    if version == 1:
        target_id = words[snap].view(np.int32).astype(np.int64)
    else:
        target_id = _u64(words, snap)
    counts = words[snap + id_words].astype(np.int64)

    # Everything that is not a header word is a region word.
    keep = np.ones(end, dtype=bool)
    keep[:header_words] = False
    keep[(rec[:, None] + np.arange(RECORD_HEADER_WORDS)).ravel()] = False
    keep[(snap[:, None] + np.arange(id_words + 1)).ravel()] = False
    regions = words[keep].view(recfmt.REGION_DTYPE)

    offsets = np.zeros(len(snaps) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    record = np.array(snap_records, dtype=np.int64)
    result = Snapshots(
        end_ns=rec_ns[record],
        target_id=target_id,
        record=record,
        offsets=offsets,
        start=np.ascontiguousarray(regions["start"], dtype=np.uint64),
        end=np.ascontiguousarray(regions["end"], dtype=np.uint64),
        nr_accesses=np.ascontiguousarray(regions["nr_accesses"], dtype=np.uint32),
        source=f"recfmt v{version}",
    )
    if warning:
        result.warnings.append(warning)
    return result
