"""The parts of an ELF64 little-endian file that name addresses: segments, sections, symbols.

Read with numpy straight from a memory map of the file, so a big shared
library costs a few milliseconds (a general ELF library's import alone costs
more than a whole report).  x86-64 programs and libraries are ELF64
little-endian; anything else is refused with `ValueError`.
"""

from __future__ import annotations

import mmap

import numpy as np

_EHDR = np.dtype([
    ("ident", "S16"), ("type", "<u2"), ("machine", "<u2"), ("version", "<u4"),
    ("entry", "<u8"), ("phoff", "<u8"), ("shoff", "<u8"), ("flags", "<u4"),
    ("ehsize", "<u2"), ("phentsize", "<u2"), ("phnum", "<u2"), ("shentsize", "<u2"),
    ("shnum", "<u2"), ("shstrndx", "<u2"),
])
_PHDR = np.dtype([
    ("type", "<u4"), ("flags", "<u4"), ("offset", "<u8"), ("vaddr", "<u8"), ("paddr", "<u8"),
    ("filesz", "<u8"), ("memsz", "<u8"), ("align", "<u8"),
])
_SHDR = np.dtype([
    ("name", "<u4"), ("type", "<u4"), ("flags", "<u8"), ("addr", "<u8"), ("offset", "<u8"),
    ("size", "<u8"), ("link", "<u4"), ("info", "<u4"), ("addralign", "<u8"), ("entsize", "<u8"),
])
SYM = np.dtype([
    ("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
    ("value", "<u8"), ("size", "<u8"),
])
PT_LOAD = 1
SHT_SYMTAB, SHT_NOBITS, SHT_DYNSYM = 2, 8, 11
SHF_ALLOC = 0x2


class ElfFile:
    """Program headers, section headers and symbol tables of one ELF64 LE file."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            try:
                self._map = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            except ValueError:
                raise ValueError("empty file") from None
        data = self._map
        if len(data) < _EHDR.itemsize or data[:4] != b"\x7fELF":
            raise ValueError("not an ELF file")
        if data[4] != 2 or data[5] != 1:
            raise ValueError("not a 64-bit little-endian ELF file")
        eh = np.frombuffer(data, _EHDR, 1).copy()[0]
        self.type = int(eh["type"])
        self.segments = self._table(int(eh["phoff"]), int(eh["phnum"]), int(eh["phentsize"]),
                                    _PHDR)
        shnum, shstrndx = int(eh["shnum"]), int(eh["shstrndx"])
        shoff = int(eh["shoff"])
        if shoff and (shnum == 0 or shstrndx == 0xFFFF):
            # Many sections: the real counts are in section 0 (ELF's extended numbering).
            first = self._table(shoff, 1, int(eh["shentsize"]), _SHDR)[0]
            shnum = shnum or int(first["size"])
            shstrndx = int(first["link"]) if shstrndx == 0xFFFF else shstrndx
        self.sections = self._table(shoff, shnum, int(eh["shentsize"]), _SHDR) if shoff \
            else np.zeros(0, _SHDR)
        names = self.section_data(shstrndx) if 0 < shstrndx < len(self.sections) else b""
        self.section_names = [_cstr(names, int(s["name"])) for s in self.sections]

    def _table(self, offset: int, count: int, entsize: int, dtype: np.dtype) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype)
        if entsize != dtype.itemsize or offset + count * entsize > len(self._map):
            raise ValueError("corrupt ELF headers")
        return np.frombuffer(self._map, dtype, count, offset).copy()

    def section_data(self, k: int) -> bytes:
        s = self.sections[k]
        if int(s["type"]) == SHT_NOBITS:
            return b""
        lo, hi = int(s["offset"]), int(s["offset"]) + int(s["size"])
        if hi > len(self._map):
            raise ValueError("corrupt ELF section")
        return self._map[lo:hi]

    def section(self, name: str, kind: int) -> int | None:
        for k, s in enumerate(self.sections):
            if self.section_names[k] == name and int(s["type"]) == kind:
                return k
        return None

    def symbols(self, k: int) -> tuple[np.ndarray, bytes]:
        """The symbol table in section `k` and its string table."""
        s = self.sections[k]
        if int(s["entsize"]) != SYM.itemsize:
            raise ValueError("corrupt ELF symbol table")
        table = np.frombuffer(self.section_data(k), SYM)
        link = int(s["link"])
        strings = self.section_data(link) if 0 < link < len(self.sections) else b""
        return table, strings

    def close(self) -> None:
        self._map.close()


def _cstr(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return data[offset:end if end >= 0 else None].decode(errors="replace")
