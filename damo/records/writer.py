"""Writing recfmt v2 files safely.

Each record is built in memory and written with one `write` call on an unbuffered
descriptor, so the file on disk always ends at a record boundary unless the
machine itself dies mid-write: SIGINT, SIGTERM, a target exit or a crash of
the monitor between records all leave a valid file.  A write that fails
(a full disk or quota, an I/O error, a file size limit, a filesystem gone
read-only) cuts the file back to the end of its last whole message and
raises `OutputError`; so does a file found removed after a write.
"""

import os
import struct
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

from damo.errors import DamoError, OutputError
from damo.records import recfmt


class TargetRegions(NamedTuple):
    """One target's regions for one record; the arrays are parallel.

    `age` (aggregations, `damo.core.age`) is not in recfmt: the recording
    writes it to the sidecar (`damo.records.ages`); None where unknown.
    """

    target_id: int
    start: np.ndarray
    end: np.ndarray
    nr_accesses: np.ndarray
    age: np.ndarray | None = None


def open_output(path: str, mode: int = 0o600) -> int:
    """Create `path` for writing without losing or following anything.

    An existing file (or symlink) at `path` is renamed to `<path>.old`; the new
    file is created exclusively, 0600, and never through a symlink.  A
    character device or a FIFO (``-o /dev/null``, a pipe to a reader) is
    written as it is: renaming it would replace the device node itself.
    """
    if is_stream(path):
        try:
            return os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            raise DamoError(f"cannot write {path}: {err.strerror}") from None
    if os.path.lexists(path):
        if os.path.isdir(path):
            raise DamoError(f"cannot write {path}: it is a directory")
        try:
            os.replace(path, path + ".old")
        except OSError as err:
            raise DamoError(f"cannot keep {path} as {path}.old: {err.strerror}") from None
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(path, flags, mode)
    except OSError as err:
        raise DamoError(f"cannot create {path}: {err.strerror}") from None


def is_stream(path: str) -> bool:
    """Whether `path` is a character device or a FIFO (not through a symlink)."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def encode_record(time_ns: int, targets: Sequence[TargetRegions]) -> bytes:
    """The bytes of one v2 record holding every target of one aggregation."""
    # The fixed-size headers with struct: a numpy array for each costs more than its bytes.
    parts = [_TIME.pack(time_ns // recfmt.NSEC_PER_SEC, time_ns % recfmt.NSEC_PER_SEC,
                        len(targets))]
    for target in targets:
        regions = np.empty(len(target.start), dtype=recfmt.REGION_DTYPE)
        regions["start"] = target.start
        regions["end"] = target.end
        regions["nr_accesses"] = target.nr_accesses
        parts.append(_TARGET.pack(target.target_id, len(regions)))
        parts.append(regions.tobytes())
    return b"".join(parts)


# recfmt's TIME_DTYPE, and a v2 target's id and NR_REGIONS_DTYPE, as struct formats.
_TIME = struct.Struct("<qqI")
_TARGET = struct.Struct("<QI")


class OutputFile:
    """A file created with `open_output` and written whole message by whole message."""

    def __init__(self, path: str):
        self.path = path
        self._fd = open_output(path)
        self._size = 0  # where the last whole message ends
        self.failed = False  # a write failed: the file ends at its last whole message

    def _write(self, data: bytes) -> None:
        """Append one whole message, or none of it (OutputError)."""
        if self.failed:
            raise OutputError(f"cannot write {self.path}: an earlier write failed")
        view = memoryview(data)
        try:
            while view:
                # A short write only happens on signals or a full disk; finish it (or fail).
                view = view[os.write(self._fd, view) :]
            # Writes to a removed file succeed into nothing: one fstat per message tells.
            removed = os.fstat(self._fd).st_nlink == 0
        except OSError as err:
            self.failed = True
            self._cut_back()
            raise OutputError(f"cannot write {self.path}: {err.strerror}") from None
        if removed:
            self.failed = True
            raise OutputError(f"cannot write {self.path}: the file was removed")
        self._size += len(data)

    def _cut_back(self) -> None:
        """Drop a partly written message (a full disk can take half of it)."""
        try:
            if os.fstat(self._fd).st_size != self._size:
                os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # read-only or failing: nothing more can be undone

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "OutputFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordFileWriter(Protocol):
    """What a recording writes its records through (`damo.recording.Recording`'s
    `make_writer`): this module's writers, the JSON one, the monitor's live view."""

    nr_records: int  # records written so far
    done: str  # why the recording should end now ("" to go on): --snapshot, a quit key

    def write(self, time_ns: int, targets: Sequence[TargetRegions]) -> None: ...

    def close(self) -> None: ...


class RecordWriter(OutputFile):
    """A recfmt v2 file being written, one record per aggregation."""

    done = ""  # it never ends a recording itself

    def __init__(self, path: str):
        super().__init__(path)
        self.nr_records = 0
        self._write(recfmt.header())

    def write(self, time_ns: int, targets: Sequence[TargetRegions]) -> None:
        """Append one record: `time_ns` is the end of the aggregation window."""
        self._write(encode_record(time_ns, targets))
        self.nr_records += 1


class SnapshotWriter:
    """`damo record --snapshot DELAY COUNT`: only COUNT records, DELAY apart, of a writer's.

    Snapshot k (1..COUNT) is the first aggregation ending at least k x DELAY
    after monitoring started (the start is taken as one aggregation interval
    before the first record); DELAY 0 keeps COUNT consecutive aggregations.
    ``done`` says "snapshots taken" with the last one, and the recording then stops.
    """

    def __init__(self, inner, delay_ns: int, count: int, aggr_ns: int):
        self.inner = inner
        self.delay_ns = delay_ns
        self.count = count
        self.aggr_ns = aggr_ns
        self._start_ns: int | None = None

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # path, failed, ...

    @property
    def done(self) -> str:
        """Why the recording should end now ("" to go on)."""
        return "snapshots taken" if self.inner.nr_records >= self.count else ""

    def write(self, time_ns: int, targets: Sequence[TargetRegions]) -> None:
        if self._start_ns is None:
            self._start_ns = time_ns - self.aggr_ns
        due = self._start_ns + (self.inner.nr_records + 1) * self.delay_ns
        if not self.done and time_ns >= due:
            self.inner.write(time_ns, targets)

    def close(self) -> None:
        self.inner.close()
