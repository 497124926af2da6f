"""`damo report raw`: every record as text, in the format of DAMON's usage.rst.

::

    start_time:  <ns of the first record>
    rel time:  <ns since start_time, 16 wide>
    nr_tasks:  <snapshots in this record>
    target_id:  <id>
    nr_regions:  <n>
    <start>-<end>(<size>):\t<nr_accesses>      (hex addresses, 12 wide)
    <blank line after each record>
"""

from collections.abc import Iterator

import numpy as np

from damo.records.snapshots import Snapshots

RECORDS_PER_CHUNK = 2000


def _region_lines(snaps: Snapshots, lo: int, hi: int) -> list[str]:
    starts = snaps.start[lo:hi].tolist()
    ends = snaps.end[lo:hi].tolist()
    nrs = snaps.nr_accesses[lo:hi].tolist()
    return [
        f"{s:012x}-{e:012x}({e - s:10d}):\t{n}\n" for s, e, n in zip(starts, ends, nrs, strict=True)
    ]


def raw_text(snaps: Snapshots) -> Iterator[str]:
    """The report, in chunks of whole records."""
    if not len(snaps):
        return
    base = int(snaps.end_ns[0])
    yield f"start_time:  {base}\n"
    # Index of the first snapshot of each record, plus the end.  A record with
    # no targets has no snapshot and so nothing to print.
    bounds = np.flatnonzero(np.diff(snaps.record, prepend=-1)).tolist() + [len(snaps)]
    ends = snaps.end_ns.tolist()
    tids = snaps.target_id.tolist()
    offsets = snaps.offsets.tolist()
    for first in range(0, len(bounds) - 1, RECORDS_PER_CHUNK):
        last = min(first + RECORDS_PER_CHUNK, len(bounds) - 1)
        base_region = offsets[bounds[first]]
        lines = _region_lines(snaps, base_region, offsets[bounds[last]])
        parts: list[str] = []
        for b in range(first, last):
            lo, hi = bounds[b], bounds[b + 1]
            parts.append(f"rel time: {ends[lo] - base:16d}\nnr_tasks:  {hi - lo}\n")
            for i in range(lo, hi):
                parts.append(
                    f"target_id:  {tids[i]}\nnr_regions:  {offsets[i + 1] - offsets[i]}\n"
                )
                parts.extend(lines[offsets[i] - base_region : offsets[i + 1] - base_region])
            parts.append("\n")
        yield "".join(parts)
