"""The kernel-side run time of damo's attached BPF programs (what they cost outside damo's threads).

A program run by BPF_PROG_TEST_RUN runs in the caller's task: its time is
already in damo's CPU time.  An attached one (e.g. on a perf event) runs in
interrupt context on behalf of no task of damo's; the kernel counts its time
per program (`run_time_ns`, `run_cnt` of bpf_prog_info) only while run-time
statistics are enabled.  BPF_ENABLE_STATS enables them for as long as the fd
it returns stays open (the kernel counts the holders): damo never writes the
`kernel.bpf_stats_enabled` sysctl, and nothing stays changed after it exits.
"""

from __future__ import annotations

import ctypes
import errno
import os

from damo.linux.bpf_syscall import SYS_BPF

BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0
# struct bpf_prog_info: offsets of run_time_ns and run_cnt (stable uapi since 5.1)
INFO_SIZE = 256
OFF_RUN_TIME_NS = 192
OFF_RUN_CNT = 200

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32),
                ("info", ctypes.c_uint64)]


def enable_run_time() -> int:
    """An fd that keeps run-time statistics on while open; OSError when the kernel refuses."""
    attr = (ctypes.c_uint32 * 4)(BPF_STATS_RUN_TIME)
    fd = _syscall(SYS_BPF, BPF_ENABLE_STATS, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"BPF_ENABLE_STATS: {os.strerror(err)}")
    return fd


def _info(prog_fd: int) -> bytes:
    buf = ctypes.create_string_buffer(INFO_SIZE)
    attr = _InfoAttr(bpf_fd=prog_fd, info_len=INFO_SIZE, info=ctypes.addressof(buf))
    if _syscall(SYS_BPF, BPF_OBJ_GET_INFO_BY_FD, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"BPF_OBJ_GET_INFO_BY_FD: {os.strerror(err)}")
    return buf.raw[:attr.info_len]


def prog_id(prog_fd: int) -> int:
    """The kernel's id of a loaded program (what `bpftool prog show` lists)."""
    return int.from_bytes(_info(prog_fd)[4:8], "little")


def prog_exists(prog_id_: int) -> bool:
    """Whether a program of this id is still loaded (BPF_PROG_GET_FD_BY_ID)."""
    attr = (ctypes.c_uint32 * 4)(prog_id_)
    fd = _syscall(SYS_BPF, BPF_PROG_GET_FD_BY_ID, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd >= 0:
        os.close(fd)
        return True
    return ctypes.get_errno() != errno.ENOENT


def run_time(prog_fd: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of a loaded program: its runs while statistics were on."""
    raw = _info(prog_fd)
    if len(raw) < OFF_RUN_CNT + 8:
        return 0, 0
    return (int.from_bytes(raw[OFF_RUN_TIME_NS:OFF_RUN_TIME_NS + 8], "little"),
            int.from_bytes(raw[OFF_RUN_CNT:OFF_RUN_CNT + 8], "little"))
