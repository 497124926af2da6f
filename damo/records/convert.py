"""`damo convert`: a record file in another format (recfmt, json, json_compressed).

The input is read through `damo.records.reader.RecordFile` (any format it
sniffs).  The output never exists half-written: recfmt is written to a
temporary file in the output's directory and renamed into place at the end;
the JSON formats are written whole by `JsonRecordWriter` once the input has
been read.  An existing output is kept as ``<out>.old``, like a recording's.
The input's sidecar (``<in>.meta``: mappings, attributes) is copied beside
the output, so reports name ranges in the converted file too.
"""

import os
import shutil
import sys
import tempfile

from damo.errors import DamoError, OutputError, UsageError

#: The record file formats damo writes (`--format`): recfmt v2, upstream damo's JSON ones.
FORMATS = ("recfmt", "json_compressed", "json")


def check_format(fmt: str) -> None:
    """One line (exit 2) for a format damo does not write."""
    if fmt not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, not {fmt!r}")


def open_record_writer(path: str, fmt: str = "recfmt", attrs=None):
    """A writer of `fmt` (recfmt v2, or upstream damo's json_compressed or json) at `path`.

    Every writer has `RecordWriter`'s interface: ``write(time_ns, targets)``,
    ``nr_records``, ``failed``, ``close()``.  `attrs` (`damo.core.attrs.Attrs`)
    gives the JSON formats their monitoring intervals.
    """
    check_format(fmt)
    if fmt == "recfmt":
        from damo.records.writer import RecordWriter

        return RecordWriter(path)
    from damo.records.json_record import JsonRecordWriter

    intervals = None if attrs is None else {
        "sample_us": attrs.sample_interval, "aggr_us": attrs.aggr_interval,
        "update_us": attrs.update_interval}
    return JsonRecordWriter(path, fmt, intervals)


def convert(src: str, dst: str, fmt: str) -> str:
    """Convert `src` to `dst` in `fmt`; returns a one-line summary."""
    from damo.records.reader import RecordFile

    check_format(fmt)
    if os.path.isdir(dst):
        raise UsageError(f"cannot write {dst}: it is a directory")
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise UsageError(f"{src} and {dst} are the same file")
    folder = os.path.dirname(dst) or "."
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {dst}: no directory {folder}")
    record = RecordFile(src)
    if fmt == "recfmt":
        nr, aged = _to_recfmt(record, dst)
    else:
        nr, aged = _to_json(record, dst, fmt)
    note = ""
    if aged and fmt == "recfmt":
        note = "; recfmt holds no region age: the input's ages are not in it"
    _copy_sidecar(src, dst)
    return f"damo: converted {src} ({record.kind}) to {dst} ({fmt}): {nr} records{note}"


def intervals_of(record, src: str) -> dict[str, float] | None:
    """Monitoring intervals (us) from a JSON record or the input's sidecar, if either says."""
    json_doc = getattr(record, "_json", None)
    if json_doc is not None and json_doc.intervals is not None:
        return json_doc.intervals
    from damo.records.meta import read_meta

    try:
        messages = read_meta(src) or []
    except DamoError:
        return None
    for message in messages:
        attrs = message.get("attrs") if message.get("type") == "start" else None
        if isinstance(attrs, dict) and {"sample_us", "aggr_us", "update_us"} <= attrs.keys():
            return {k: attrs[k] for k in ("sample_us", "aggr_us", "update_us")}
    return None


def _to_json(record, dst: str, fmt: str) -> tuple[int, bool]:
    from damo.records.json_record import JsonRecordWriter

    # Everything is read before the output is touched: a bad input leaves it as it was.
    chunks = list(record.columns())
    aged = all(c.age is not None for c in chunks)
    writer = JsonRecordWriter(dst, fmt, intervals_of(record, record.path), flush_seconds=None)
    with writer:
        for chunk in chunks:
            writer.write_snapshots(chunk)
    return writer.nr_records, aged


def _to_recfmt(record, dst: str) -> tuple[int, bool]:
    from damo.records.writer import RecordWriter, is_stream

    if is_stream(dst):  # /dev/null, a FIFO: nothing to rename, written as read
        aged = True
        with RecordWriter(dst) as writer:
            for chunk in record.chunks():
                aged = aged and chunk.columns().age is not None
                _write_chunk(writer, chunk)
        return writer.nr_records, aged
    folder = os.path.dirname(dst) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dst) + ".", suffix=".tmp",
                               dir=folder)
    os.close(fd)
    os.unlink(tmp)  # RecordWriter creates it itself (O_EXCL)
    aged = True
    try:
        with RecordWriter(tmp) as writer:
            for chunk in record.chunks():
                aged = aged and chunk.columns().age is not None
                _write_chunk(writer, chunk)
        _install(tmp, dst)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return writer.nr_records, aged


def _write_chunk(writer, chunk) -> None:
    from damo.records.writer import TargetRegions

    snaps = chunk.columns()
    for time_ns, idx in chunk.record_groups():
        writer.write(time_ns, [TargetRegions(int(snaps.target_id[i]), *snaps.regions(i))
                               for i in idx])


def _install(tmp: str, dst: str) -> None:
    """Rename `tmp` to `dst`, keeping an existing `dst` as ``dst.old``."""
    try:
        if os.path.lexists(dst):
            os.replace(dst, dst + ".old")
        os.replace(tmp, dst)
    except OSError as err:
        raise OutputError(f"cannot write {dst}: {err.strerror}") from None


def _copy_sidecar(src: str, dst: str) -> None:
    from damo.records.meta import meta_path
    from damo.records.writer import is_stream, open_output

    if not os.path.isfile(meta_path(src)) or is_stream(dst):
        return
    try:
        with open(meta_path(src), "rb") as f_in:
            fd = open_output(meta_path(dst))
            with os.fdopen(fd, "wb") as f_out:
                shutil.copyfileobj(f_in, f_out)
    except OSError as err:
        print(f"damo: warning: could not copy {meta_path(src)} to {meta_path(dst)}: "
              f"{err.strerror}", file=sys.stderr)
