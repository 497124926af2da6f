"""What the vaddr operations keep per target process: its sampler, mappings and address space."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from damo.ops.vaddr.pressure import Pressure

if TYPE_CHECKING:
    from damo.linux.maps import Mapping
    from damo.sampler import PageSampler
    from damo.sampler.walker import Walker


class Process:
    """What the operations keep per target process."""

    def __init__(self, pid: int, walker: Walker):
        self.pid = pid
        self.walker = walker
        self.valid = True
        self.sampler = self._open()
        self.mm = self.sampler.mm()
        # The target's slice of the region arrays: its first index, and the
        # views (start, end, sampling_addr, nr_accesses) the target was given.
        self.base = 0
        self.views: tuple[np.ndarray, ...] = ()
        self.maps: list[Mapping] | None = None
        self.maps_text = ""  # as read, to tell a change without parsing
        # (start, end) of its MAP_SHARED mappings: pages there may be mapped by
        # other processes too, and keep their Accessed bit through MADV_COLD.
        self.shared_ranges = np.zeros((0, 2), dtype=np.int64)
        # (start, end) of its file mappings, and whether they are spared clearing
        # now: reclaim is at work on its memory (pressure.py).
        self.file_ranges = np.zeros((0, 2), dtype=np.int64)
        self.pressure = Pressure(pid)
        self.relief = self.pressure.at_start
        # (time_ns, maps) of every change not yet taken by the recorder
        self.maps_log: list[tuple[int, list[Mapping]]] = []

    def _open(self) -> PageSampler:
        from damo.sampler import PageSampler

        return PageSampler(self.pid, self.walker)

    def current_mm(self) -> int | None:
        """The mm_struct the process has now (None when it is gone)."""
        try:
            fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return self.walker.walk(fd, np.empty(0, dtype=np.uint64))[2]
        except Exception:  # noqa: BLE001 - a kernel thread now, or gone: no mm
            return None
        finally:
            os.close(fd)

    def reopen(self) -> None:
        self.sampler.close()
        self.sampler = self._open()
        self.mm = self.sampler.mm()

    def close(self) -> None:
        self.sampler.close()
        self.valid = False
