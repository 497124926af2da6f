"""Anonymous memory at chosen addresses, through libc's mmap, munmap and madvise.

Python's mmap module can neither reserve address space nor place a mapping at
a given address, which laying out regions with gaps between them needs.
Constants are the x86-64 Linux values (damo supports x86-64 only).
"""

import ctypes
import os

import numpy as np

PAGE_SIZE = 4096

PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_NORESERVE = 0x4000
MADV_NOHUGEPAGE = 15
_MAP_FAILED = ctypes.c_void_p(-1).value

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long,
]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _raise(call: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{call}: {os.strerror(err)}")


def reserve(size: int) -> int:
    """Address of `size` bytes of inaccessible address space (no memory is committed)."""
    addr = _libc.mmap(None, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    if addr in (None, _MAP_FAILED):
        _raise("mmap")
    return addr


def map_anonymous(addr: int, size: int) -> None:
    """Replace `[addr, addr + size)` with private, readable and writable anonymous memory."""
    got = _libc.mmap(
        addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0
    )
    if got in (None, _MAP_FAILED):
        _raise("mmap")


PR_SET_VMA = 0x53564D41
PR_SET_VMA_ANON_NAME = 0
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_char_p]


def name_anonymous(addr: int, size: int, name: str) -> bool:
    """Name `[addr, addr + size)` in /proc/PID/maps (`[anon:NAME]`), so reports can say
    which region a range is; False where the kernel cannot (no CONFIG_ANON_VMA_NAME)."""
    # The kernel takes printable characters but none of [ ] \ $ `, at most 79 of them.
    clean = "".join(c if c.isprintable() and c not in "[]\\$`" else "_" for c in name)[:79]
    return _libc.prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, size, clean.encode()) == 0


def unmap(addr: int, size: int) -> None:
    if _libc.munmap(addr, size) != 0:
        _raise("munmap")


def advise(addr: int, size: int, advice: int) -> None:
    if _libc.madvise(addr, size, advice) != 0:
        _raise("madvise")


def page_bytes(addr: int, size: int) -> np.ndarray:
    """A uint8 view of the first byte of every page of `[addr, addr + size)`.

    Writing the whole view stores one byte per page: a pass over the memory
    that sets each page's Accessed bit at a cost of one cache line per page.
    """
    npages = size // PAGE_SIZE
    buffer = (ctypes.c_uint8 * size).from_address(addr)
    return np.ndarray((npages,), dtype=np.uint8, buffer=buffer, strides=(PAGE_SIZE,))
