"""A small reader of the kernel's BTF (/sys/kernel/btf/vmlinux): member offsets, function ids.

BPF programs here read kernel memory at raw offsets instead of including
kernel headers (there are none on the target machines), so the offsets of the
few members they follow must come from the running kernel's own type
information. Only what offset lookups need is decoded: every type record is
skipped over by its kind-specific length, struct and union members are kept,
and the ids of functions (a kfunc is called by its BTF id).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from damo.errors import PlatformError

VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")

BTF_MAGIC = 0xEB9F

# Kinds (include/uapi/linux/btf.h); the value is the size of the data that
# follows the common 12-byte record: (fixed bytes, bytes per vlen entry).
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION = 1, 2, 3, 4, 5
KIND_ENUM, KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST = 6, 7, 8, 9, 10
KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC = 11, 12, 13, 14, 15
KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = 16, 17, 18, 19

_TRAILER = {
    KIND_INT: (4, 0),
    KIND_PTR: (0, 0),
    KIND_ARRAY: (12, 0),
    KIND_STRUCT: (0, 12),
    KIND_UNION: (0, 12),
    KIND_ENUM: (0, 8),
    KIND_FWD: (0, 0),
    KIND_TYPEDEF: (0, 0),
    KIND_VOLATILE: (0, 0),
    KIND_CONST: (0, 0),
    KIND_RESTRICT: (0, 0),
    KIND_FUNC: (0, 0),
    KIND_FUNC_PROTO: (0, 8),
    KIND_VAR: (4, 0),
    KIND_DATASEC: (0, 12),
    KIND_FLOAT: (0, 0),
    KIND_DECL_TAG: (4, 0),
    KIND_TYPE_TAG: (0, 0),
    KIND_ENUM64: (0, 12),
}

# Kinds that only qualify another type: followed when looking through a member's type.
_QUALIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)


@dataclass(frozen=True)
class Member:
    name: str
    type_id: int
    bit_offset: int


@dataclass(frozen=True)
class _Type:
    kind: int
    name: str
    size_or_type: int
    members: tuple[Member, ...] = ()


class Btf:
    """Types of one BTF blob, with lookups by struct name."""

    def __init__(self, data: bytes, source: str = "<bytes>"):
        self._source = source
        self._types: list[_Type | None] = [None]  # type id 0 is void
        self._structs: dict[str, int] = {}
        self._funcs: dict[str, int] = {}
        self._parse(data)

    @classmethod
    def from_file(cls, path: Path = VMLINUX_BTF) -> Btf:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise PlatformError(
                f"no BTF at {path}: damo needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
            ) from None
        except PermissionError:
            raise PlatformError(f"cannot read {path}: run damo as root") from None
        return cls(data, str(path))

    def _parse(self, data: bytes) -> None:
        if len(data) < 24:
            raise PlatformError(f"{self._source}: too short to be BTF")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != BTF_MAGIC:
            raise PlatformError(f"{self._source}: not little-endian BTF (magic {magic:#x})")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        pos = hdr_len + type_off
        end = pos + type_len

        def name_at(off: int) -> str:
            stop = strings.index(b"\0", off)
            return strings[off:stop].decode()

        unpack_type = struct.Struct("<III").unpack_from
        unpack_member = struct.Struct("<III").unpack_from
        types = self._types
        while pos < end:
            name_off, info, size_or_type = unpack_type(data, pos)
            pos += 12
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            try:
                fixed, per_entry = _TRAILER[kind]
            except KeyError:
                raise PlatformError(f"{self._source}: unknown BTF kind {kind}") from None
            if kind in (KIND_STRUCT, KIND_UNION):
                bitfields = bool(info >> 31)
                members = []
                for i in range(vlen):
                    m_name, m_type, m_off = unpack_member(data, pos + 12 * i)
                    # With kind_flag set, the top 8 bits hold a bitfield size.
                    bit_offset = m_off & 0xFFFFFF if bitfields else m_off
                    members.append(Member(name_at(m_name) if m_name else "", m_type, bit_offset))
                name = name_at(name_off) if name_off else ""
                types.append(_Type(kind, name, size_or_type, tuple(members)))
                if name and kind == KIND_STRUCT:
                    self._structs.setdefault(name, len(types) - 1)
            elif kind in _QUALIFIERS:
                types.append(_Type(kind, "", size_or_type))
            elif kind == KIND_FUNC:
                types.append(None)
                if name_off:
                    self._funcs.setdefault(name_at(name_off), len(types) - 1)
            else:
                types.append(None)  # never needed for member offsets
            pos += fixed + per_entry * vlen

    def struct_size(self, struct_name: str) -> int:
        """sizeof(struct struct_name)."""
        return self._types[self._struct_id(struct_name)].size_or_type

    def offsetof(self, struct_name: str, member: str) -> int:
        """Byte offset of `member` in `struct struct_name`.

        `member` may be a dotted path through named nested structs ("a.b"); members
        of anonymous structs and unions are found as if they were direct members,
        as C lets code name them.
        """
        type_id = self._struct_id(struct_name)
        total = 0
        for part in member.split("."):
            found = self._find_member(type_id, part)
            if found is None:
                raise PlatformError(
                    f"{self._source}: struct {struct_name} has no member {member!r}"
                )
            bit_offset, type_id = found
            if bit_offset % 8:
                raise PlatformError(f"{self._source}: {struct_name}.{member} is a bitfield")
            total += bit_offset // 8
        return total

    def func_id(self, name: str) -> int | None:
        """The type id of function `name` (how a BPF program calls a kfunc), if there is one."""
        return self._funcs.get(name)

    def _struct_id(self, name: str) -> int:
        try:
            return self._structs[name]
        except KeyError:
            raise PlatformError(f"{self._source}: no struct {name}") from None

    def _resolve(self, type_id: int) -> _Type | None:
        t = self._types[type_id]
        while t is not None and t.kind in _QUALIFIERS:
            t = self._types[t.size_or_type]
        return t

    def _find_member(self, type_id: int, name: str) -> tuple[int, int] | None:
        """(bit offset, member type id) of `name`, searching anonymous members too."""
        t = self._resolve(type_id)
        if t is None or t.kind not in (KIND_STRUCT, KIND_UNION):
            return None
        for m in t.members:
            if m.name == name:
                return m.bit_offset, m.type_id
        for m in t.members:
            if m.name:
                continue
            inner = self._find_member(m.type_id, name)
            if inner is not None:
                return m.bit_offset + inner[0], inner[1]
        return None


_vmlinux: Btf | None = None

# Offsets wanted by name: each a list of (struct, member) to try in order.
Wanted = dict[str, tuple[tuple[str, str], ...]]


def kernel_offsets(wanted: Wanted) -> dict[str, int]:
    """Byte offset of the first member found for each name (-1: none of them exists)."""
    return kernel_answers(wanted)[0]


def kernel_func_ids(names: Sequence[str]) -> dict[str, int]:
    """The BTF type id of each kernel function in `names` (-1: the kernel has none)."""
    return kernel_answers({}, names)[1]


def kernel_answers(wanted: Wanted, funcs: Sequence[str] = ()
                   ) -> tuple[dict[str, int], dict[str, int]]:
    """`kernel_offsets(wanted)` and `kernel_func_ids(funcs)` from one parse of the BTF.

    Parsing the kernel's BTF costs ~0.15 s; the answers are kept in the cache
    directory per kernel build (release, version string and BTF size) and
    question, in a file only this user may write.  A cached answer that does
    not name exactly what is asked, or maps a name to a non-integer, is
    answered again.  The parse runs in a child process: its tens of MiB of
    objects would otherwise stay with the monitor for its whole run.
    """
    import hashlib
    import json

    from damo.cache import cache_dir, read_private_json, write_private_json
    from damo.process_env import in_child

    def answer() -> dict[str, dict[str, int]]:
        b = vmlinux()
        offsets = {}
        for name, alternatives in wanted.items():
            offsets[name] = -1
            for struct_name, member in alternatives:
                try:
                    offsets[name] = b.offsetof(struct_name, member)
                    break
                except PlatformError:
                    continue
        return {"offsets": offsets, "funcs": {name: b.func_id(name) or -1 for name in funcs}}

    def whole(doc: object) -> bool:
        return isinstance(doc, dict) and set(doc) == {"offsets", "funcs"} and all(
            isinstance(doc[part], dict) and set(doc[part]) == set(names)
            and all(type(v) is int for v in doc[part].values())
            for part, names in (("offsets", wanted), ("funcs", funcs)))

    try:
        size = VMLINUX_BTF.stat().st_size
    except OSError:
        size = -1
    uname = os.uname()
    question = [sorted((k, list(v)) for k, v in wanted.items()), sorted(funcs)]
    key = hashlib.sha256(json.dumps([uname.release, uname.version, size, question]).encode()
                         ).hexdigest()[:32]
    try:
        path: Path | None = cache_dir() / "btf" / f"{key}.json"
    except PlatformError:
        path = None  # no cache directory: parse every time (compiling will say why)
    doc = read_private_json(path) if path is not None else None
    if not whole(doc):
        doc = in_child(answer)
        if path is not None:
            try:
                write_private_json(path, doc)
            except OSError:
                pass  # an unwritable cache only costs the parse next time
    return doc["offsets"], doc["funcs"]


def vmlinux() -> Btf:
    """The running kernel's BTF, parsed once per process."""
    global _vmlinux
    if _vmlinux is None:
        _vmlinux = Btf.from_file()
    return _vmlinux
