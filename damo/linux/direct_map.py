"""Finding the base of the kernel's direct map (page_offset_base) without data symbols.

Page-table entries hold physical addresses; a BPF program follows them through
the direct map, at page_offset_base + phys. KASLR moves that base at boot, and
/proc/kallsyms lists no data symbols here, so the variable cannot simply be read.
Instead: the kernel's text is reachable both at its link address (`_text`, a
text symbol) and through the direct map at base + phys("Kernel code" in
/proc/iomem); the base for which the two read the same bytes is the one.
Candidates are the defaults for 4- and 5-level paging, then every 1 GiB-aligned
base (KASLR's granularity) that puts a known direct-map pointer inside RAM.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from damo.errors import PlatformError

DEFAULT_BASES = (0xFFFF888000000000, 0xFF11000000000000)  # 4- and 5-level, without KASLR
# The struct page array's base (vmemmap_base), 4- and 5-level, without KASLR.
DEFAULT_VMEMMAP = (0xFFFFEA0000000000, 0xFFD4000000000000)
KASLR_ALIGN = 1 << 30
SAMPLE_LEN = 256

# (kernel address, length) -> bytes, or None when the address cannot be read.
KernelReader = Callable[[int, int], bytes | None]


def kallsyms_address(symbol: str, path: Path = Path("/proc/kallsyms")) -> int:
    """Address of a kernel symbol; PlatformError when hidden (not root) or absent."""
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == symbol:
                addr = int(fields[0], 16)
                if addr == 0:
                    raise PlatformError(f"{path} hides addresses: run damo as root")
                return addr
    raise PlatformError(f"{path} has no symbol {symbol}")


def iomem_ranges(path: Path = Path("/proc/iomem")) -> list[tuple[int, int, str]]:
    """(start, end inclusive, name) of every line of /proc/iomem, nested ones included."""
    out = []
    with open(path) as f:
        for line in f:
            span, _, name = line.strip().partition(" : ")
            start, _, end = span.partition("-")
            out.append((int(start, 16), int(end, 16), name))
    return out


def candidate_bases(known_pointers: Iterable[int], max_phys: int) -> Iterator[int]:
    """Direct-map bases to try, most likely first, without repeats."""
    seen = set()
    for base in DEFAULT_BASES:
        seen.add(base)
        yield base
    for ptr in known_pointers:
        top = ptr - ptr % KASLR_ALIGN
        for base in range(top, max(top - max_phys - KASLR_ALIGN, 0), -KASLR_ALIGN):
            if base not in seen:
                seen.add(base)
                yield base


def discover(read: KernelReader, known_pointers: Iterable[int] = (),
             text: int | None = None, ranges: list[tuple[int, int, str]] | None = None) -> int:
    """page_offset_base, found by comparing the kernel text with its direct-map alias.

    `known_pointers` are kernel addresses known to lie in the direct map (e.g. the
    current task_struct); `text` and `ranges` default to this machine's.
    """
    if ranges is None:
        ranges = iomem_ranges()
    code = [r for r in ranges if r[2] == "Kernel code"]
    if not code:
        raise PlatformError("/proc/iomem shows no 'Kernel code' range: run damo as root")
    text_phys = code[0][0]
    if text_phys == 0:
        raise PlatformError("/proc/iomem hides addresses: run damo as root")
    if text is None:
        text = kallsyms_address("_text")
    reference = read(text, SAMPLE_LEN)
    if not reference or not any(reference):
        raise PlatformError("cannot read the kernel text through BPF")
    max_phys = max(end for start, end, name in ranges if name == "System RAM") + 1
    for base in candidate_bases(known_pointers, max_phys):
        if read(base + text_phys, SAMPLE_LEN) == reference:
            return base
    raise PlatformError("cannot find the kernel's direct map base (page_offset_base)")


def vmemmap(read: KernelReader, page_size: int, off_index: int, off_mapping: int,
            candidates: Iterable[int] = DEFAULT_VMEMMAP) -> int:
    """The base of the kernel's struct page array, or 0 when none of `candidates` is it.

    Checked against a page of this process's own: an anonymous page's struct
    page says so (the low bit of `mapping`) and holds its page index in
    `index` (the address >> 12 for an anonymous mapping never moved).  With
    KASLR of the memory layout the base is elsewhere: 0, and the sampler
    advises single pages as before.
    """
    page = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    byte = ctypes.c_char.from_buffer(page)
    try:
        page[0] = 1  # faulted in: a page of its own
        addr = ctypes.addressof(byte)
        try:
            with open("/proc/self/pagemap", "rb") as f:
                f.seek(addr // 4096 * 8)
                entry = int.from_bytes(f.read(8), "little")
        except OSError:
            return 0
        pfn = entry & ((1 << 55) - 1)
        if not entry >> 63 or not pfn:  # not root: no frame numbers
            return 0
        for base in candidates:
            raw = read(base + pfn * page_size, page_size)
            if raw is None:
                continue
            index = int.from_bytes(raw[off_index:off_index + 8], "little")
            mapping = int.from_bytes(raw[off_mapping:off_mapping + 8], "little")
            if index == addr >> 12 and mapping & 1:
                return base
        return 0
    finally:
        del byte  # the mapping cannot close while a pointer into it exists
        page.close()
