"""Parsing `perf script` text of the kernel's ``damon:damon_aggregated`` tracepoint.

One line per region::

    kdamond.0  4452 [000] 82820.952659: damon:damon_aggregated: \\
        target_id=18446623435582458880 nr_regions=8 94253027950592-94253031862272: 0 [age]

A snapshot is ``nr_regions`` consecutive lines of one target (the rule of
`damo.records.events`, shared with the live tracepoint reader) and its time is
the timestamp of its first line.  Fields are found relative to the event name, so
a command name with spaces does not shift them.
"""

import numpy as np

from damo.errors import RecordFormatError
from damo.records import events
from damo.records.snapshots import Snapshots

EVENT = b"damon:damon_aggregated:"


def looks_like(head: bytes) -> bool:
    """Whether the first bytes of a file are perf-script text of DAMON events."""
    return b"\0" not in head and EVENT in head


def _timestamp_ns(token: bytes) -> int:
    """Exact nanoseconds of a ``sec.frac:`` perf timestamp (no float rounding)."""
    sec, _, frac = token.rstrip(b":").partition(b".")
    return int(sec) * 1_000_000_000 + int(frac[:9].ljust(9, b"0") or b"0")


def parse(data: bytes) -> Snapshots:
    """Parse perf-script text into snapshots.

    Snapshots missing events (perf drops events when its buffer overflows, and
    the text may be cut short) are dropped with a warning, never kept short.
    """
    rows: list[tuple[int, int, int, int, int, int]] = []
    for lineno, line in enumerate(data.splitlines(), 1):
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
        if rows[-1][2] <= 0:
            raise RecordFormatError(f"line {lineno}: nr_regions={rows[-1][2]}")

    ev = np.array(rows, dtype=np.uint64).reshape(-1, 6)
    time_ns, tid, nr, start, end, nr_accesses = ev.T
    firsts, counts = events.snapshot_bounds(tid, nr, start, end)
    whole = counts == nr[firsts]
    warnings = []
    if len(whole) and not whole[-1]:
        warnings.append(
            f"last snapshot is incomplete ({counts[-1]} of {nr[firsts[-1]]} regions); dropped"
        )
    if not whole[:-1].all():
        warnings.append(
            f"{int((~whole[:-1]).sum())} snapshots miss events (lost by perf?); dropped"
        )
    firsts, counts = firsts[whole], counts[whole]
    if not len(firsts):
        raise RecordFormatError("no complete snapshot in the perf script text")

    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    keep = np.repeat(firsts - offsets[:-1], counts) + np.arange(offsets[-1])
    return Snapshots(
        end_ns=time_ns[firsts].astype(np.int64),
        target_id=tid[firsts],
        record=np.arange(len(firsts), dtype=np.int64),
        offsets=offsets,
        start=start[keep],
        end=end[keep],
        nr_accesses=nr_accesses[keep].astype(np.uint32),
        source="perf script",
        warnings=warnings,
    )
