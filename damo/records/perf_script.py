"""Parsing `perf script` text of the kernel's ``damon:damon_aggregated`` tracepoint.

One line per region::

    kdamond.0  4452 [000] 82820.952659: damon:damon_aggregated: \\
        target_id=18446623435582458880 nr_regions=8 94253027950592-94253031862272: 0 [age]

A snapshot is ``nr_regions`` consecutive lines of one target (the rule of
`damo.records.events`, shared with the live tracepoint reader) and its time is
the timestamp of its first line.  Fields are found relative to the event name, so
a command name with spaces does not shift them.
"""

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from damo.errors import RecordFormatError
from damo.records import events
from damo.records.snapshots import Snapshots
from damo.records.tracepoint import PERF_SCRIPT_EVENT as EVENT

_U64_MAX = 2**64 - 1
_I64_MAX = 2**63 - 1


def _timestamp_ns(token: bytes) -> int:
    """Exact nanoseconds of a ``sec.frac:`` perf timestamp (no float rounding)."""
    sec, _, frac = token.rstrip(b":").partition(b".")
    return int(sec) * 1_000_000_000 + int(frac[:9].ljust(9, b"0") or b"0")


def _parse_lines(lines: list[bytes], first_lineno: int) -> list[tuple[int, ...]]:
    rows: list[tuple[int, int, int, int, int, int]] = []
    for lineno, line in enumerate(lines, first_lineno):
        if EVENT not in line:
            continue
        fields = line.split()
        try:
            at = fields.index(EVENT)
            tail = fields[at + 1 :]
            if len(tail) not in (4, 5) or not tail[2].endswith(b":"):
                raise ValueError
            start, _, end = tail[2][:-1].partition(b"-")
            rows.append((
                _timestamp_ns(fields[at - 1]),
                int(tail[0].partition(b"=")[2]),
                int(tail[1].partition(b"=")[2]),
                int(start),
                int(end),
                int(tail[3]),
            ))
        except (ValueError, IndexError):
            raise RecordFormatError(f"line {lineno}: not a damon_aggregated event") from None
        if not all(0 <= v <= _U64_MAX for v in rows[-1]) or rows[-1][0] > _I64_MAX:
            # The columns are uint64 (the time int64): a value beyond is no kernel's output.
            raise RecordFormatError(f"line {lineno}: a number out of range")
        if rows[-1][2] <= 0:
            raise RecordFormatError(f"line {lineno}: nr_regions={rows[-1][2]}")
    return rows


class Parser:
    """perf-script text from `f`, parsed into `Snapshots` of about `chunk_bytes` of text each.

    Snapshots missing events (perf drops events when its buffer overflows, and
    the text may be cut short) are dropped with a warning, never kept short;
    the warnings are in ``warnings`` once the iteration is over.  A snapshot
    whose events run into the next chunk is carried over to it whole.
    """

    def __init__(self, f: BinaryIO, chunk_bytes: int):
        self.f = f
        self.chunk_bytes = max(int(chunk_bytes), 64)
        self.warnings: list[str] = []
        self.nr_snapshots = 0

    def __iter__(self) -> Iterator[Snapshots]:
        carry = np.zeros((0, 6), dtype=np.uint64)  # events of an unfinished snapshot
        partial = b""  # an unfinished line
        lineno = 1
        missing = 0
        eof = False
        while not eof:
            data = self.f.read(self.chunk_bytes)
            eof = len(data) < self.chunk_bytes
            lines = (partial + data).split(b"\n")
            partial = b"" if eof else lines.pop()
            rows = _parse_lines(lines, lineno)
            lineno += len(lines)
            ev = np.concatenate([carry, np.array(rows, dtype=np.uint64).reshape(-1, 6)])
            time_ns, tid, nr, start, end, _ = ev.T
            firsts, counts = events.snapshot_bounds(tid, nr, start, end)
            whole = counts == nr[firsts]
            carry = ev[:0]
            if len(firsts) and not eof:
                # The last snapshot may go on in the next chunk.
                carry = ev[firsts[-1]:]
                firsts, counts, whole = firsts[:-1], counts[:-1], whole[:-1]
            elif len(whole) and not whole[-1]:
                self.warnings.append(
                    f"last snapshot is incomplete ({counts[-1]} of {nr[firsts[-1]]} regions); "
                    "dropped"
                )
                firsts, counts, whole = firsts[:-1], counts[:-1], whole[:-1]
            missing += int((~whole).sum())
            firsts, counts = firsts[whole], counts[whole]
            if len(firsts):
                yield self._snapshots(ev, firsts, counts)
        if missing:
            self.warnings.append(f"{missing} snapshots miss events (lost by perf?); dropped")
        if not self.nr_snapshots:
            raise RecordFormatError("no complete snapshot in the perf script text")

    def _snapshots(self, ev: np.ndarray, firsts: np.ndarray, counts: np.ndarray) -> Snapshots:
        time_ns, tid, _, start, end, nr_accesses = ev.T
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        keep = np.repeat(firsts - offsets[:-1], counts) + np.arange(offsets[-1])
        first = self.nr_snapshots
        self.nr_snapshots += len(firsts)
        inverted = start[keep] > end[keep]
        if inverted.any():
            k = int(np.searchsorted(offsets, int(np.argmax(inverted)), side="right") - 1)
            raise RecordFormatError(
                f"snapshot {first + k} has a region ending before it starts (corrupt)")
        return Snapshots(
            end_ns=time_ns[firsts].astype(np.int64),
            target_id=tid[firsts],
            record=np.arange(first, first + len(firsts), dtype=np.int64),
            offsets=offsets,
            start=start[keep],
            end=end[keep],
            nr_accesses=nr_accesses[keep].astype(np.uint32),
            source="perf script",
            first_snapshot=first,
        )
