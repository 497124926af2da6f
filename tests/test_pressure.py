"""Memory pressure: what damo's clearing does to file-backed memory, and the relief it gives.

- A young 4 KiB page of a large page-cache folio is advised as its whole
  folio: cleared, and the folio not split (MADV_COLD of a part splits it, and
  a split page-cache folio is unmapped whole).  Checked with kpageflags.
- A region marked REGION_NO_CLEAR has nothing cleared, and its check counts
  the page's bit as it is.
- `Pressure` turns on when memory is short and the target's memory cgroup
  counts file refaults or reclaims at its limit, and off HOLD_NS after the
  last; a cgroup short at the start is relieved until the first check.
  Checked on a fake cgroup tree, and on a real cgroup (root, v1) whose
  process reads a file larger than its limit.
- End to end (root, cgroup v1 memory controller): a target refaulting in a
  small memory cgroup is recorded with file-backed regions spared, and says so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_record_edges import ENV, record_bg, started
from test_sample_program import lay_out, one_region_per_page
from test_sampler import sampler_for  # noqa: F401  (a fixture)
from test_tick_checks import checks  # noqa: F401  (a fixture)

from damo.records.meta import read_meta
from damo.sampler.walker import (
    REGION_FILE,
    REGION_MAY_SHARE,
    REGION_NO_CLEAR,
    SAMPLE_AHEAD,
    SAMPLE_CHECK,
)

PAGE = 4096
KPF_HEAD, KPF_TAIL, KPF_THP = 15, 16, 22

# Maps the file 4 KiB past a 2 MiB boundary, so that no folio of it can be
# mapped by a PMD leaf: their pages are mapped by PTEs, as a page-cache folio
# often is (and as the bench's hot set was when damo split 450 of them a run).
# MAP_SHARED or MAP_PRIVATE (argv[2]).  "part FIRST NR" maps pages [FIRST,
# FIRST + NR) of the file alone elsewhere, privately, reads them and prints
# where: a part of a large folio, as library text maps the end of a segment.
CHILD = r"""
import ctypes, mmap, os, sys
import numpy as np
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
room = libc.mmap(None, size + (4 << 20), 0,  # PROT_NONE
                 mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
at = (room + (2 << 20) - 1) // (2 << 20) * (2 << 20) + 4096
how = mmap.MAP_SHARED if sys.argv[2] == "shared" else mmap.MAP_PRIVATE
addr = libc.mmap(at, size, mmap.PROT_READ, how | 0x10, fd, 0)  # MAP_FIXED
assert addr == at, ctypes.get_errno()
a = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(addr))
int(a[::4096].sum())
print(addr, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "part":
        first, nr = int(cmd[1]), int(cmd[2])
        part = libc.mmap(None, nr * 4096, mmap.PROT_READ, mmap.MAP_PRIVATE, fd, first * 4096)
        int(np.ctypeslib.as_array((ctypes.c_uint8 * (nr * 4096)).from_address(part))[::4096].sum())
        print(part, flush=True)
    elif cmd[0] == "read":  # every page of the mapping read again: young
        int(a[::4096].sum())
        print(0, flush=True)
"""


def kpageflags(pid: int, addrs) -> list[int]:
    """The kpageflags of the pages mapped at `addrs` in `pid` (0: not mapped)."""
    out = []
    with open(f"/proc/{pid}/pagemap", "rb") as pm, open("/proc/kpageflags", "rb") as kf:
        for a in addrs:
            pm.seek(int(a) // PAGE * 8)
            e = int.from_bytes(pm.read(8), "little")
            if not e >> 63:
                out.append(0)
                continue
            kf.seek((e & ((1 << 55) - 1)) * 8)
            out.append(int.from_bytes(kf.read(8), "little"))
    return out


def large_folios(flags: list[int]) -> list[tuple[int, int]]:
    """[head, end) of each large folio in a row of kpageflags, in pages."""
    folios: list[list[int]] = []
    for i, f in enumerate(flags):
        if f >> KPF_HEAD & 1:
            folios.append([i, i + 1])
        elif f >> KPF_TAIL & 1 and folios and folios[-1][1] == i:
            folios[-1][1] = i + 1
    return [(h, e) for h, e in folios]


def stage_one(s, addr: int, flags: int) -> tuple[int, int, list[int]]:
    """The sample program's staging of the page at `addr`, one region of one page
    marked `flags`: (iovecs staged, bytes, the first iovec)."""
    from damo.sampler.walker import walker

    r = lay_out([(addr, addr + PAGE)])
    r.flags[0] = flags
    try:
        staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 1)
    finally:
        r.flags[0] = 0
    assert r.iov_region[0] == 0
    return staged, nbytes, walker().iovecs[0].tolist()


def folio_child(tmp_path: Path, how: str) -> tuple[subprocess.Popen, np.ndarray]:
    """CHILD over an 8 MiB file read back into the page cache (`how`: "shared" or
    "private"), and the addresses of its pages."""
    from conftest import need_bpf

    need_bpf()
    if not os.access("/proc/kpageflags", os.R_OK):
        pytest.skip("needs /proc/kpageflags (root)")
    from damo.sampler.walker import walker

    if not walker().vmemmap:
        pytest.fail("the struct page array was not found: large folios would be split")
    path = tmp_path / "cached.bin"
    with open(path, "wb") as f:
        f.write(os.urandom(8 << 20))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    with open(path, "rb") as f:  # read back: readahead makes folios of several sizes
        while f.read(1 << 20):
            pass
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), how],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    start = int(child.stdout.readline())
    return child, np.arange(start, start + (8 << 20), PAGE, dtype=np.uint64)


def whole_folios(child: subprocess.Popen, addrs: np.ndarray) -> list[tuple[int, int]]:
    """The child's large folios of 4 pages or more within a page table, largest first
    ([head, end) in pages of `addrs`): MADV_COLD advises a page table's entries at
    a time, and a folio it meets in part it splits, whole range or not."""
    folios = [(h, e) for h, e in large_folios(kpageflags(child.pid, addrs))
              if int(addrs[h]) >> 21 == int(addrs[e - 1]) >> 21 and e - h >= 4]
    if not folios:
        pytest.skip("the page cache holds the file in folios of 2 pages at most here")
    return sorted(folios, key=lambda f: f[0] - f[1])


def read_again(child: subprocess.Popen) -> None:
    """The child reads its mapping again: every entry young (since its first read the
    machine's kdamond, which clears the bits of every mapping of a folio it samples,
    may have aged some)."""
    child.stdin.write("read\n")
    child.stdin.flush()
    child.stdout.readline()


@pytest.mark.parametrize("how", ["shared", "private"])
def test_a_page_of_a_large_folio_is_advised_whole_and_not_split(tmp_path, how):
    """Over a file mapping, shared or private; a mapping of a part of a large folio
    (a file mapped from an offset within it) advises the page alone: the folio's
    range would reach past the mapping."""
    from damo.sampler import PageSampler

    child, addrs = folio_child(tmp_path, how)
    try:
        s = PageSampler(child.pid)
        head, end = whole_folios(child, addrs)[0]
        s.drain()
        # Its middle pages mapped alone elsewhere: a part of the folio.
        child.stdin.write(f"part {head + 1} {end - head - 2}\n")
        child.stdin.flush()
        part = int(child.stdout.readline())
        assert kpageflags(child.pid, [part])[0] >> KPF_TAIL & 1
        assert stage_one(s, part, REGION_FILE) == (1, PAGE, [part, PAGE])
        s.clear_staged(1, PAGE)  # (splits the folio: only the part it was mapped for)
        # The rest of the file: another large folio, mapped whole.
        head, end = whole_folios(child, addrs)[0]
        i = head + (end - head) // 2  # a tail page: its head and size are found from it
        read_again(child)
        st = s.walk(addrs[head:end])
        assert st.young.all() and (st.leaf_size == PAGE).all()  # mapped by PTEs
        # As the vaddr operations mark a region of a file mapping.
        flags = REGION_FILE | (REGION_MAY_SHARE if how == "shared" else 0)
        assert stage_one(s, int(addrs[i]), flags) == \
            (1, (end - head) * PAGE, [int(addrs[head]), (end - head) * PAGE])
        s.clear_staged(1, (end - head) * PAGE)
        after = kpageflags(child.pid, addrs[head:end])
        # Still mapped, still one folio; and every entry of it old.
        assert all(f >> KPF_THP & 1 for f in after), [hex(f) for f in after]
        assert not s.walk(addrs[head:end]).young.any()
        s.close()
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("how", ["shared", "private"])
def test_the_kernel_checks_advise_a_large_folio_whole(tmp_path, how, checks):  # noqa: F811
    """--checks kernel: the arm advises the whole large folio of a young page of a
    region marked REGION_FILE, as the sample program does: not split, every entry
    old.  The same arm of a region not so marked advises the page alone, and the
    kernel splits its folio (what the mark is for)."""
    tc, sampler = checks
    child, addrs = folio_child(tmp_path, how)
    try:
        folios = whole_folios(child, addrs)
        if len(folios) < 2:
            pytest.skip("the page cache holds the file in one large folio here")
        (head, end), (head2, end2) = folios[:2]
        read_again(child)
        s = sampler(child.pid)
        assert s.walk(addrs[head:end]).young.all() and s.walk(addrs[head2:end2]).young.all()
        i, i2 = head + (end - head) // 2, head2 + (end2 - head2) // 2  # tail pages
        shared = REGION_MAY_SHARE if how == "shared" else 0
        at = addrs[[i, i2]]
        tc.set_targets([(s, at, at + PAGE, np.array([REGION_FILE | shared, shared]))])
        tc.sample_addrs(0)[:] = at
        tc.start()
        armed = tc.arm(draw=False)
        assert (armed.armed, armed.cleared, armed.uncleared) == (2, 2, 0)
        after = kpageflags(child.pid, addrs[head:end])
        assert all(f >> KPF_THP & 1 for f in after), [hex(f) for f in after]
        assert not s.walk(addrs[head:end]).young.any()
        # The unmarked one: its page advised alone, and the folio split.
        assert not any(f >> KPF_THP & 1 for f in kpageflags(child.pid, addrs[[i2]]))
    finally:
        child.kill()
        child.wait()


def test_a_region_spared_clearing_keeps_its_bit_and_counts_it(sampler_for):  # noqa: F811
    child, s = sampler_for(8)  # pages 0, 2, 4, 6 written
    r = one_region_per_page(child, (0, 2, 4, 6))
    child.cmd("touch 0 2")
    s.drain()
    r.flags[:4] = [REGION_NO_CLEAR, REGION_NO_CLEAR, 0, 0]
    try:
        staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 4)
        s.clear_staged(staged, nbytes) if staged else None
        # Pages 4 and 6 were written at start: young, and cleared; 0 and 2 kept.
        assert staged == 2 and r.iov_region[:2].tolist() == [2, 3]
        assert s.walk(child.addrs([0, 2, 4, 6])).young.tolist() == [True, True, False, False]
        s.sample(SAMPLE_CHECK, 0, 4)
        assert r.nr_accesses[:4].tolist() == [1, 1, 0, 0]
    finally:
        r.flags[:4] = 0


def test_the_kernel_checks_spare_a_region_its_clear_and_count_its_bit(checks):  # noqa: F811
    """--checks kernel: a REGION_NO_CLEAR region's young page is armed uncleared, so
    the tick reads it young (a hit); the other regions' pages are cleared as before."""
    from test_tick_checks import Child as TickChild
    from test_tick_checks import wait_ticks

    from damo.sampler.tick import R_ARMED

    tc, sampler = checks
    child = TickChild(4)  # every page written at start: young
    try:
        s = sampler(child.pid)
        tc.set_targets([(s, child.addrs, child.addrs + PAGE,
                         np.array([REGION_NO_CLEAR, REGION_NO_CLEAR | REGION_MAY_SHARE, 0, 0]))])
        tc.sample_addrs(0)[:] = child.addrs
        tc.start()
        armed = tc.arm(draw=False)
        assert (armed.armed, armed.cleared, armed.uncleared) == (4, 2, 0)
        assert s.walk(child.addrs).young.tolist() == [True, True, False, False]
        wait_ticks(tc, 3)
        hits, nchecks = tc.read()[0]
        assert hits.tolist() == [1, 1, 0, 0] and (nchecks[2:] >= 2).all()
        assert (tc.states(0)[2:] == R_ARMED).all()
    finally:
        child.stop()


def fake_cgroup(tmp_path: Path, refaults: int, used: int = 95) -> Path:
    """A cgroup tree at tmp_path holding this process's memory cgroup's memory.stat."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            d = tmp_path / "memory" / path.lstrip("/")
            break
    else:
        d = tmp_path / Path("/proc/self/cgroup").read_text().split("0::", 1)[1].strip().lstrip("/")
    d.mkdir(parents=True, exist_ok=True)
    (d / "memory.stat").write_text(stat_text(refaults, used))
    return d / "memory.stat"


def stat_text(refaults: int, used: int = 95) -> str:
    """A v1 memory.stat: `used` of a limit of 100 in use."""
    return (f"cache 1\nworkingset_refault_file {refaults}\npgmajfault 3\n"
            f"hierarchical_memory_limit 100\ntotal_cache {used - 5}\ntotal_rss 5\n")


def test_pressure_holds_while_the_cgroup_refaults(tmp_path, monkeypatch):
    from damo.ops.vaddr.pressure import HOLD_NS, MIN_RATE, Pressure

    monkeypatch.delenv("DAMO_PRESSURE_RELIEF", raising=False)
    stat = fake_cgroup(tmp_path, 0)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemAvailable: 500 kB\n")
    p = Pressure(os.getpid(), root=tmp_path, meminfo=meminfo, now_ns=0)
    assert p.stat == stat
    sec = 1_000_000_000
    assert not p.check(0) and not p.check(sec)  # no refault yet
    stat.write_text(stat_text(MIN_RATE // 2))
    assert not p.check(2 * sec)  # refaults, slower than pressure makes them
    stat.write_text(stat_text(MIN_RATE // 2 + MIN_RATE, used=80))
    assert not p.check(3 * sec)  # fast enough, but room under the limit and free memory
    meminfo.write_text("MemTotal: 1000 kB\nMemAvailable: 50 kB\n")
    stat.write_text(stat_text(MIN_RATE // 2 + 2 * MIN_RATE, used=80))
    assert p.check(4 * sec)  # the machine is short of memory
    meminfo.write_text("MemTotal: 1000 kB\nMemAvailable: 500 kB\n")
    stat.write_text(stat_text(MIN_RATE // 2 + 3 * MIN_RATE))
    t = 5 * sec
    assert p.check(t)  # the cgroup at its limit
    assert p.check(t + HOLD_NS - 1)  # held (no refault since)
    assert not p.check(t + HOLD_NS)
    assert p.relieved(t + HOLD_NS) == pytest.approx((t + HOLD_NS - 4 * sec) / 1e9, rel=1e-6)
    monkeypatch.setenv("DAMO_PRESSURE_RELIEF", "0")
    off = Pressure(os.getpid(), root=tmp_path, meminfo=meminfo)
    stat.write_text(stat_text(100_000))
    assert not off.check(t + 2 * HOLD_NS)


def test_pressure_starts_with_reclaim_at_the_limit(tmp_path, monkeypatch):
    from damo.ops.vaddr.pressure import HOLD_NS, Pressure

    monkeypatch.delenv("DAMO_PRESSURE_RELIEF", raising=False)
    stat = fake_cgroup(tmp_path, 0, used=80)
    failcnt = stat.parent / "memory.failcnt"
    failcnt.write_text("7\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemAvailable: 500 kB\n")
    p = Pressure(os.getpid(), root=tmp_path, meminfo=meminfo, now_ns=0)
    assert not p.at_start  # 80 of 100 used: room left
    sec = 1_000_000_000
    failcnt.write_text("9\n")
    assert not p.check(sec)  # reclaimed at the limit, but room now (it freed enough)
    stat.write_text(stat_text(0, used=95))
    assert not p.check(2 * sec)  # at the limit, nothing reclaimed since the last check
    failcnt.write_text("10\n")
    assert p.check(3 * sec)  # at the limit and reclaiming, no refault yet
    assert p.check(3 * sec + HOLD_NS - 1) and not p.check(3 * sec + HOLD_NS)
    # Its start and end, for the sidecar's "relief" messages.
    assert p.changes == [(3 * sec, True), (3 * sec + HOLD_NS, False)]
    # Short at the start: relieved until the first check, which finds no reclaim.
    q = Pressure(os.getpid(), root=tmp_path, meminfo=meminfo, now_ns=3 * sec)
    assert q.at_start
    assert not q.check(4 * sec) and not q.at_start
    assert q.relieved(5 * sec) == 1.0  # from its start to the check
    assert q.changes == [(3 * sec, True), (4 * sec, False)]
    # The first way: refaults alone start it.
    monkeypatch.setenv("DAMO_PRESSURE_RELIEF", "refaults")
    r = Pressure(os.getpid(), root=tmp_path, meminfo=meminfo)
    assert not r.at_start
    failcnt.write_text("20\n")
    assert not r.check(6 * sec)
    # For measuring: relieved from the start, whatever the cgroup does.
    monkeypatch.setenv("DAMO_PRESSURE_RELIEF", "always")
    stat.write_text(stat_text(0, used=10))
    a = Pressure(os.getpid(), root=tmp_path, meminfo=meminfo, now_ns=6 * sec)
    assert a.at_start and a.check(7 * sec) and a.check(7 * sec + 2 * HOLD_NS)
    assert a.changes == [(6 * sec, True)]


def test_no_cgroup_no_pressure(tmp_path):
    from damo.ops.vaddr.pressure import Pressure

    p = Pressure(os.getpid(), root=tmp_path)  # an empty tree: no memory.stat
    assert p.stat is None and not p.check(0)


TARGET = r"""
import mmap, os, sys, time
import numpy as np
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ)
a = np.frombuffer(m, dtype=np.uint8)
hot, rest = a[: 24 << 20], a[24 << 20 :]
print("ready", flush=True)
if sys.argv[3:] == ["wait"]:  # for a line on stdin first
    sys.stdin.readline()
end = time.monotonic() + float(sys.argv[2])
k = 0
while time.monotonic() < end:
    int(hot[::4096].sum())
    int(rest[k * (8 << 20) : (k + 1) * (8 << 20) : 4096].sum())
    k = (k + 1) % (len(rest) // (8 << 20))
"""


def uncached_file(path: Path, mib: int) -> None:
    """Write `mib` MiB of random bytes to `path`, on disk and out of the page cache: the
    reader's faults bring it in, charged to the reader's cgroup."""
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(mib):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def memory_cgroup(name: str, limit: int) -> Path:
    """A fresh v1 memory cgroup of `limit` bytes (skips where there is none to make)."""
    root = Path("/sys/fs/cgroup/memory")
    if not root.is_dir():
        pytest.skip("needs the cgroup v1 memory controller")
    if os.geteuid() != 0:
        pytest.skip("needs root (a memory cgroup of its own)")
    cg = root / f"{name}-{os.getpid()}"
    cg.mkdir()
    (cg / "memory.limit_in_bytes").write_text(str(limit))
    return cg


def remove_cgroup(cg: Path) -> None:
    (cg / "memory.force_empty").write_text("0")
    for _ in range(50):
        try:
            cg.rmdir()
            return
        except OSError:
            time.sleep(0.1)


READER = r"""
import sys
for line in sys.stdin:  # each line: read the file through once, then say so
    with open(sys.argv[1], "rb") as f:
        while f.read(1 << 20):
            pass
    print("read", flush=True)
"""


def test_a_real_cgroup_reclaiming_at_its_limit_is_under_pressure(tmp_path):
    """A process reading a file twice its cgroup's limit: the cgroup reclaims at
    its limit and Pressure says so at the next check; once the reader waits
    (its cache still at the limit, nothing charged) it ends HOLD_NS later."""
    from damo.ops.vaddr.pressure import HOLD_NS, Pressure, limit_hits

    cg = memory_cgroup("damo-test-limit", 32 << 20)
    try:
        path = tmp_path / "big.bin"
        uncached_file(path, 64)
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(path)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
            preexec_fn=lambda: (cg / "cgroup.procs").write_text(str(os.getpid())))

        def read_through() -> None:
            reader.stdin.write("go\n")
            reader.stdin.flush()
            assert reader.stdout.readline() == "read\n"

        try:
            read_through()  # the cache at the limit
            p = Pressure(reader.pid, now_ns=0)
            assert p.stat == cg / "memory.stat"
            assert p.at_start  # 32 MiB of 32 MiB in use
            hits = limit_hits(p.stat)
            sec = 1_000_000_000
            assert not p.check(sec)  # nothing read since: no reclaim
            read_through()
            assert limit_hits(p.stat) > hits, "64 MiB read in a 32 MiB cgroup: no reclaim"
            assert p.check(2 * sec)
            assert p.check(2 * sec + HOLD_NS - 1) and not p.check(2 * sec + HOLD_NS)
        finally:
            reader.kill()
            reader.wait()
    finally:
        remove_cgroup(cg)


@pytest.mark.parametrize("mode", ["native", "kernel"])
def test_relief_starts_within_an_aggregation_when_reclaim_starts(tmp_path, mode):
    """The target's cgroup has room when damo starts, and reaches its limit within an
    aggregation of 3 s that a record of 2 s never ends: the relief is seen between
    two spans of the native loop (pressure.WATCH_NS), or at a look between the tick's
    checks (`--checks kernel`), not at an aggregation's end."""
    from conftest import need_bpf

    need_bpf()
    # Room for the interpreter, numpy and the hot set (not short at the start).
    cg = memory_cgroup("damo-test-watch", 80 << 20)
    path = Path("/var/tmp") / f"damo-test-watch-{os.getpid()}.bin"
    try:
        uncached_file(path, 128)
        target = subprocess.Popen(
            [sys.executable, "-c", TARGET, str(path), "8", "wait"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=ENV,
            preexec_fn=lambda: (cg / "cgroup.procs").write_text(str(os.getpid())))
        try:
            assert target.stdout.readline().strip() == "ready"
            data = tmp_path / "damon.data"
            p = record_bg(str(target.pid), "-a", "3000000", "--duration", "2",
                          *(["--checks", "kernel"] if mode == "kernel" else []), cwd=tmp_path)
            try:
                started(data, p)
                target.stdin.write("go\n")
                target.stdin.flush()
                _, err = p.communicate(timeout=60)
            finally:
                p.kill()
        finally:
            target.kill()
            target.wait()
        assert p.returncode == 0, err
        assert "sampling checks unavailable" not in err, err  # the tick ran
        # The record's end checks too, and may find the pressure then (0.0 s): the
        # relief must have held for most of the record (the cgroup fills in ~0.2 s).
        relieved = re.search(r"under memory pressure for ([0-9.]+) s", err)
        assert relieved and float(relieved.group(1)) >= 1.0, err
        # The sidecar says when: one start, within the record's first second.
        messages = read_meta(str(data))
        start = next(m["time_ns"] for m in messages if m["type"] == "start")
        relief = [m for m in messages if m["type"] == "relief"]
        assert [(m["target_id"], m["on"]) for m in relief[:1]] == [(target.pid, True)], relief
        assert 0 <= relief[0]["time_ns"] - start <= 1_000_000_000, (relief, start)
    finally:
        path.unlink(missing_ok=True)
        remove_cgroup(cg)


def test_a_target_refaulting_in_its_cgroup_is_recorded_with_relief(tmp_path):
    from conftest import need_bpf

    need_bpf()
    cg = memory_cgroup("damo-test-pressure", 48 << 20)
    path = Path("/var/tmp") / f"damo-test-pressure-{os.getpid()}.bin"
    try:
        uncached_file(path, 96)
        target = subprocess.Popen(
            [sys.executable, "-c", TARGET, str(path), "8"], stdout=subprocess.PIPE, text=True,
            env=ENV, preexec_fn=lambda: (cg / "cgroup.procs").write_text(str(os.getpid())))
        assert target.stdout.readline().strip() == "ready"
        data = tmp_path / "damon.data"
        p = record_bg(str(target.pid), cwd=tmp_path)
        try:
            started(data, p)
            _, err = p.communicate(timeout=60)
        finally:
            p.kill()
            target.kill()
            target.wait()
        assert p.returncode == 0, err
        assert "under memory pressure for" in err, err
    finally:
        path.unlink(missing_ok=True)
        remove_cgroup(cg)
