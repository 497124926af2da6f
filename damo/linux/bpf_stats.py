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

from damo.linux.bpf_syscall import bpf

BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0
# struct bpf_prog_info: offsets of id, run_time_ns and run_cnt (stable uapi since 5.1)
INFO_SIZE = 256
OFF_ID = 4
OFF_RUN_TIME_NS = 192
OFF_RUN_CNT = 200


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32),
                ("info", ctypes.c_uint64)]


def enable_run_time() -> int:
    """An fd that keeps run-time statistics on while open; OSError when the kernel refuses."""
    return bpf(BPF_ENABLE_STATS, (ctypes.c_uint32 * 4)(BPF_STATS_RUN_TIME))


def _info(prog_fd: int) -> bytes:
    buf = ctypes.create_string_buffer(INFO_SIZE)
    attr = _InfoAttr(bpf_fd=prog_fd, info_len=INFO_SIZE, info=ctypes.addressof(buf))
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return buf.raw[:attr.info_len]


def _u64(raw: bytes, off: int, size: int = 8) -> int:
    return int.from_bytes(raw[off:off + size], "little") if len(raw) >= off + size else 0


def prog_id(prog_fd: int) -> int:
    """The kernel's id of a loaded program (what `bpftool prog show` lists)."""
    return _u64(_info(prog_fd), OFF_ID, 4)


def prog_exists(prog_id_: int) -> bool:
    """Whether a program of this id is still loaded (BPF_PROG_GET_FD_BY_ID)."""
    try:
        fd = bpf(BPF_PROG_GET_FD_BY_ID, (ctypes.c_uint32 * 4)(prog_id_))
    except OSError as e:
        return e.errno != errno.ENOENT
    os.close(fd)
    return True


def run_time(prog_fd: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of a loaded program: its runs while statistics were on."""
    raw = _info(prog_fd)
    return _u64(raw, OFF_RUN_TIME_NS), _u64(raw, OFF_RUN_CNT)


BPF_PROG_GET_NEXT_ID = 11
OFF_NAME = 64  # char name[16]


def prog_ids_named(name: str) -> set[int]:
    """Ids of the loaded programs called `name` (what `bpftool prog show name NAME` lists)."""
    out, start = set(), 0
    while True:
        attr = (ctypes.c_uint32 * 4)(start)
        try:
            bpf(BPF_PROG_GET_NEXT_ID, attr)
        except OSError:
            return out  # ENOENT: no more
        start = attr[1]  # next_id
        try:
            fd = bpf(BPF_PROG_GET_FD_BY_ID, (ctypes.c_uint32 * 4)(start))
        except OSError:
            continue  # freed meanwhile
        try:
            raw = _info(fd)
        finally:
            os.close(fd)
        if raw[OFF_NAME:OFF_NAME + 16].split(b"\0")[0].decode(errors="replace") == name:
            out.add(start)
