"""`damo report raw`: every record as text, in the format of DAMON's usage.rst.

::

    start_time:  <ns of the first record>
    rel time:  <ns since start_time, 16 wide>
    nr_tasks:  <snapshots in this record>
    target_id:  <id>
    nr_regions:  <n>
    <start>-<end>(<size>):\t<nr_accesses>      (hex addresses, 12 wide)
    <blank line after each target's regions>

As the seed-era tool prints it: a record of two targets has two blank lines,
one after each target's list; a record without targets only its first two lines.

Works over the chunks of a `damo.records.reader.RecordFile` (or a
`Snapshots`).  A chunk of few regions is formatted with plain Python ints:
for a small recfmt file numpy is never loaded, so the report takes about the
interpreter's start-up time.  Bigger chunks are formatted a whole column at
a time (`damo.reports.numtext`), to the same bytes.
"""

from collections.abc import Iterable, Iterator
from typing import Any

from damo.records.recfmt_reader import raise_inverted
from damo.reports.spans import ints as _ints

REGION_LINE = "%012x-%012x(%10d):\t%d\n"
# From this many regions in a chunk on, numpy's start-up pays for itself.
VECTOR_REGIONS = 32768
JSON_REGION = '{"start":%d,"end":%d,"nr_accesses":%d}'


def _regions_text(chunk: Any, i: int, nr: int) -> str:
    text = "".join([REGION_LINE % (s, e, e - s, n) for s, e, n in chunk.region_rows(i)])
    # Each line has one '-' between its addresses; a negative size adds another.
    if text.count("-") != nr:
        raise_inverted(chunk, i)
    return text


def check(record: Any) -> None:
    """A first pass over a `RecordFile`, so that a corrupt file prints nothing.

    The headers are checked as they are read.  Regions ending before they
    start are found in numpy columns, unless the file is one chunk: then the
    formatting finds them before anything is written, without numpy.
    """
    first = None
    for k, chunk in enumerate(record.chunks()):
        if k == 0:
            first = chunk
            continue
        if k == 1:
            first.columns()
        chunk.columns()


def raw_text(chunks: Iterable[Any]) -> Iterator[bytes]:
    """The report, one piece per chunk of the file."""
    base = None
    for chunk in chunks:
        parts: list[str | bytes] = []
        tids = _ints(chunk.target_id)
        nrs = _ints(chunk.nr_regions)
        if sum(nrs) >= VECTOR_REGIONS:
            body, line_at = _region_block(chunk.columns())
        else:
            body = None
        for ns, snaps in chunk.record_groups():
            if base is None:
                base = ns
                parts.append(f"start_time:  {base}\n")
            parts.append(f"rel time: {ns - base:16d}\nnr_tasks:  {len(snaps)}\n")
            for i in snaps:
                parts.append(f"target_id:  {tids[i]}\nnr_regions:  {nrs[i]}\n")
                if body is None:
                    parts.append(_regions_text(chunk, i, nrs[i]))
                else:
                    parts.append(body[line_at[i] : line_at[i + 1]])
                parts.append("\n")
        yield b"".join(p if isinstance(p, bytes) else p.encode() for p in parts)


def _region_block(snaps: Any) -> tuple[bytes, list[int]]:
    """The region lines of a whole chunk, and where each snapshot's lines begin in them."""
    import numpy as np

    from damo.reports import numtext

    size = snaps.end - snaps.start
    body, lengths = numtext.join_rows([
        numtext.hex_field(snaps.start, 12), b"-", numtext.hex_field(snaps.end, 12), b"(",
        numtext.dec_field(size, 10), b"):\t", numtext.dec_field(snaps.nr_accesses, 0), b"\n",
    ], len(size))
    at = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=at[1:])
    return body, at[snaps.offsets].tolist()


def raw_json(chunks: Iterable[Any]) -> Iterator[str]:
    """The same as one JSON object (docs/reports.md, "JSON output"), streamed."""
    base = None
    sep = ""
    for chunk in chunks:
        parts: list[str] = []
        tids = _ints(chunk.target_id)
        nrs = _ints(chunk.nr_regions)
        for ns, snaps in chunk.record_groups():
            if base is None:
                base = ns
                parts.append(f'{{"report":"raw","version":1,"start_time_ns":{base},"records":[\n')
            targets = []
            for i in snaps:
                rows = list(chunk.region_rows(i))
                if any(e < s for s, e, _ in rows):
                    raise_inverted(chunk, i)
                text = ",".join([JSON_REGION % row for row in rows])
                targets.append(f'{{"target_id":{tids[i]},"nr_regions":{nrs[i]},'
                               f'"regions":[{text}]}}')
            parts.append(f'{sep}{{"time_ns":{ns},"targets":[{",".join(targets)}]}}')
            sep = ",\n"
        yield "".join(parts)
    yield "]}\n" if base is not None else ""


