"""What an address range of a target was: mappings, ELF sections and symbols.

The sidecar `<record>.meta` holds each target's ``/proc/PID/maps`` over time
(`damo.records.meta`).  `Annotator.annotate(target_id, start, end, time_ns)`
takes the mappings in effect at ``time_ns`` and splits ``[start, end)`` over
them; the parts that belong to an ELF file (its file-backed segments, and the
anonymous mapping right after them that holds its ``.bss``) are translated to
the file's virtual addresses and named by section and symbol.

The translation goes through the program headers: a mapping at ``m.start``
with file offset ``m.offset`` lies in the ``PT_LOAD`` segment holding that
offset, so its load bias is ``m.start - (p_vaddr + m.offset - p_offset)``;
the segments shifted by that bias are where the image lies in memory, bss
included.  No base address is assumed.

Each file is parsed when a range first needs it, once per process
(`damo.linux.elf`: numpy over a memory map of the file).  A file that is
gone, was replaced since the recording, is not ELF or has no symbols
degrades to what can still be said (the mapping name, the section), with a
note; never an error.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field

import numpy as np

from damo.linux.elf import SYM as _SYM_DTYPE
from damo.linux.maps import Mapping

PAGE_SIZE = 4096
ANON = "[anon]"
UNMAPPED = "[unmapped]"
DELETED = " (deleted)"
# Symbols named per part, most bytes first.
MAX_SYMBOLS = 3
MINOR_SHARE = 20  # a symbol with less than 1/20 of the top one's bytes is not named

_STT_OBJECT, _STT_FUNC = 1, 2


@dataclass
class Part:
    """The piece of an annotated range that lies in one mapping (or in none)."""

    start: int
    end: int
    mapping: str  # file path, "[heap]"-style name, "[anon]" or "[unmapped]"
    perms: str = ""
    file_offset: int | None = None  # of `start`, for file-backed mappings
    image: str | None = None  # the ELF file this part belongs to (bss: the anon mapping after it)
    sections: list[tuple[str, int]] = field(default_factory=list)  # (name, bytes), most first
    symbols: list[tuple[str, int]] = field(default_factory=list)  # (name, bytes), most first
    more_symbols: int = 0  # symbols overlapped beyond those listed
    note: str | None = None

    @property
    def size(self) -> int:
        return self.end - self.start

    def label(self) -> str:
        """A short name: the file's base name (or pseudo name), section and main symbols."""
        name = self.image or self.mapping
        words = [os.path.basename(name) if name.startswith("/") else name]
        if self.sections:
            words.append(self.sections[0][0])
        if self.symbols:
            syms = ", ".join(s for s, _ in self.symbols)
            words.append(syms + (f" +{self.more_symbols}" if self.more_symbols else ""))
        return " ".join(words)

    def to_json(self) -> dict:
        return {
            "start": self.start, "end": self.end, "size": self.size, "mapping": self.mapping,
            "perms": self.perms, "file_offset": self.file_offset, "image": self.image,
            "sections": [{"name": n, "size": b} for n, b in self.sections],
            "symbols": [{"name": n, "size": b} for n, b in self.symbols],
            "more_symbols": self.more_symbols, "note": self.note,
        }


@dataclass
class Annotation:
    """An address range split into the parts of its mappings, in address order."""

    start: int
    end: int
    parts: list[Part]

    def main(self) -> Part | None:
        """The mapped part with the most bytes (None when nothing of it is mapped)."""
        mapped = [p for p in self.parts if p.mapping != UNMAPPED]
        return max(mapped, key=lambda p: p.size) if mapped else None

    def label(self) -> str:
        """The main part's label, and how many other mappings the range touches."""
        main = self.main()
        if main is None:
            return UNMAPPED
        others = {p.image or p.mapping for p in self.parts if p.mapping != UNMAPPED} \
            - {main.image or main.mapping}
        return main.label() + (f" (+{len(others)} more)" if others else "")

    def notes(self) -> list[str]:
        return sorted({p.note for p in self.parts if p.note})


class ElfImage:
    """What annotation needs of one ELF file: load segments, sections, symbols."""

    def __init__(self, path: str):
        from damo.linux.elf import PT_LOAD, SHF_ALLOC, SHT_DYNSYM, SHT_SYMTAB, ElfFile

        self.path = path
        self.note: str | None = None
        elf = ElfFile(path)
        try:
            seg = elf.segments[elf.segments["type"] == PT_LOAD]
            # (p_offset, p_vaddr, p_filesz, p_memsz) of each PT_LOAD
            self.loads = list(zip(*(seg[f].tolist() for f in ("offset", "vaddr", "filesz",
                                                              "memsz")), strict=True))
            sec = elf.sections
            alloc = np.flatnonzero((sec["flags"] & SHF_ALLOC != 0) & (sec["addr"] != 0)
                                   & (sec["size"] != 0)).tolist() if len(sec) else []
            sections = sorted((int(sec[k]["addr"]), int(sec[k]["size"]), elf.section_names[k])
                              for k in alloc)
            table = elf.section(".symtab", SHT_SYMTAB)
            if table is None:
                table = elf.section(".dynsym", SHT_DYNSYM)
                self.note = "stripped: exported symbols only" if table is not None \
                    else "stripped: no symbols"
            syms, self.strtab = elf.symbols(table) if table is not None else \
                (np.zeros(0, _SYM_DTYPE), b"")
            self.strtab = bytes(self.strtab)
        finally:
            elf.close()
        self.sec_start = [s[0] for s in sections]
        self.sec_end = [s[0] + s[1] for s in sections]
        self.sec_name = [s[2] for s in sections]
        kind = syms["info"] & 0xF
        keep = ((kind == _STT_OBJECT) | (kind == _STT_FUNC)) & (syms["size"] > 0) \
            & (syms["shndx"] != 0)
        syms = syms[keep]
        # Aliases (same address and size) are named once.
        _, first = np.unique(np.stack([syms["value"], syms["size"]], axis=1), axis=0,
                             return_index=True)
        syms = syms[np.sort(first)]
        syms = syms[np.argsort(syms["value"], kind="stable")]
        self.sym_value = syms["value"].copy()
        self.sym_end = syms["value"] + syms["size"]
        self.sym_name = syms["name"].copy()

    def _name(self, offset: int) -> str:
        end = self.strtab.find(b"\0", offset)
        return self.strtab[offset:end if end >= 0 else None].decode(errors="replace")

    def segment_for_offset(self, offset: int) -> tuple[int, int, int, int] | None:
        """The PT_LOAD a page-aligned file offset of a mapping falls in."""
        for seg in self.loads:
            p_offset, _, p_filesz, _ = seg
            if p_offset - p_offset % PAGE_SIZE <= offset < max(p_offset + p_filesz,
                                                             p_offset + 1):
                return seg
        return None

    def sections_in(self, lo: int, hi: int) -> list[tuple[str, int]]:
        """(section, bytes of [lo, hi) in it), most bytes first."""
        k = max(bisect.bisect_right(self.sec_start, lo) - 1, 0)
        out = []
        while k < len(self.sec_start) and self.sec_start[k] < hi:
            overlap = min(hi, self.sec_end[k]) - max(lo, self.sec_start[k])
            if overlap > 0:
                out.append((self.sec_name[k], overlap))
            k += 1
        return sorted(out, key=lambda x: -x[1])

    def symbols_in(self, lo: int, hi: int) -> tuple[list[tuple[str, int]], int]:
        """The symbols [lo, hi) overlaps most (name, bytes), and how many others it overlaps."""
        if not len(self.sym_value):
            return [], 0
        # Symbols starting before hi; of those, the ones ending after lo.
        n = int(np.searchsorted(self.sym_value, np.uint64(hi), side="left"))
        hit = np.flatnonzero(self.sym_end[:n] > np.uint64(lo))
        if not len(hit):
            return [], 0
        overlap = np.minimum(self.sym_end[hit], np.uint64(hi)).astype(np.int64) - \
            np.maximum(self.sym_value[hit], np.uint64(lo)).astype(np.int64)
        order = np.argsort(-overlap, kind="stable")
        # Symbols the range only grazes (its page-aligned ends) are counted, not named.
        order = order[overlap[order] * MINOR_SHARE >= overlap[order[0]]][:MAX_SYMBOLS]
        named = [(self._name(int(self.sym_name[hit[k]])), int(overlap[k])) for k in order]
        return named, len(hit) - len(named)


class _Layout:
    """One maps snapshot of a target: its mappings, and where each ELF image was loaded.

    Images are looked at lazily: a report names a few ranges, not every file.
    """

    def __init__(self, maps: list[Mapping], images: _ImageCache):
        self.maps = maps
        self.starts = [m.start for m in maps]
        self._images = images
        # path -> (bias, [(lo, hi) of its segments in memory]), or None when not loaded ELF
        self._loaded: dict[str, tuple[int, list[tuple[int, int]]] | None] = {}
        self.notes: dict[str, str] = {}

    def loaded(self, path: str) -> tuple[int, list[tuple[int, int]]] | None:
        """(load bias, segment spans in memory) of the ELF file at `path`, if it is one."""
        if path not in self._loaded:
            self._loaded[path] = self._load(path)
        return self._loaded[path]

    def _load(self, path: str) -> tuple[int, list[tuple[int, int]]] | None:
        for m in self.maps:
            if m.path != path:
                continue
            image, note = self._images.get(m)
            if image is None:
                if note is not None:
                    self.notes[path] = note
                return None
            seg = image.segment_for_offset(m.offset)
            if seg is None:
                continue  # mapped as data, not as a loaded segment: try its other mappings
            p_offset, p_vaddr, _, _ = seg
            bias = m.start - (p_vaddr + m.offset - p_offset)
            return bias, [(bias + v, bias + v + memsz) for _, v, _, memsz in image.loads]
        return None

    def image_at(self, k: int, addr: int) -> str | None:
        """The ELF image whose bss the anonymous mapping `k` holding `addr` is.

        The kernel puts a file's bss right after its last file-backed mapping.
        """
        if k == 0:
            return None
        prev = self.maps[k - 1]
        if not prev.path.startswith("/") or prev.end != self.maps[k].start:
            return None
        loaded = self.loaded(prev.path)
        if loaded is not None and any(lo <= addr < hi for lo, hi in loaded[1]):
            return prev.path
        return None


class _ImageCache:
    """ELF files parsed once each, keyed by path and identity (device, inode, size, mtime)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple, tuple[ElfImage | None, str | None]] = {}

    def get(self, m: Mapping) -> tuple[ElfImage | None, str | None]:
        """(image, None), (None, note why not), or (None, None) for a file that is not ELF."""
        path = m.path
        if path.endswith(DELETED):
            return None, "file deleted since it was mapped"
        try:
            st = os.stat(path)
        except OSError as err:
            return None, f"file not readable now ({err.strerror})"
        if m.inode and st.st_ino != m.inode or m.dev and _dev(st.st_dev) != m.dev:
            return None, "file replaced since the recording"
        key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._by_key:
            self._by_key[key] = self._parse(path)
        return self._by_key[key]

    @staticmethod
    def _parse(path: str) -> tuple[ElfImage | None, str | None]:
        try:
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    return None, None
            return ElfImage(path), None
        except OSError as err:
            return None, f"file not readable now ({err.strerror})"
        except ValueError as err:
            return None, str(err)


def _dev(st_dev: int) -> str:
    """st_dev in /proc/PID/maps's spelling (major:minor in hex)."""
    return f"{os.major(st_dev):02x}:{os.minor(st_dev):02x}"


def mapping_from_meta(entry: list) -> Mapping:
    """A `maps` sidecar entry ``[start, end, perms, offset, path, (dev, inode)]``."""
    start, end, perms, offset, path = entry[:5]
    dev, inode = (entry[5], entry[6]) if len(entry) >= 7 else ("", 0)
    return Mapping(int(start), int(end), str(perms), int(offset), str(dev), int(inode), str(path))


class Annotator:
    """Annotates address ranges of the targets of one record from its sidecar messages."""

    def __init__(self, messages: list[dict] | None):
        self._images = _ImageCache()
        # target id -> times, raw map lists, layouts built on first use
        self._times: dict[int, list[int]] = {}
        self._raw: dict[int, list[list]] = {}
        self._layouts: dict[tuple[int, int], _Layout] = {}
        self.targets: dict[int, dict] = {}
        self.attrs: dict = {}
        for msg in messages or []:
            if msg.get("type") == "maps" and isinstance(msg.get("maps"), list):
                tid = int(msg["target_id"])
                self._times.setdefault(tid, []).append(int(msg["time_ns"]))
                self._raw.setdefault(tid, []).append(msg["maps"])
            elif msg.get("type") == "start":
                self.attrs = msg.get("attrs") or {}
                for t in msg.get("targets") or []:
                    if isinstance(t, dict) and "id" in t:
                        self.targets[int(t["id"])] = t
        for tid, times in self._times.items():
            order = sorted(range(len(times)), key=times.__getitem__)
            self._times[tid] = [times[k] for k in order]
            self._raw[tid] = [self._raw[tid][k] for k in order]

    @classmethod
    def for_record(cls, record_path: str) -> Annotator:
        """The annotator of a record file; without a sidecar it knows no mapping."""
        from damo.errors import RecordFormatError
        from damo.records.meta import read_meta

        try:
            return cls(read_meta(record_path))
        except RecordFormatError as err:
            import sys

            print(f"damo: warning: {err}; ranges are not annotated", file=sys.stderr)
            return cls(None)

    def has_maps(self, target_id: int | None = None) -> bool:
        return bool(self._times) if target_id is None else target_id in self._times

    def boundaries(self, target_id: int) -> np.ndarray:
        """Every mapping start and end of the target in any of its maps (uint64, sorted)."""
        edges = {int(x) for maps in self._raw.get(target_id, []) for e in maps for x in e[:2]}
        return np.array(sorted(edges), dtype=np.uint64)

    def target_name(self, target_id: int) -> str:
        """'target ID' and, for a process, its command line (shortened)."""
        info = self.targets.get(target_id, {})
        cmdline = info.get("cmdline")
        name = f"target {target_id}"
        if cmdline:
            text = " ".join(cmdline)
            name += f" ({text if len(text) <= 40 else text[:39] + '…'})"
        return name

    def _layout(self, target_id: int, time_ns: int) -> _Layout | None:
        times = self._times.get(target_id)
        if not times:
            return None
        # The maps read last at or before time_ns (the first ones before any).
        k = max(bisect.bisect_right(times, time_ns) - 1, 0)
        key = (target_id, k)
        if key not in self._layouts:
            maps = sorted((mapping_from_meta(e) for e in self._raw[target_id][k]),
                          key=lambda m: m.start)
            self._layouts[key] = _Layout(maps, self._images)
        return self._layouts[key]

    def annotate(self, target_id: int, start: int, end: int, time_ns: int) -> Annotation | None:
        """`[start, end)` of `target_id` at `time_ns`, split by mapping; None without maps."""
        layout = self._layout(target_id, time_ns)
        if layout is None:
            return None
        parts = []
        pos = start
        first = max(bisect.bisect_right(layout.starts, start) - 1, 0)
        for k in range(first, len(layout.maps)):
            m = layout.maps[k]
            if m.start >= end:
                break
            if m.end <= pos:
                continue
            if m.start > pos:
                parts.append(Part(pos, m.start, UNMAPPED))
            lo, hi = max(pos, m.start), min(end, m.end)
            parts.append(self._part(layout, k, lo, hi))
            pos = hi
        if pos < end:
            parts.append(Part(pos, end, UNMAPPED))
        return Annotation(start, end, parts)

    def _part(self, layout: _Layout, k: int, lo: int, hi: int) -> Part:
        m = layout.maps[k]
        part = Part(lo, hi, m.path or ANON, m.perms)
        image_path = None
        if m.path.startswith("/"):
            part.file_offset = m.offset + (lo - m.start)
            if layout.loaded(m.path) is not None:
                image_path = m.path
        elif not m.path:
            image_path = layout.image_at(k, lo)
        if image_path is None:
            part.note = layout.notes.get(m.path)
            return part
        image = self._image(layout, image_path)
        bias = layout.loaded(image_path)[0]
        part.image = image_path
        part.sections = image.sections_in(lo - bias, hi - bias)
        part.symbols, part.more_symbols = image.symbols_in(lo - bias, hi - bias)
        part.note = image.note
        return part

    def _image(self, layout: _Layout, path: str) -> ElfImage:
        return self._images.get(next(x for x in layout.maps if x.path == path))[0]

    def named_spans(self, target_id: int, time_ns: int, lo: int, hi: int,
                    min_size: int) -> list[tuple[int, int, str]]:
        """[lo, hi) cut into named spans for a map's side: (start, end, name).

        One span per mapping (the file's base name or the pseudo name), and one
        per symbol of at least `min_size` bytes in an ELF image (its arrays and
        big functions); neighbours of the same name are one span.
        """
        layout = self._layout(target_id, time_ns)
        if layout is None:
            return []
        spans: list[tuple[int, int, str]] = []

        def add(start: int, end: int, name: str) -> None:
            if start >= end:
                return
            if spans and spans[-1][2] == name and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end, name)
            else:
                spans.append((start, end, name))

        first = max(bisect.bisect_right(layout.starts, lo) - 1, 0)
        for k in range(first, len(layout.maps)):
            m = layout.maps[k]
            if m.start >= hi:
                break
            s, e = max(lo, m.start), min(hi, m.end)
            if s >= e:
                continue
            if e - s < min_size:
                # Too small to hold a symbol worth naming: no need to read its file.
                name = m.path or ANON
                add(s, e, os.path.basename(name) if name.startswith("/") else name)
                continue
            part = self._part(layout, k, s, e)
            base = part.image or part.mapping
            base = os.path.basename(base) if base.startswith("/") else base
            image = None if part.image is None else self._image(layout, part.image)
            pos = s
            if image is not None and len(image.sym_value):
                bias = layout.loaded(part.image)[0]
                big = np.flatnonzero(
                    (image.sym_end > np.uint64(max(s - bias, 0)))
                    & (image.sym_value < np.uint64(e - bias))
                    & (image.sym_end - image.sym_value >= np.uint64(min_size)))
                for j in big.tolist():
                    a = max(int(image.sym_value[j]) + bias, pos)
                    b = min(int(image.sym_end[j]) + bias, e)
                    if b <= a:
                        continue
                    add(pos, a, base)
                    add(a, b, f"{base} {image._name(int(image.sym_name[j]))}")
                    pos = b
            add(pos, e, base)
        return spans
