"""A target's file mappings, for undoing MADV_COLD's LRU effect on their pages.

Clearing an Accessed bit with MADV_COLD also deactivates the page's folio and
clears its referenced flag: under memory pressure the pages damo samples most
would be reclaimed first (docs/recording.md, "Memory pressure").  After each
clear the native loop (damo/sampler/_loop.c, `restore`) reads one byte of
every cleared page of a file mapping twice, through two files of damo's own,
which makes its folio active again without touching the target's page table.
This module keeps what that needs, refreshed whenever the maps change: the
file mappings as a table (start, end, file offset, file) and per file the
descriptors.

Only pages that stay the file's are restored: MAP_SHARED mappings and private
ones the target cannot write (a written page of a private mapping is an
anonymous copy).  Anonymous memory is left alone: without swap it cannot be
reclaimed, and a read would not reach it.  Only regular files are opened,
through /proc/PID/map_files (so a file renamed or deleted since is the one
mapped), at most `MAX_FILES` of them (the largest mapped first).
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import numpy as np

from damo.sampler import native

if TYPE_CHECKING:
    from damo.linux.maps import Mapping

# Files held open per target (three descriptors each).
MAX_FILES = 64


def _restorable(m: Mapping) -> bool:
    """A mapping of a file whose pages stay the file's (not a private one it can write)."""
    return m.inode != 0 and m.path.startswith("/") and (m.perms[3] == "s" or m.perms[1] != "w")


class FilePages:
    """The file mappings of one process, and the files the native loop reads to restore pages."""

    def __init__(self, pid: int):
        self.pid = pid
        # (dev, inode) -> row of `files`; rows of files no longer mapped are closed.
        self._rows: dict[tuple[str, int], int] = {}
        self.maps = np.zeros((0, 4), dtype=np.uint64)
        # Per file: two read descriptors, an O_PATH one, the offset last read, the last call.
        self.files = np.zeros((0, 5), dtype=np.int64)
        # Pages restored, reads refused (page no longer cached, or failed), pairs reopened.
        self.stats = np.zeros(native.U_NR, dtype=np.uint64)
        self._unopenable: set[tuple[str, int]] = set()

    def update(self, maps: list[Mapping]) -> None:
        """Take the process's mappings (after a change): open new files, close dropped ones."""
        if native.loop() is None:  # nothing would read the table
            return
        mapped: dict[tuple[str, int], int] = {}
        for m in maps:
            if _restorable(m):
                key = (m.dev, m.inode)
                mapped[key] = mapped.get(key, 0) + m.size
        keep = sorted(mapped, key=mapped.__getitem__, reverse=True)[:MAX_FILES]
        old_rows, old_files = self._rows, self.files
        rows: dict[tuple[str, int], int] = {}
        files = []
        for key in keep:
            if key in old_rows:
                row = old_files[old_rows[key]].copy()
            elif key in self._unopenable:
                continue
            else:
                first = next(m for m in maps if _restorable(m) and (m.dev, m.inode) == key)
                row = self._open(first)
                if row is None:
                    self._unopenable.add(key)
                    continue
            rows[key] = len(files)
            files.append(row)
        for key, i in old_rows.items():
            if key not in rows:
                _close(old_files[i])
        self._rows = rows
        self.files = np.array(files, dtype=np.int64).reshape(-1, 5)
        table = [(m.start, m.end, m.offset, rows[(m.dev, m.inode)]) for m in maps
                 if _restorable(m) and (m.dev, m.inode) in rows]
        self.maps = np.array(table, dtype=np.uint64).reshape(-1, 4)

    def _open(self, m: Mapping) -> np.ndarray | None:
        """The row of the file mapped at `m`: its descriptors, or None (not a regular file)."""
        try:
            path_fd = os.open(f"/proc/{self.pid}/map_files/{m.start:x}-{m.end:x}",
                              os.O_PATH | os.O_CLOEXEC)
        except OSError:  # unmapped since, or map_files refused
            return None
        fds = [path_fd]
        try:
            if not stat.S_ISREG(os.fstat(path_fd).st_mode):  # a device's pages are not cached
                raise OSError
            for _ in range(2):
                fds.append(os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_CLOEXEC))
                # A page no longer cached is refused; the kernel may still read it: only it.
                os.posix_fadvise(fds[-1], 0, 0, os.POSIX_FADV_RANDOM)
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        return np.array([fds[1], fds[2], path_fd, -1, 0], dtype=np.int64)

    def loop_args(self) -> tuple[int, int, int, int]:
        """The table as the native loop takes it after a target's tuple (none: zeros)."""
        if not len(self.maps):
            return (0, 0, 0, 0)
        return (self.maps.ctypes.data, len(self.maps), self.files.ctypes.data,
                self.stats.ctypes.data)

    def restore(self, iovecs_addr: int, n: int) -> int:
        """After the per-sample path's clear of `n` iovecs: restore their file pages."""
        loop = native.loop()
        if loop is None or not n or not len(self.maps):
            return 0
        return loop.restore(iovecs_addr, n, *self.loop_args())

    def close(self) -> None:
        for row in self.files:
            _close(row)
        self.files = np.zeros((0, 5), dtype=np.int64)
        self.maps = np.zeros((0, 4), dtype=np.uint64)
        self._rows = {}


def _close(row: np.ndarray) -> None:
    for fd in row[:3]:
        try:
            os.close(int(fd))
        except OSError:
            pass
