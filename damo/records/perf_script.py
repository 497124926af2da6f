"""Parsing `perf script` text of the kernel's ``damon:damon_aggregated`` tracepoint.

One line per region::

    kdamond.0  4452 [000] 82820.952659: damon:damon_aggregated: \\
        target_id=18446623435582458880 nr_regions=8 94253027950592-94253031862272: 0 [age]

A snapshot is ``nr_regions`` consecutive lines of one target and its time is the
timestamp of its first line.  Fields are found relative to the event name, so
a command name with spaces does not shift them.
"""

import numpy as np

from damo.errors import RecordFormatError
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
    """Parse perf-script text; an incomplete trailing snapshot is dropped with a warning."""
    end_ns: list[int] = []
    target_ids: list[int] = []
    counts: list[int] = []
    regions: list[int] = []  # start, end, nr_accesses, flattened
    expected = 0  # regions still missing from the open snapshot
    open_target = open_nr = 0
    for lineno, line in enumerate(data.splitlines(), 1):
        if EVENT not in line:
            continue
        fields = line.split()
        try:
            at = fields.index(EVENT)
            tail = fields[at + 1 :]
            if len(tail) not in (4, 5) or not tail[2].endswith(b":"):
                raise ValueError
            target_id = int(tail[0].partition(b"=")[2])
            nr_regions = int(tail[1].partition(b"=")[2])
            start, _, end = tail[2][:-1].partition(b"-")
            region = (int(start), int(end), int(tail[3]))
            time_ns = _timestamp_ns(fields[at - 1])
        except (ValueError, IndexError):
            raise RecordFormatError(f"line {lineno}: not a damon_aggregated event") from None
        if expected == 0:
            if nr_regions <= 0:
                raise RecordFormatError(f"line {lineno}: nr_regions={nr_regions}")
            end_ns.append(time_ns)
            target_ids.append(target_id)
            counts.append(0)
            expected, open_target, open_nr = nr_regions, target_id, nr_regions
        elif target_id != open_target or nr_regions != open_nr:
            raise RecordFormatError(
                f"line {lineno}: the snapshot of target {open_target} is interrupted "
                f"({expected} of its {open_nr} regions missing)"
            )
        regions.extend(region)
        counts[-1] += 1
        expected -= 1

    warnings = []
    if expected:
        warnings.append(
            f"last snapshot is incomplete ({counts[-1]} of {open_nr} regions); dropped"
        )
        del regions[len(regions) - 3 * counts[-1] :]
        end_ns.pop()
        target_ids.pop()
        counts.pop()
    if not end_ns:
        raise RecordFormatError("no complete snapshot in the perf script text")

    flat = np.array(regions, dtype=np.uint64).reshape(-1, 3)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Snapshots(
        end_ns=np.array(end_ns, dtype=np.int64),
        target_id=np.array(target_ids, dtype=np.uint64),
        record=np.arange(len(end_ns), dtype=np.int64),
        offsets=offsets,
        start=flat[:, 0].copy(),
        end=flat[:, 1].copy(),
        nr_accesses=flat[:, 2].astype(np.uint32),
        source="perf script",
        warnings=warnings,
    )
