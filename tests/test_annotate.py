"""Annotation: a compiled program's arrays, functions and heap named; stripped, deleted and
replaced files degrade to what can still be said; a Python process's mmap of a known file."""

import mmap
import os
import subprocess
import sys

import pytest
from elf_target import compile_hotcold, start, write_sidecar

from damo.linux.maps import read_maps
from damo.records.meta import read_meta
from damo.reports.annotate import ANON, UNMAPPED, Annotator

MiB = 1 << 20


@pytest.fixture
def hotcold(tmp_path):
    binary = compile_hotcold(tmp_path / "hotcold")
    p, addrs = start(binary)
    yield p, addrs, binary
    p.kill()
    p.wait()


def annotator_of(tmp_path, pid):
    record = tmp_path / "damon.data"
    write_sidecar(record, pid)
    return Annotator(read_meta(str(record)))


def test_arrays_functions_and_heap_are_named(tmp_path, hotcold):
    p, addrs, binary = hotcold
    ann = annotator_of(tmp_path, p.pid)
    expect = {
        "hot_array": (64 * MiB, ".bss"),
        "cold_array": (64 * MiB, ".bss"),
        "phase_array": (32 * MiB, ".bss"),
        "init_table": (256 << 10, ".data"),
        "main": (16, ".text"),
    }
    for name, (size, section) in expect.items():
        a = ann.annotate(1, addrs[name], addrs[name] + size, 0)
        main = a.main()
        assert main.image == str(binary), name
        assert main.sections[0][0] == section, name
        assert main.symbols[0][0] == name
        # An array may straddle the file's last page and the anonymous bss after it.
        assert sum(b for x in a.parts for s, b in x.symbols if s == name) == size, name
        assert a.label().startswith(f"hotcold {section} {name}"), a.label()
        assert not a.notes()
    # The big arrays lie (mostly) in the anonymous mapping after the file: its bss.
    assert ann.annotate(1, addrs["hot_array"], addrs["hot_array"] + 4096, 0).parts[0].mapping \
        == ANON
    heap = ann.annotate(1, addrs["heap_buffer"], addrs["heap_buffer"] + 16 * MiB, 0)
    assert heap.label() == "[heap]" and heap.main().image is None


def test_shared_library_through_program_headers(tmp_path, hotcold):
    p, _, _ = hotcold
    ann = annotator_of(tmp_path, p.pid)
    libc = next(m for m in read_maps(p.pid) if "libc" in m.path and "x" in m.perms)
    a = ann.annotate(1, libc.start, libc.start + 64 * 4096, 0)
    part = a.main()
    assert part.image == libc.path and part.file_offset == libc.offset
    assert part.sections[0][0] == ".text"
    assert part.symbols  # exported functions at least


def test_range_over_a_gap_and_mappings(tmp_path, hotcold):
    p, addrs, _ = hotcold
    ann = annotator_of(tmp_path, p.pid)
    maps = read_maps(p.pid)
    heap = next(m for m in maps if m.path == "[heap]")
    before = max((m for m in maps if m.end <= heap.start), key=lambda m: m.end)
    a = ann.annotate(1, before.end - 4096, heap.start + 4096, 0)
    kinds = [x.mapping for x in a.parts]
    assert (UNMAPPED in kinds) == (before.end < heap.start)  # a gap shows, none is made up
    assert kinds[-1] == "[heap]" and "(+" in a.label()
    assert ann.annotate(2, 0, 4096, 0) is None  # no maps of that target


def test_stripped_binary_names_sections_with_a_note(tmp_path):
    binary = compile_hotcold(tmp_path / "hotcold", "-s")
    p, addrs = start(binary)
    try:
        ann = annotator_of(tmp_path, p.pid)
        a = ann.annotate(1, addrs["hot_array"], addrs["hot_array"] + 64 * MiB, 0)
    finally:
        p.kill()
        p.wait()
    assert a.main().sections[0][0] == ".bss"
    assert not any(s == "hot_array" for s, _ in a.main().symbols)
    assert any("stripped" in n for n in a.notes())


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_changed_files_degrade_to_the_mapping(tmp_path, hotcold, change):
    p, addrs, binary = hotcold
    record = tmp_path / "damon.data"
    write_sidecar(record, p.pid)
    binary.unlink()
    if change == "replaced":
        compile_hotcold(binary, "-DUNUSED=1")  # same path, another inode
    ann = Annotator(read_meta(str(record)))
    a = ann.annotate(1, addrs["main"], addrs["main"] + 16, 0)
    assert a.main().mapping == str(binary) and a.main().image is None
    assert a.label() == "hotcold"
    assert a.notes() == ["file replaced since the recording" if change == "replaced"
                         else "file not readable now (No such file or directory)"]


def test_file_mapping_of_a_data_file(tmp_path):
    data = tmp_path / "model.bin"
    data.write_bytes(os.urandom(16 * 4096))
    code = (
        "import mmap, ctypes, sys, time\n"
        f"f = open({str(data)!r}, 'rb')\n"
        "m = mmap.mmap(f.fileno(), 8 * 4096, prot=mmap.PROT_READ, offset=4 * 4096)\n"
        "buf = (ctypes.c_char * 1).from_buffer_copy(m[:1])\n"
        "import numpy as np\n"
        "a = np.frombuffer(m, dtype=np.uint8)\n"
        "print(a.__array_interface__['data'][0], flush=True)\n"
        "time.sleep(30)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        addr = int(p.stdout.readline())
        ann = annotator_of(tmp_path, p.pid)
    finally:
        p.kill()
        p.wait()
    a = ann.annotate(1, addr + 4096, addr + 3 * 4096, 0)
    part = a.main()
    assert part.mapping == str(data) and part.file_offset == 5 * 4096
    assert part.image is None and not a.notes() and a.label() == "model.bin"
    assert mmap.PAGESIZE == 4096


def test_maps_over_time_and_old_sidecars():
    msgs = [
        {"type": "maps", "time_ns": 100, "target_id": 7, "maps": [[0x1000, 0x3000, "rw-p", 0, ""]]},
        {"type": "maps", "time_ns": 200, "target_id": 7,
         "maps": [[0x1000, 0x2000, "rw-p", 0, "[heap]"]]},
    ]
    ann = Annotator(msgs)
    assert ann.annotate(7, 0x1000, 0x3000, 50).label() == ANON  # before the first: the first
    assert ann.annotate(7, 0x1000, 0x3000, 150).parts[0].size == 0x2000
    later = ann.annotate(7, 0x1000, 0x3000, 250)
    assert [x.mapping for x in later.parts] == ["[heap]", UNMAPPED]
    assert Annotator(None).annotate(7, 0, 1, 0) is None
    assert list(ann.boundaries(7)) == [0x1000, 0x2000, 0x3000]


def test_unreadable_elf_files(tmp_path, hotcold):
    from damo.linux.elf import ElfFile

    _, _, binary = hotcold
    cut = tmp_path / "cut"
    cut.write_bytes(binary.read_bytes()[:200])
    thirty_two = tmp_path / "elf32"
    thirty_two.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(60))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for path, message in ((cut, "corrupt ELF"), (thirty_two, "not a 64-bit little-endian"),
                          (empty, "empty file")):
        with pytest.raises(ValueError, match=message):
            ElfFile(str(path))
    # Through a sidecar: the mapping is named, the reason noted.
    ann = Annotator([{"type": "maps", "time_ns": 0, "target_id": 1,
                      "maps": [[0x1000, 0x2000, "r-xp", 0, str(cut)]]}])
    a = ann.annotate(1, 0x1000, 0x2000, 0)
    assert a.label() == "cut" and a.notes() == ["corrupt ELF headers"]
