"""The BTF reader: synthetic blobs for the format, the running kernel for real offsets."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from damo.errors import PlatformError
from damo.linux.btf import KIND_INT, KIND_STRUCT, KIND_TYPEDEF, KIND_UNION, VMLINUX_BTF, Btf


def build_btf(types: list[tuple], names: list[str]) -> bytes:
    """A BTF blob: types are (kind, name, size_or_type, members, kind_flag, extra bytes)."""
    strtab = b"\0"
    offsets = {"": 0}
    for n in names:
        offsets[n] = len(strtab)
        strtab += n.encode() + b"\0"
    body = b""
    for kind, name, size_or_type, members, kind_flag, extra in types:
        info = (kind << 24) | len(members) | (kind_flag << 31)
        body += struct.pack("<III", offsets[name], info, size_or_type) + extra
        for m_name, m_type, m_off in members:
            body += struct.pack("<III", offsets[m_name], m_type, m_off)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(strtab))
    return hdr + body + strtab


def sample_btf() -> Btf:
    names = ["int", "outer", "a", "b", "c", "d", "inner_t", "bits"]
    types = [
        (KIND_INT, "int", 4, [], 0, struct.pack("<I", 32)),  # id 1
        # id 2: anonymous union { int c; int d; } at no offset of its own
        (KIND_UNION, "", 4, [("c", 1, 0), ("d", 1, 0)], 0, b""),
        # id 3: anonymous struct { int b; union {c, d}; }
        (KIND_STRUCT, "", 8, [("b", 1, 0), ("", 2, 32)], 0, b""),
        # id 4: struct outer { int a; struct {...}; }  anonymous struct at byte 8
        (KIND_STRUCT, "outer", 16, [("a", 1, 0), ("", 3, 64)], 0, b""),
        (KIND_TYPEDEF, "inner_t", 3, [], 0, b""),  # id 5
        # id 6: struct bits { bitfield-flagged members, then a typedef'd nested struct }
        (KIND_STRUCT, "bits", 24, [("a", 1, (3 << 24) | 0), ("b", 5, 64)], 1, b""),
    ]
    return Btf(build_btf(types, names))


def test_members_inside_anonymous_structs_and_unions_sum_offsets():
    b = sample_btf()
    assert b.offsetof("outer", "a") == 0
    assert b.offsetof("outer", "b") == 8
    assert b.offsetof("outer", "c") == 12
    assert b.offsetof("outer", "d") == 12
    assert b.struct_size("outer") == 16


def test_dotted_paths_through_typedefs_and_bitfield_flag():
    b = sample_btf()
    assert b.offsetof("bits", "a") == 0  # kind_flag: the top byte is a bitfield size
    assert b.offsetof("bits", "b.c") == 8 + 4


def test_unknown_names_are_platform_errors():
    b = sample_btf()
    with pytest.raises(PlatformError, match="no struct nosuch"):
        b.offsetof("nosuch", "a")
    with pytest.raises(PlatformError, match="no member"):
        b.offsetof("outer", "zz")
    with pytest.raises(PlatformError, match="not little-endian BTF"):
        Btf(b"\0" * 32)


def _need_vmlinux():
    try:
        VMLINUX_BTF.read_bytes()[:4]
    except FileNotFoundError:
        pytest.skip("kernel has no BTF")
    except PermissionError:
        pytest.skip("needs root to read the kernel's BTF")


def bpftool_offsetof(dump: str, struct_name: str, member: str) -> int:
    """Independent offset lookup over bpftool's raw dump (anonymous members followed)."""
    blocks = {}
    for m in re.finditer(r"^\[(\d+)\] (\w+) '([^']*)'[^\n]*\n((?:\t[^\n]*\n)*)", dump, re.M):
        blocks[int(m[1])] = (m[2], m[3], m[4])
    by_name = {name: tid for tid, (kind, name, _) in blocks.items() if kind == "STRUCT"}

    def find(tid: int) -> int | None:
        for line in blocks[tid][2].splitlines():
            mm = re.match(r"\t'([^']*)' type_id=(\d+) bits_offset=(\d+)", line)
            name, sub, bits = mm[1], int(mm[2]), int(mm[3])
            if name == member:
                return bits
            if name == "(anon)" and blocks[sub][0] in ("STRUCT", "UNION"):
                inner = find(sub)
                if inner is not None:
                    return bits + inner
        return None

    return find(by_name[struct_name]) // 8


def test_vmlinux_offsets_match_bpftool():
    _need_vmlinux()
    if not shutil.which("bpftool"):
        pytest.skip("bpftool not installed (apt-get install bpftool)")
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(VMLINUX_BTF), "format", "raw"],
        capture_output=True, text=True, check=True,
    ).stdout
    b = Btf.from_file()
    for struct_name, member in [
        ("task_struct", "mm"), ("task_struct", "tgid"), ("mm_struct", "pgd"),
        ("mm_struct", "mm_users"), ("task_struct", "files"), ("files_struct", "fdt"),
        ("fdtable", "fd"), ("file", "private_data"),
    ]:
        assert b.offsetof(struct_name, member) == bpftool_offsetof(dump, struct_name, member), \
            f"{struct_name}.{member}"


def test_vmlinux_offsets_seen_on_project_machines():
    # kernel-facts.md records these for the project's 6.18 kernel.
    _need_vmlinux()
    if not Path("/proc/version").read_text().startswith("Linux version 6.18."):
        pytest.skip("offsets recorded for kernel 6.18 only")
    b = Btf.from_file()
    assert b.offsetof("task_struct", "mm") == 1136
    assert b.offsetof("task_struct", "tgid") == 1268
    assert b.offsetof("mm_struct", "pgd") == 120


def test_missing_btf_file_is_one_line_error(tmp_path):
    with pytest.raises(PlatformError, match="CONFIG_DEBUG_INFO_BTF"):
        Btf.from_file(tmp_path / "vmlinux")


def test_kernel_offsets_are_cached_per_question_and_a_foreign_cache_is_ignored(
        tmp_path, monkeypatch):
    import json
    import os

    from damo.linux import btf

    _need_vmlinux()
    monkeypatch.setenv("DAMO_CACHE_DIR", str(tmp_path))
    wanted = {"PGD": (("mm_struct", "pgd"),),
              "CPU": (("task_struct", "no_such_member"), ("task_struct", "thread_info.cpu")),
              "NONE": (("task_struct", "no_such_member"),)}
    b = Btf.from_file()
    expect = {"PGD": b.offsetof("mm_struct", "pgd"),
              "CPU": b.offsetof("task_struct", "thread_info.cpu"), "NONE": -1}
    assert btf.kernel_offsets(wanted) == expect
    (path,) = (tmp_path / "btf").iterdir()
    assert json.loads(path.read_text()) == {"offsets": expect, "funcs": {}}
    assert path.stat().st_mode & 0o777 == 0o600
    # The cached answer is used ...
    path.write_text(json.dumps({"offsets": {**expect, "PGD": 7}, "funcs": {}}))
    assert btf.kernel_offsets(wanted)["PGD"] == 7
    # ... unless others could have written it, or it is not ours, or not whole.
    os.chmod(path, 0o620)
    assert btf.kernel_offsets(wanted) == expect
    if os.geteuid() == 0:
        path.write_text(json.dumps({"offsets": {**expect, "PGD": 7}, "funcs": {}}))
        os.chmod(path, 0o600)
        os.chown(path, 65534, 65534)
        assert btf.kernel_offsets(wanted) == expect
    for partial in ({"offsets": {"PGD": 7}, "funcs": {}}, {**expect, "PGD": 7},
                    {"offsets": {**expect, "PGD": "7"}, "funcs": {}}):
        path.unlink()
        path.write_text(json.dumps(partial))
        os.chmod(path, 0o600)
        assert btf.kernel_offsets(wanted) == expect
    # Another question, another file.
    btf.kernel_offsets({"PGD": (("mm_struct", "pgd"),)})
    assert len(list((tmp_path / "btf").iterdir())) == 2


def test_kernel_func_ids_and_offsets_from_one_question(tmp_path, monkeypatch):
    from damo.linux import btf

    _need_vmlinux()
    monkeypatch.setenv("DAMO_CACHE_DIR", str(tmp_path))
    b = Btf.from_file()
    wanted = {"PGD": (("mm_struct", "pgd"),)}
    offsets, funcs = btf.kernel_answers(wanted, ["bpf_iter_num_new", "no_such_function_xyz"])
    assert offsets == {"PGD": b.offsetof("mm_struct", "pgd")}
    assert funcs == {"bpf_iter_num_new": b.func_id("bpf_iter_num_new") or -1,
                     "no_such_function_xyz": -1}
    assert len(list((tmp_path / "btf").iterdir())) == 1
    assert btf.kernel_func_ids(["bpf_iter_num_new"])["bpf_iter_num_new"] == \
        funcs["bpf_iter_num_new"]
