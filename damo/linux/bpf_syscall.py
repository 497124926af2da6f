"""The few bpf(2) commands damo issues itself: create maps, load a program, test-run it.

bcc compiles; damo loads. Loading the compiled instructions directly lets the
sampler cache them across runs (bcc 0.26 has no such cache) and run a program
with BPF_PROG_TEST_RUN, which bcc's Python module does not expose.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os

from damo.errors import PlatformError

SYS_BPF = 321  # x86-64

BPF_MAP_CREATE = 0
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_PROG_TEST_RUN = 10

BPF_MAP_TYPE_ARRAY = 2
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
BPF_F_MMAPABLE = 1 << 10

# An instruction that loads a 64-bit immediate (BPF_LD | BPF_IMM | BPF_DW); with
# src_reg BPF_PSEUDO_MAP_FD its immediate is a map's file descriptor.
INSN_LD_IMM64 = 0x18
BPF_PSEUDO_MAP_FD = 1
# Loads a pending signal may cut short (the verifier then gives up with EAGAIN).
LOAD_TRIES = 20
# A call (BPF_JMP | BPF_CALL): of a helper by number, or with src_reg
# BPF_PSEUDO_KFUNC_CALL of a kernel function by its BTF id (in vmlinux: off 0).
INSN_CALL = 0x85
BPF_PSEUDO_KFUNC_CALL = 2

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * 16),
    ]


class MapElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
    ]


class TestRunAttr(ctypes.Structure):
    __test__ = False  # not a pytest class
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


def bpf(cmd: int, attr: ctypes.Structure | ctypes.Array) -> int:
    """bpf(2) with `attr` as its union bpf_attr; OSError (errno set) when it fails."""
    ret = _syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


_bpf = bpf


def map_create(
    map_type: int, key_size: int, value_size: int, max_entries: int, flags: int, name: str
) -> int:
    """A new map's file descriptor."""
    attr = MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        map_name=name.encode()[:15],
    )
    try:
        return _bpf(BPF_MAP_CREATE, attr)
    except OSError as e:
        raise PlatformError(f"cannot create BPF map {name}: {e.strerror} (run as root)") from None


def map_update_u32(fd: int, key: int, value: int) -> None:
    """Set a 4-byte key to a 4-byte value (e.g. a program fd in a program array)."""
    k, v = ctypes.c_uint32(key), ctypes.c_uint32(value)
    attr = MapElemAttr(map_fd=fd, key=ctypes.addressof(k), value=ctypes.addressof(v))
    try:
        _bpf(BPF_MAP_UPDATE_ELEM, attr)
    except OSError as e:
        raise PlatformError(f"cannot update BPF map: {e.strerror}") from None


class MapUpdate:
    """BPF_MAP_UPDATE_ELEM of one map with fixed key and value sizes, its buffers built once."""

    def __init__(self, fd: int, key_size: int, value_size: int):
        self._key = ctypes.create_string_buffer(key_size)
        self._value = ctypes.create_string_buffer(value_size)
        self._attr = MapElemAttr(map_fd=fd, key=ctypes.addressof(self._key),
                                 value=ctypes.addressof(self._value))
        self._ref, self._size = ctypes.byref(self._attr), ctypes.sizeof(self._attr)

    def __call__(self, key: bytes, value: bytes) -> bool:
        """Set `key` to `value`; False when the kernel refused (e.g. a full map)."""
        self._key.raw, self._value.raw = key, value
        return _syscall(SYS_BPF, BPF_MAP_UPDATE_ELEM, self._ref, self._size) == 0


def map_mmap(fd: int, value_size: int, max_entries: int) -> mmap.mmap:
    """A shared, writable mapping of a BPF_F_MMAPABLE array's values."""
    # Array values are laid out back to back, each rounded up to 8 bytes.
    stride = (value_size + 7) & ~7
    length = max(stride * max_entries, 1)
    length = (length + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
    return mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def prog_load(insns: bytes, name: str, prog_type: int = BPF_PROG_TYPE_RAW_TRACEPOINT) -> int:
    """Load instructions (map fds already patched in) as a GPL program; its file descriptor."""
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    license_buf = ctypes.create_string_buffer(b"GPL")
    attr = ProgLoadAttr(
        prog_type=prog_type,
        insn_cnt=len(insns) // 8,
        insns=ctypes.addressof(insn_buf),
        license=ctypes.addressof(license_buf),
        prog_name=name.encode()[:15],
    )
    for _ in range(LOAD_TRIES):
        try:
            return _bpf(BPF_PROG_LOAD, attr)
        except OSError as e:
            if e.errno != errno.EAGAIN:
                break
            # The verifier gives up when a signal is pending (a SIGSTOP, say): again.
    # Load again with the verifier log, to say why.
    log = ctypes.create_string_buffer(1 << 20)
    attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        tail = log.value.decode(errors="replace").strip().splitlines()[-3:]
        raise PlatformError(
            f"the kernel rejected BPF program {name}: {e.strerror}: {' / '.join(tail)}"
        ) from None


class TestRun:
    """BPF_PROG_TEST_RUN of one unattached program, with its attribute block built once."""

    __test__ = False  # not a pytest class

    def __init__(self, prog_fd: int):
        self._attr = TestRunAttr(prog_fd=prog_fd)
        self._ref = ctypes.byref(self._attr)
        self._size = ctypes.sizeof(self._attr)

    def __call__(self) -> int:
        """Run the program once on this CPU, in this task; its return value."""
        if _syscall(SYS_BPF, BPF_PROG_TEST_RUN, self._ref, self._size) < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"BPF_PROG_TEST_RUN: {os.strerror(err)}")
        return self._attr.retval


def patch_map_fds(insns: bytes, fd_map: dict[int, int]) -> bytes:
    """Replace the map fds referenced by 64-bit immediate loads according to fd_map."""
    out = bytearray(insns)
    for off in range(0, len(out) - 8, 8):
        if out[off] == INSN_LD_IMM64 and (out[off + 1] >> 4) == BPF_PSEUDO_MAP_FD:
            old = int.from_bytes(out[off + 4 : off + 8], "little", signed=True)
            if old not in fd_map:
                raise PlatformError(f"BPF program references unknown map fd {old}")
            out[off + 4 : off + 8] = fd_map[old].to_bytes(4, "little", signed=True)
    return bytes(out)


def patch_kfunc_calls(insns: bytes, kfuncs: dict[int, int]) -> bytes:
    """Turn calls of placeholder helper numbers into kfunc calls: kfuncs maps number -> BTF id.

    bcc's clang emits no kfunc calls, but it emits a helper call for any
    constant function pointer; the placeholders are numbers no helper has.
    """
    if not kfuncs:
        return insns
    out = bytearray(insns)
    for off in range(0, len(out) - 7, 8):
        if out[off] != INSN_CALL or out[off + 1] >> 4:
            continue
        btf_id = kfuncs.get(int.from_bytes(out[off + 4 : off + 8], "little", signed=True))
        if btf_id is not None:
            out[off + 1] = (out[off + 1] & 0x0F) | (BPF_PSEUDO_KFUNC_CALL << 4)
            out[off + 2 : off + 4] = b"\0\0"
            out[off + 4 : off + 8] = btf_id.to_bytes(4, "little", signed=True)
    return bytes(out)
