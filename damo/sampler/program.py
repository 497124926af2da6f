"""Compiling a BPF source with bcc, caching the result, and loading it with damo's own bpf(2) calls.

bcc turns C into BPF instructions in which each map is referenced by the file
descriptor bcc created it with. Those instructions, the maps' shapes and the
fds they used are all that is needed to load the program again in a later
run: create the maps anew and patch the new fds in. That skips clang, and
with it bcc itself: a warm start never imports bcc, whose libbcc brings LLVM
(68 MiB resident here as soon as it is imported, about 150 MiB once it has
compiled). A cold start compiles in a forked child, so the monitor never
maps LLVM either. The kernel's verifier still checks every load.

The cache entry is keyed by CACHE_FORMAT, the kernel release, the source and
the flags; an entry that cannot be read as this format, or that the kernel
refuses, is compiled again.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path

from damo.cache import cache_dir, read_private_json, write_private_json
from damo.errors import PlatformError
from damo.linux import bpf_syscall, btf
from damo.process_env import in_child

# 2: kfunc placeholders, the format stored in the entry itself.
CACHE_FORMAT = 2

# Kernel functions a source may call, by the macro that gives it the
# placeholder helper number to call (bpf_syscall.patch_kfunc_calls).
KFUNCS = {
    "KFUNC_ITER_NUM_NEW": "bpf_iter_num_new",
    "KFUNC_ITER_NUM_NEXT": "bpf_iter_num_next",
    "KFUNC_ITER_NUM_DESTROY": "bpf_iter_num_destroy",
}
KFUNC_PLACEHOLDER_BASE = 0x10000  # far above any helper number


@dataclass(frozen=True)
class MapSpec:
    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    compile_fd: int  # the fd the instructions reference


@dataclass(frozen=True)
class Compiled:
    maps: tuple[MapSpec, ...]
    programs: dict[str, bytes]  # function name -> instructions


@dataclass
class Loaded:
    """Maps (fd and, for mmapable arrays, a shared mapping) and program fds of one load."""

    map_fds: dict[str, int]
    map_views: dict[str, mmap.mmap]
    prog_fds: dict[str, int]

    def close(self) -> None:
        for view in self.map_views.values():
            try:
                view.close()
            except BufferError:
                pass  # numpy views still use it: it is unmapped with the last of them
        for fd in (*self.map_fds.values(), *self.prog_fds.values()):
            os.close(fd)
        self.map_views.clear()
        self.map_fds.clear()
        self.prog_fds.clear()


def compile_with_bcc(text: str, cflags: list[str]) -> Compiled:
    """Compile `text` with bcc (no kernel headers needed) into instructions and map shapes."""
    from damo.linux import bcc_env

    bcc = bcc_env.setup()
    lib = bcc.lib
    for fn, restype, argtypes in (
        ("bpf_num_tables", ctypes.c_size_t, [ctypes.c_void_p]),
        ("bpf_table_name", ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_size_t]),
        ("bpf_table_key_size_id", ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_size_t]),
        ("bpf_table_leaf_size_id", ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_size_t]),
        ("bpf_table_fd_id", ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t]),
    ):
        getattr(lib, fn).restype = restype
        getattr(lib, fn).argtypes = argtypes
    try:
        b = bcc.BPF(text=text.encode(), cflags=cflags)
    except Exception as e:  # bcc raises bare Exception; clang's messages went to stderr
        raise PlatformError(f"bcc could not compile the BPF program: {e}") from None
    try:
        module = b.module
        maps = tuple(
            MapSpec(
                name=lib.bpf_table_name(module, i).decode(),
                map_type=lib.bpf_table_type_id(module, i),
                key_size=lib.bpf_table_key_size_id(module, i),
                value_size=lib.bpf_table_leaf_size_id(module, i),
                max_entries=lib.bpf_table_max_entries_id(module, i),
                flags=lib.bpf_table_flags_id(module, i),
                compile_fd=lib.bpf_table_fd_id(module, i),
            )
            for i in range(lib.bpf_num_tables(module))
        )
        programs = {
            lib.bpf_function_name(module, i).decode(): b.dump_func(lib.bpf_function_name(module, i))
            for i in range(lib.bpf_num_functions(module))
        }
    finally:
        b.cleanup()
    return Compiled(maps, programs)


def kfuncs(ids: dict[str, int] | None = None) -> tuple[list[str], dict[int, int]]:
    """The -D flags that give a source the kernel functions of KFUNCS, and their patching.

    Only when the running kernel has all of them (`ids`: their BTF ids, as
    btf.kernel_func_ids answers, asked here if not given); else no flags, and
    the source does without.  Returns (cflags, placeholder -> BTF id).
    """
    if ids is None:
        ids = btf.kernel_func_ids(sorted(KFUNCS.values()))
    if any(ids.get(name, -1) < 0 for name in KFUNCS.values()):
        return [], {}
    cflags, patch = [], {}
    for k, (macro, name) in enumerate(sorted(KFUNCS.items())):
        cflags.append(f"-D{macro}={KFUNC_PLACEHOLDER_BASE + k}")
        patch[KFUNC_PLACEHOLDER_BASE + k] = ids[name]
    return cflags, patch


_LOCAL_INCLUDE = re.compile(r'^#include "([A-Za-z0-9_]+\.h)"[ \t]*$', re.M)


def program_text(path: Path) -> str:
    """A BPF program's text with its local headers (`#include "x.h"`, beside it in bpf/)
    inlined: bcc compiles one text, and the cache key, taken of the text, covers them."""
    return _LOCAL_INCLUDE.sub(lambda m: path.with_name(m.group(1)).read_text(), path.read_text())


def _cache_key(text: str, cflags: list[str]) -> str:
    h = hashlib.sha256()
    for part in (str(CACHE_FORMAT), os.uname().release, text, *cflags):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:32]


def _cache_path(key: str) -> Path:
    return cache_dir() / "bpf" / f"{key}.json"


def _to_doc(compiled: Compiled) -> dict:
    return {
        "format": CACHE_FORMAT,
        "maps": [m.__dict__ for m in compiled.maps],
        "programs": {k: base64.b64encode(v).decode() for k, v in compiled.programs.items()},
    }


def _from_doc(doc: object) -> Compiled | None:
    """The entry `doc` holds, or None unless it is a whole entry of this format."""
    try:
        if doc["format"] != CACHE_FORMAT:
            return None
        maps = tuple(MapSpec(**m) for m in doc["maps"])
        progs = {k: base64.b64decode(v, validate=True) for k, v in doc["programs"].items()}
    except (ValueError, KeyError, TypeError):
        return None
    if not progs or any(not insns or len(insns) % 8 for insns in progs.values()) \
            or not all(type(getattr(m, f)) is int for m in maps for f in (
                "map_type", "key_size", "value_size", "max_entries", "flags", "compile_fd")):
        return None
    return Compiled(maps, progs)


def _read_cache(path: Path) -> Compiled | None:
    # Instructions from a file someone else could write would run as root's BPF.
    return _from_doc(read_private_json(path))


def _write_cache(path: Path, compiled: Compiled) -> None:
    write_private_json(path, _to_doc(compiled))


def compile_cached(text: str, cflags: list[str], use_cache: bool = True) -> tuple[Compiled, bool]:
    """The compiled program, from the cache when it holds this exact source and flags.

    Returns (compiled, from_cache).
    """
    path = _cache_path(_cache_key(text, cflags))
    if use_cache:
        cached = _read_cache(path)
        if cached is not None:
            return cached, True
    return _compile_and_store(text, cflags, use_cache), False


def _compile_and_store(text: str, cflags: list[str], use_cache: bool) -> Compiled:
    # In a child: bcc's LLVM would stay mapped in the monitor for its whole run.
    compiled = _from_doc(in_child(lambda: _to_doc(compile_with_bcc(text, cflags))))
    if compiled is None:
        raise PlatformError("bcc's output could not be read back")
    if use_cache:
        try:
            _write_cache(_cache_path(_cache_key(text, cflags)), compiled)
        except OSError:
            pass  # a cache that cannot be written only costs start-up time
    return compiled


def load(compiled: Compiled, kfunc_ids: dict[int, int] | None = None,
         prog_types: dict[str, int] | None = None) -> Loaded:
    """Create the maps, map the mmapable ones, and load every program.

    `kfunc_ids`: placeholder helper number -> BTF id of the kernel function to call.
    `prog_types`: program name -> BPF program type, where not a raw tracepoint.
    """
    loaded = Loaded({}, {}, {})
    try:
        fd_map = {}
        for m in compiled.maps:
            fd = bpf_syscall.map_create(
                m.map_type, m.key_size, m.value_size, m.max_entries, m.flags, m.name
            )
            loaded.map_fds[m.name] = fd
            fd_map[m.compile_fd] = fd
            if m.flags & bpf_syscall.BPF_F_MMAPABLE:
                loaded.map_views[m.name] = bpf_syscall.map_mmap(fd, m.value_size, m.max_entries)
        for name, insns in compiled.programs.items():
            insns = bpf_syscall.patch_kfunc_calls(
                bpf_syscall.patch_map_fds(insns, fd_map), kfunc_ids or {})
            loaded.prog_fds[name] = bpf_syscall.prog_load(
                insns, name, (prog_types or {}).get(name, bpf_syscall.BPF_PROG_TYPE_RAW_TRACEPOINT))
    except BaseException:
        loaded.close()
        raise
    return loaded


def compile_and_load(text: str, cflags: list[str], kfunc_ids: dict[int, int] | None = None,
                     use_cache: bool = True, programs: tuple[str, ...] = (),
                     maps: tuple[str, ...] = (),
                     prog_types: dict[str, int] | None = None) -> tuple[Loaded, bool]:
    """`load` of `compile_cached`; a cached entry that is not what the caller needs
    (`programs` and `maps` by name) or that fails to load is compiled again.

    Returns (loaded, from_cache).
    """
    compiled, from_cache = compile_cached(text, cflags, use_cache)
    if from_cache:
        if set(programs) <= set(compiled.programs) and \
                set(maps) <= {m.name for m in compiled.maps}:
            try:
                return load(compiled, kfunc_ids, prog_types), True
            except (PlatformError, OSError, ValueError):
                pass  # e.g. instructions of another build of this release: compile afresh
        compiled = _compile_and_store(text, cflags, use_cache)
    return load(compiled, kfunc_ids, prog_types), False
