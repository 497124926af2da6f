"""Kernel glue: /proc/PID/maps, syscalls, direct-map discovery, preflight checks."""

from __future__ import annotations

import mmap
import os
import subprocess

import numpy as np
import pytest
from conftest import need_bpf

from damo.errors import PlatformError, TargetError
from damo.linux import direct_map, maps, preflight, syscalls

MAPS = """\
55d0c6f8a000-55d0c6f8c000 r--p 00000000 fe:01 1234 /usr/bin/cat
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
7f0000100000-7f0000200000 r-xp 00002000 fe:01 99 /tmp/with space/lib.so (deleted)
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
"""


def test_parse_maps():
    ms = maps.parse_maps(MAPS)
    assert [m.start for m in ms] == [0x55D0C6F8A000, 0x7F0000000000, 0x7F0000100000,
                                     0x7FFC00000000]
    assert ms[0].path == "/usr/bin/cat" and ms[0].inode == 1234 and ms[0].perms == "r--p"
    assert ms[1].path == "" and ms[1].size == 0x21000
    assert ms[2].path == "/tmp/with space/lib.so (deleted)" and ms[2].offset == 0x2000
    assert ms[3].path == "[stack]"
    with pytest.raises(ValueError):
        maps.parse_maps("garbage\n")


def test_read_maps_of_self_sees_a_new_mapping():
    m = mmap.mmap(-1, 5 * 4096)
    try:
        import ctypes

        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        found = [x for x in maps.read_maps(os.getpid()) if x.start <= addr < x.end]
        assert len(found) == 1 and found[0].perms.startswith("rw")
    finally:
        del addr
        try:
            m.close()
        except BufferError:
            pass


def test_read_maps_of_missing_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    with pytest.raises(TargetError, match=f"process {p.pid} does not exist"):
        maps.read_maps(p.pid)


def test_process_madvise_validates_the_iovec_array():
    with pytest.raises(ValueError):
        syscalls.process_madvise(0, np.zeros((3, 3), dtype=np.uint64))
    with pytest.raises(ValueError):
        syscalls.process_madvise(0, np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError):
        syscalls.process_madvise(0, np.zeros((syscalls.IOV_MAX + 1, 2), dtype=np.uint64))


def test_process_madvise_on_self_and_bad_fd():
    buf = mmap.mmap(-1, 4 * 4096)
    buf[0] = 1
    import ctypes

    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    fd = syscalls.pidfd_open(os.getpid())
    try:
        iov = np.array([[addr, 4096], [addr + 4096, 3 * 4096]], dtype=np.uint64)
        try:
            done = syscalls.process_madvise(fd, iov)
        except PermissionError:
            if os.geteuid() == 0:  # root has CAP_SYS_NICE: a refusal is the failure
                raise
            pytest.skip("process_madvise needs CAP_SYS_NICE")
        assert done == 4 * 4096
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        syscalls.process_madvise(-1, iov)


def test_online_nodes_parse(tmp_path):
    f = tmp_path / "online"
    f.write_text("0-2,5\n")
    assert syscalls.online_nodes(f) == [0, 1, 2, 5]
    assert syscalls.online_nodes(tmp_path / "absent") == [0]


def test_drain_lru_batches_on_a_child():
    if os.geteuid() != 0:
        pytest.skip("migrate_pages of another process needs root")
    p = subprocess.Popen(["sleep", "10"])
    try:
        syscalls.drain_lru_batches(p.pid)
    finally:
        p.kill()
        p.wait()
    with pytest.raises(OSError):
        syscalls.drain_lru_batches(p.pid)


# Direct map: a fake kernel memory with text at _text and its alias at base + phys.
TEXT = 0xFFFFFFFF81000000
PHYS = 0x1000000
RANGES = [(0, 0x3FFFFFFFF, "System RAM"), (PHYS, PHYS + 0xFFFFF, "Kernel code")]


def fake_reader(base: int):
    code = bytes(range(256))

    def read(addr: int, n: int) -> bytes | None:
        if addr in (TEXT, base + PHYS):
            return code[:n]
        return None

    return read


def test_discover_default_base():
    base = 0xFFFF888000000000
    assert direct_map.discover(fake_reader(base), [], TEXT, RANGES) == base


def test_discover_randomized_base_from_a_known_pointer():
    base = 0xFFFF9A4BC0000000  # 1 GiB aligned, as KASLR places it
    task = base + 0x2_3456_7000  # a direct-map pointer 9 GiB into RAM
    assert direct_map.discover(fake_reader(base), [task], TEXT, RANGES) == base


def test_discover_fails_cleanly():
    with pytest.raises(PlatformError, match="page_offset_base"):
        direct_map.discover(fake_reader(0xFFFF9A4BC0000000), [], TEXT, RANGES)
    with pytest.raises(PlatformError, match="Kernel code"):
        direct_map.discover(fake_reader(0), [], TEXT, RANGES[:1])


def test_discover_on_this_kernel_agrees_with_pagemap():
    # The walker discovers the base, then checks a walk of its own memory
    # against /proc/self/pagemap: a wrong base fails that check, and that failure is what this
    # test exists for, so it fails here. Only a missing bcc is a reason to skip (`need_bpf`).
    need_bpf()
    from damo.sampler.walker import walker

    w = walker()
    assert w.page_offset % (1 << 30) == 0
    assert w.levels in (4, 5)


def test_preflight_checks():
    preflight.check_arch()  # x86-64 machines only run these tests
    with pytest.raises(TargetError, match="process -1 does not exist"):
        preflight.check_pid(-1)
    with pytest.raises(PlatformError, match="CONFIG_DEBUG_INFO_BTF"):
        from pathlib import Path

        preflight.check_btf(Path("/nonexistent/vmlinux"))
    if os.geteuid() == 0:
        preflight.check_root()
    else:
        with pytest.raises(PlatformError, match="root"):
            preflight.check_root()


def test_preflight_tracefs(tmp_path):
    with pytest.raises(PlatformError, match="mount -t tracefs nodev"):
        preflight.check_tracefs(tmp_path, mount=False)
    (tmp_path / "events").mkdir()
    preflight.check_tracefs(tmp_path, mount=False)


def test_child_pids_processes_not_threads():
    """A process with two idle threads, one of which forks `sleep`; its main thread forks
    another.  Its children are the two processes, found through every thread's file, and
    the main thread's file holds only its own.

    The target says when both children run `sleep` (Popen returns once the exec closed
    its pipe, a moment before the exec sets the command name: it waits for that too), so
    nothing here depends on how fast it runs.  Polling from outside instead was flaky
    under load: a child forked but not yet exec'd read "python3".
    """
    import sys

    from damo.linux.children import child_pids, command_name

    code = ("import subprocess, threading, time\n"
            "box, ready = [], threading.Event()\n"
            "def fork():\n"
            "    box.append(subprocess.Popen(['sleep', '30'])); ready.set(); box[0].wait()\n"
            "t = threading.Thread(target=fork)\n"
            "u = threading.Thread(target=time.sleep, args=(30,))\n"
            "t.start(); u.start()\n"
            "m = subprocess.Popen(['sleep', '31'])\n"
            "ready.wait()\n"
            "def comm(pid):\n"
            "    return open(f'/proc/{pid}/comm').read().strip()\n"
            "while comm(m.pid) != 'sleep' or comm(box[0].pid) != 'sleep':\n"
            "    time.sleep(0.001)\n"
            "print(m.pid, box[0].pid, flush=True); time.sleep(30)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    kids: list[int] = []
    try:
        main_child, thread_child = map(int, p.stdout.readline().split())
        kids = [main_child, thread_child]
        assert sorted(child_pids(p.pid)) == sorted(kids)
        assert all(command_name(k) == "sleep" for k in child_pids(p.pid))
        assert child_pids(p.pid, all_threads=False) == [main_child]
    finally:
        p.kill()
        p.wait()
        for k in kids:
            os.kill(k, 9)
    assert child_pids(p.pid) == [] and command_name(p.pid) == ""
