"""Reading any DAMON record file, in bounded chunks (`RecordFile`) or whole (`read_snapshots`).

Reports read a file of any size through `RecordFile`::

    from damo.records.reader import RecordFile

    record = RecordFile("damon.data")         # sniffed now, read on demand
    for chunk in record.chunks():             # whole records, ~1 MB of file each
        snaps = chunk.columns()               # numpy Snapshots of this chunk
        ...                                   # chunk.first_snapshot: its place

and a file that fits in memory can be read whole::

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
- upstream damo's ``json_compressed`` (a zlib stream of JSON) or ``json``
  (text starting with ``[``) records: `damo.records.json_record`;
- otherwise recfmt v0 (no header) if the bytes are a plausible sequence of
  records up to the end of the file.

Problems the user can fix raise `damo.errors.RecordFormatError` with a one-line
message.  A truncated last record or snapshot is not an error: it is dropped,
the rest is returned, and the message is printed to stderr as a warning (and
kept in ``Snapshots.warnings``).
"""

import os
import stat
import sys
from collections.abc import Iterator
from typing import Any

from damo.errors import RecordFormatError
from damo.records import recfmt
from damo.records.tracepoint import PERF_SCRIPT_EVENT

SNIFF_BYTES = 1 << 16
DEFAULT_CHUNK_BYTES = 1 << 20  # of the file: a few MB of columns and text


def _open(path: str):
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise RecordFormatError("no such file") from None
    except IsADirectoryError:
        raise RecordFormatError("is a directory") from None
    except OSError as err:
        raise RecordFormatError(str(err.strerror)) from None


class RecordFile:
    """A record file, sniffed once and read in chunks as many times as a report needs.

    ``chunks()`` yields, in file order, chunks of whole records (whole
    snapshots for perf-script text) of about `chunk_bytes` of the file each:
    `damo.records.recfmt_reader.RecfmtChunk` for recfmt, `Snapshots` for
    perf-script text; both have ``columns()`` (numpy `Snapshots`),
    ``record_groups()`` and ``region_rows(i)``.  Problems raise
    `RecordFormatError` (``FILE: message``) when the reading reaches them;
    warnings (a truncated end) are printed to stderr once, at the end of the
    first full pass, and kept in ``warnings``.

    A pipe (``-i /dev/stdin``, ``<(perf script)``) can be read only once, so
    it is first copied, a block at a time, to an unnamed temporary file.
    """

    def __init__(self, path: str | os.PathLike, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 warn: bool = True):
        self.path = os.fspath(path)
        self.warn = warn
        self.warnings: list[str] | None = None
        self._spool = None
        self._json = None  # the parsed document of a JSON record
        with self._errors():
            with _open(self.path) as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    self._spool = _spool(f)
            with self._open() as f:
                head = f.read(SNIFF_BYTES)
                self.size = os.fstat(f.fileno()).st_size
            self.kind, self.version = _sniff(head)
        # A chunk never needs to be bigger than the file (one more byte sees its end).
        self.chunk_bytes = max(min(int(chunk_bytes), self.size + 1), 64)
        self._json_chunk_bytes = int(chunk_bytes)  # a JSON file's size says nothing of its data

    def _errors(self):
        return _Prefix(self.path)

    def _open(self):
        if self._spool is None:
            return _open(self.path)
        f = os.fdopen(os.dup(self._spool.fileno()), "rb")
        f.seek(0)
        return f

    def chunks(self) -> Iterator[Any]:
        with self._errors(), self._open() as f:
            if self.kind in ("json", "json_compressed"):
                yield from self._json_chunks(f)
                return
            if self.kind == "perf":
                from damo.records import perf_script

                source = perf_script.Parser(f, self.chunk_bytes)
                for chunk in source:
                    chunk.path = self.path
                    yield chunk
                warnings = source.warnings
            else:
                from damo.records import recfmt_reader

                header = 0 if self.version == 0 else recfmt.HEADER_SIZE
                f.seek(header)
                walker = recfmt_reader.Walker(f, self.version, self.size, header,
                                              self.chunk_bytes)
                try:
                    for chunk in walker:
                        chunk.path = self.path
                        yield chunk
                except RecordFormatError:
                    if self.version == 0 and not walker.nr_snapshots:
                        raise RecordFormatError(
                            "not a DAMON record file (no recfmt magic, no perf script events, "
                            "and not a valid version 0 record)"
                        ) from None
                    raise
                if not walker.nr_snapshots:
                    raise RecordFormatError(
                        "the file holds no snapshots (every record has no target)")
                warnings = [walker.warning] if walker.warning else []
        if self.warnings is None:
            self.warnings = warnings
            if self.warn:
                for message in warnings:
                    print(f"damo: warning: {self.path}: {message}", file=sys.stderr)

    def _json_chunks(self, f) -> Iterator[Any]:
        # A JSON document is decoded whole (see json_record), once per RecordFile.
        from damo.records import json_record

        if self._json is None:
            self._json = json_record.JsonRecords.from_bytes(f.read(), self.kind)
            self.warnings = []
        for chunk in json_record.chunks_of(self._json.snapshots,
                                              self._json_chunk_bytes // 20):
            chunk.path = self.path
            yield chunk

    def columns(self) -> Iterator[Any]:
        """The chunks as numpy `Snapshots`."""
        for chunk in self.chunks():
            yield chunk.columns()


def _spool(f):
    import tempfile

    spool = tempfile.TemporaryFile(prefix="damo-")
    try:
        while block := f.read(DEFAULT_CHUNK_BYTES):
            spool.write(block)
    except OSError as err:
        spool.close()
        raise RecordFormatError(str(err.strerror)) from None
    spool.flush()
    return spool


class _Prefix:
    """Puts the file name in front of a `RecordFormatError`'s message, once."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, err, tb) -> bool:
        if isinstance(err, RecordFormatError) and not getattr(err, "prefixed", False):
            new = RecordFormatError(f"{self.path}: {err}")
            new.prefixed = True
            raise new from None
        return False


def _sniff(head: bytes) -> tuple[str, int]:
    """("recfmt", version) or ("perf", 0) from the first bytes of a file."""
    if not head:
        raise RecordFormatError("the file is empty")
    if head.startswith(recfmt.MAGIC):
        if len(head) < recfmt.HEADER_SIZE:
            raise RecordFormatError("the file is cut off in its header")
        version = int.from_bytes(head[len(recfmt.MAGIC) : recfmt.HEADER_SIZE], "little",
                                 signed=True)
        if version not in recfmt.VERSIONS or version == 0:
            raise RecordFormatError(f"unknown record format version {version}")
        return "recfmt", version
    if b"\0" not in head and PERF_SCRIPT_EVENT in head:
        return "perf", 0
    kind = _sniff_json(head)
    if kind is not None:
        return kind, 0
    return "recfmt", 0


def _sniff_json(head: bytes) -> str | None:
    """"json_compressed", "json" (upstream damo's records, a list of records) or None."""
    import zlib

    def listing(text: bytes) -> bool:
        return text.lstrip(b" \t\r\n").startswith(b"[") and b"\0" not in text[:4096]

    # A zlib stream: deflate, a 32 KiB window at most, a header check that divides by 31.
    if len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 \
            and (head[0] << 8 | head[1]) % 31 == 0:
        try:
            text = zlib.decompressobj().decompress(head, 64)
        except zlib.error:
            return None
        return "json_compressed" if listing(text) else None
    return "json" if listing(head) else None


def read_snapshots(path: str | os.PathLike, warn: bool = True,
                   chunk_bytes: int | None = None):
    """The whole record file at `path` as one `Snapshots`; see the module docstring."""
    from damo.records.snapshots import concat

    record = RecordFile(path, chunk_bytes or 1 << 62, warn)
    snaps = concat(list(record.columns()))
    snaps.warnings = list(record.warnings or [])
    return snaps


def parse_bytes(data: bytes):
    """Sniff and parse the content of a record file held in memory (tests, small tools)."""
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="damo-", suffix=".data") as f:
        f.write(data)
        f.flush()
        try:
            return read_snapshots(f.name, warn=False)
        except RecordFormatError as err:
            raise RecordFormatError(str(err).removeprefix(f"{f.name}: ")) from None
