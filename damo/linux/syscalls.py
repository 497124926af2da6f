"""System calls the os module lacks: process_madvise, migrate_pages, perf_event_open (x86-64)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

SYS_MIGRATE_PAGES = 256
SYS_PROCESS_MADVISE = 440
SYS_PERF_EVENT_OPEN = 298

MADV_COLD = 20
IOV_MAX = 1024  # most iovecs one process_madvise call takes

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
# The same entry with fixed argument types, for calls every sampling interval:
# plain ints convert without building ctypes objects per call.
_syscall6 = ctypes.CDLL(None, use_errno=True).syscall
_syscall6.restype = ctypes.c_long
_syscall6.argtypes = [ctypes.c_long] * 6


def pidfd_open(pid: int) -> int:
    """A pidfd for `pid` (ProcessLookupError when there is no such process)."""
    return os.pidfd_open(pid)


def process_madvise(pidfd: int, iovecs: np.ndarray, advice: int = MADV_COLD) -> int:
    """Advise the ranges of an (N, 2) uint64 array of (start, length); bytes advised.

    A C-contiguous (N, 2) uint64 array has the layout of struct iovec[N]. The
    kernel stops at the first range it cannot advise (e.g. unmapped: ENOMEM)
    and returns the bytes done before it; with none done it fails with OSError.
    """
    if iovecs.dtype != np.uint64 or iovecs.ndim != 2 or iovecs.shape[1] != 2:
        raise ValueError("iovecs must be an (N, 2) uint64 array")
    if len(iovecs) > IOV_MAX:
        raise ValueError(f"at most {IOV_MAX} iovecs per call")
    iovecs = np.ascontiguousarray(iovecs)
    return process_madvise_at(pidfd, iovecs.ctypes.data, len(iovecs), advice)


def process_madvise_at(pidfd: int, iovecs_addr: int, n: int, advice: int = MADV_COLD) -> int:
    """process_madvise() of `n` struct iovecs at address `iovecs_addr`, unchecked.

    For the sampling step, whose iovec array never moves: building the
    address from a numpy array costs more than the rest of the call.
    """
    ret = _syscall6(SYS_PROCESS_MADVISE, pidfd, iovecs_addr, n, advice, 0)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"process_madvise: {os.strerror(err)}")
    return ret


def perf_event_open(attr: ctypes.Structure, pid: int, cpu: int, group_fd: int,
                    flags: int) -> int:
    """A perf event's fd for `attr` (a struct perf_event_attr); OSError when refused."""
    fd = _syscall(SYS_PERF_EVENT_OPEN, ctypes.byref(attr), pid, cpu, group_fd, flags)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open: {os.strerror(err)}")
    return fd


def online_nodes(path: Path = Path("/sys/devices/system/node/online")) -> list[int]:
    """NUMA node ids that are online ("0-1,3" lists); [0] when the file is absent."""
    try:
        text = path.read_text().strip()
    except OSError:
        return [0]
    nodes: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        nodes.extend(range(int(lo), int(hi or lo) + 1))
    return nodes or [0]


def _nodemask(nodes: list[int]) -> tuple[ctypes.Array, int]:
    nbits = max(nodes) + 1
    words = (nbits + 63) // 64
    mask = (ctypes.c_ulong * words)()
    for n in nodes:
        mask[n // 64] |= 1 << (n % 64)
    return mask, words * 64


_NODES = None


def drain_lru_batches(pid: int) -> None:
    """Flush every CPU's pending LRU batches, by migrating `pid` from its nodes to themselves.

    Nothing moves (every node maps to itself), but the call drains the per-CPU
    batches first, so pages faulted in moments ago reach the LRU lists, where
    MADV_COLD can clear their Accessed bits.
    """
    global _NODES
    if _NODES is None:
        _NODES = _nodemask(online_nodes())
    mask, maxnode = _NODES
    ret = _syscall(SYS_MIGRATE_PAGES, ctypes.c_int(pid), ctypes.c_ulong(maxnode + 1),
                   mask, mask)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"migrate_pages: {os.strerror(err)}")
