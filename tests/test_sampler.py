"""The BPF page sampler against real child processes (needs root and bcc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from damo.errors import TargetError
from tests.conftest import need_bpf

PAGE = 4096
HUGE = 2 << 20

# A target: maps `pages` pages at a 2 MiB-aligned address (optionally asking for
# transparent huge pages), writes every other page, prints the address, then
# obeys commands on stdin. "fork" makes a child that shares every page (copy on
# write), so each page is mapped by two processes.
CHILD = r"""
import ctypes, mmap, os, sys, time
pages, thp = int(sys.argv[1]), sys.argv[2] == "thp"
m = mmap.mmap(-1, pages * 4096 + (2 << 20), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
off = ((base + (2 << 20) - 1) & ~((2 << 20) - 1)) - base
if thp:
    m.madvise(mmap.MADV_HUGEPAGE, off, pages * 4096)
for i in range(0, pages, 1 if thp else 2):
    m[off + i * 4096] = 1
print(hex(base + off), flush=True)
forked = []
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "touch":
        for i in map(int, cmd[1:]):
            m[off + i * 4096] = 2
    elif cmd[0] == "read":
        for i in map(int, cmd[1:]):
            m[off + i * 4096]
    elif cmd[0] == "fork":
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        forked.append(pid)
    elif cmd[0] == "exit":
        break
    print("ok", flush=True)
for pid in forked:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
"""


class Child:
    def __init__(self, pages: int, thp: bool = False):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(pages), "thp" if thp else "small"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.pid = self.proc.pid
        self.start = int(self.proc.stdout.readline(), 16)
        self.pages = pages

    def addrs(self, idx=None) -> np.ndarray:
        a = np.arange(self.start, self.start + self.pages * PAGE, PAGE, dtype=np.uint64)
        return a if idx is None else a[idx]

    def cmd(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("exit\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def sampler_for():
    need_bpf()
    from damo.sampler import PageSampler

    made = []

    def make(pages: int, thp: bool = False):
        child = Child(pages, thp)
        s = PageSampler(child.pid)
        made.append((child, s))
        return child, s

    yield make
    for child, s in made:
        s.close()
        child.stop()
        if child.proc.poll() is None:  # stop() timed out: end the child we started
            child.proc.kill()
            child.proc.wait()


def pagemap(pid: int, addrs: np.ndarray) -> np.ndarray:
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        out = []
        for a in addrs:
            f.seek(int(a) // PAGE * 8)
            out.append(int.from_bytes(f.read(8), "little"))
    return np.array(out, dtype=np.uint64)


KPF_THP = 22  # /proc/kpageflags (include/uapi/linux/kernel-page-flags.h)


def thp_backed(pid: int, addrs: np.ndarray) -> np.ndarray:
    """Which addresses the kernel backs with a transparent huge page, from pagemap's frame
    numbers and kpageflags (root): known without the walker under test."""
    out = []
    with open("/proc/kpageflags", "rb") as f:
        for e in pagemap(pid, addrs).tolist():
            pfn = e & ((1 << 55) - 1)
            if not e >> 63 or not pfn:
                out.append(False)
                continue
            f.seek(pfn * 8)
            out.append(bool(int.from_bytes(f.read(8), "little") >> KPF_THP & 1))
    return np.array(out, dtype=bool)


def need_thp(pid: int, addrs: np.ndarray, every: bool = True) -> np.ndarray:
    """The addresses backed by huge pages; a skip (saying why) when the kernel allocated
    none (or not all, `every`): THP off or memory too fragmented, not the walker's fault."""
    backed = thp_backed(pid, addrs)
    if not (backed.all() if every else backed.any()):
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
        pytest.skip(f"the kernel backed {int(backed.sum())} of {len(addrs)} pages with huge "
                    f"pages (THP {mode.read_text().strip() if mode.exists() else 'absent'})")
    return backed


def test_walk_present_matches_pagemap(sampler_for):
    child, s = sampler_for(64)
    st = s.walk(child.addrs())
    expect_present = np.arange(64) % 2 == 0
    assert (st.present == expect_present).all()
    pm = pagemap(child.pid, child.addrs())
    assert (((pm >> np.uint64(63)) & np.uint64(1)) == st.present).all()
    pfn = pm & np.uint64((1 << 55) - 1)
    assert (st.pfn[st.present] == pfn[st.present]).all()
    assert (st.leaf_size[st.present] == PAGE).all() and (st.leaf_size[~st.present] == 0).all()
    assert not st.young[~st.present].any()


def test_clear_then_retouch_sets_young_again(sampler_for):
    child, s = sampler_for(64)
    addrs = child.addrs()
    st = s.walk(addrs)
    uncleared = s.clear_young(addrs, st.leaf_size)
    assert not uncleared.any()
    assert not s.walk(addrs).young.any()
    child.cmd("touch 0 2 10 20")
    young = s.walk(addrs).young
    assert set(np.flatnonzero(young)) == {0, 2, 10, 20}


def test_fresh_pages_clear_despite_lru_batches(sampler_for):
    # Pages faulted in just now sit in per-CPU LRU batches; clearing must still work.
    child, s = sampler_for(16)
    child.cmd("touch " + " ".join(str(i) for i in range(1, 16, 2)))
    addrs = child.addrs()
    st = s.walk(addrs)
    assert st.present.all()
    assert not s.clear_young(addrs, st.leaf_size).any()
    assert not s.walk(addrs).young.any()


def test_more_than_iov_max(sampler_for):
    child, s = sampler_for(3000)
    addrs = child.addrs()
    st = s.walk(addrs)
    assert st.present.sum() == 1500
    assert not s.clear_young(addrs, st.leaf_size).any()
    assert not s.walk(addrs).young.any()


def test_unmapped_range_does_not_stop_the_batch(sampler_for):
    # The kernel stops a vector at a range it cannot advise; the rest must still clear.
    child, s = sampler_for(8)
    addrs = child.addrs()
    st = s.walk(addrs)
    hole = np.array([child.start - 64 * HUGE], dtype=np.uint64)  # nothing mapped there
    mixed = np.concatenate([addrs[:4], hole, addrs[4:]])
    sizes = np.concatenate([st.leaf_size[:4], [PAGE], st.leaf_size[4:]]).astype(np.uint64)
    assert not s.clear_young(mixed, sizes).any()
    assert not s.walk(addrs).young.any()


def test_shared_pages_reported_uncleared(sampler_for):
    child, s = sampler_for(8)
    child.cmd("fork")  # pages 0, 2, 4, 6 now have a second mapping (copy on write)
    child.cmd("read 0 2 4 6")  # young again, still shared (a read does not copy)
    child.cmd("touch 4")  # written: copied, private again
    addrs = child.addrs([0, 2, 4, 6])
    pm = pagemap(child.pid, addrs)
    exclusive = ((pm >> np.uint64(56)) & np.uint64(1)).astype(bool)
    assert exclusive.tolist() == [False, False, True, False]  # independent view of sharing
    st = s.walk(addrs)
    assert st.young.all()
    uncleared = s.clear_young(addrs, st.leaf_size)
    assert uncleared.tolist() == [True, True, False, True]
    assert s.walk(addrs).young.tolist() == [True, True, False, True]


def test_thp_cleared_whole_not_split(sampler_for):
    child, s = sampler_for(1024, thp=True)  # two 2 MiB extents
    addrs = child.addrs()
    st = s.walk(addrs)
    huge = need_thp(child.pid, addrs, every=False)
    assert ((st.leaf_size == HUGE) == huge).all()  # the walk sees what the kernel allocated
    pick = np.flatnonzero(huge)[[3, -5]]  # one address inside each huge page
    assert not s.clear_young(addrs[pick], st.leaf_size[pick]).any()
    after = s.walk(addrs)
    assert (after.leaf_size[huge] == HUGE).all(), "a huge page was split"
    assert not after.young[huge].any()
    child.cmd(f"touch {pick[0] + 1}")
    assert s.walk(addrs[pick]).young.tolist() == [True, False]


def test_partial_thp_advice_would_split(sampler_for):
    # The control for the test above: advising 4 KiB inside a huge page splits it.
    child, s = sampler_for(512, thp=True)
    addrs = child.addrs()
    need_thp(child.pid, addrs)
    assert (s.walk(addrs).leaf_size == HUGE).all()
    s.clear_young(addrs[[7]], np.array([PAGE], dtype=np.uint64))
    assert (s.walk(addrs).leaf_size == PAGE).any()


def test_target_exit_is_target_gone(sampler_for):
    from damo.sampler import TargetGone

    child, s = sampler_for(8)
    addrs = child.addrs()
    assert s.alive()
    child.stop()
    assert not s.alive()
    with pytest.raises(TargetGone):
        s.walk(addrs)
    with pytest.raises(TargetGone):
        s.clear_young(addrs, np.full(len(addrs), PAGE, dtype=np.uint64))


def test_mm_kept_alive_after_exit(sampler_for):
    from damo.linux import btf
    from damo.sampler.walker import walker

    child, s = sampler_for(8)
    mm = s.mm()
    child.stop()  # exited and reaped
    b = btf.vmlinux()
    w = walker()
    users = int.from_bytes(w.peek(mm + b.offsetof("mm_struct", "mm_users"), 4), "little")
    count = int.from_bytes(w.peek(mm + b.offsetof("mm_struct", "mm_count"), 4), "little")
    assert users == 0  # the address space is torn down ...
    assert count >= 1  # ... but our open /proc/PID/mem still holds the mm_struct
    assert s.mm() == mm
    leaves, shifts, _ = w.walk(s._mem_fd, child.addrs())
    assert not shifts.any()  # and walking it reads not-present, no crash


def test_missing_pid_and_kernel_thread():
    need_bpf()
    from damo.sampler import PageSampler

    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(TargetError, match="does not exist"):
        PageSampler(dead.pid)
    with pytest.raises(TargetError, match="no address space"):
        PageSampler(2)  # kthreadd
