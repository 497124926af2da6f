"""Clearing a file page's Accessed bit leaves its folio active (damo/ops/vaddr/filepages.py).

A real process maps a file MAP_SHARED and reads it with MADV_RANDOM (one page
per fault: order-0 folios, which MADV_COLD deactivates one by one).  Its pages
are made active, touched, then sampled: by the native loop and by the
per-sample Python path, with the file table (restored) and without (MADV_COLD
alone: the control, which shows what the test would see if the restore did
nothing).  The folios' flags come from /proc/kpageflags; the next check must
still read the untouched pages old (damo's reads do not touch the target's
page table) and the touched ones young.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from test_sample_program import lay_out

from damo.sampler import native
from damo.sampler.walker import SAMPLE_AHEAD, SAMPLE_CHECK

PAGE = 4096
NR_PAGES = 64
KPF_REFERENCED, KPF_LRU, KPF_ACTIVE = 2, 5, 6
MS = 1_000_000

CHILD = r"""
import mmap, os, sys
import numpy as np
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ)
m.madvise(mmap.MADV_RANDOM)
a = np.frombuffer(m, dtype=np.uint8)
int(a[::4096].sum())
print(a.ctypes.data, flush=True)
for line in sys.stdin:
    for i in line.split():
        int(a[int(i) * 4096])
    print("ok", flush=True)
"""


class FileChild:
    """A process mapping `path` MAP_SHARED, touching the pages it is told."""

    def __init__(self, path):
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.start = int(self.proc.stdout.readline())

    def touch(self, pages) -> None:
        self.proc.stdin.write(" ".join(map(str, pages)) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def folio_flags(pid: int, addrs) -> list[int]:
    """The kpageflags of the pages mapped at `addrs` in process `pid` (0: not mapped)."""
    out = []
    with open(f"/proc/{pid}/pagemap", "rb") as pm, open("/proc/kpageflags", "rb") as kf:
        for a in addrs:
            pm.seek(a // PAGE * 8)
            e = int.from_bytes(pm.read(8), "little")
            if not e >> 63:
                out.append(0)
                continue
            kf.seek((e & ((1 << 55) - 1)) * 8)
            out.append(int.from_bytes(kf.read(8), "little"))
    return out


def activate(path, offsets) -> None:
    """Make the folios at `offsets` active, as a hot page is: two reads from fresh files."""
    for _ in range(2):
        fd = os.open(path, os.O_RDONLY)
        for off in offsets:
            os.pread(fd, 1, off)
        os.close(fd)


@pytest.fixture
def mapped_file(tmp_path):
    from conftest import need_bpf

    need_bpf()
    assert native.loop() is not None, native.unavailable()
    if not os.access("/proc/kpageflags", os.R_OK):
        pytest.skip("needs /proc/kpageflags (root)")
    path = tmp_path / "mapped.bin"
    with open(path, "wb") as f:
        f.write(os.urandom(NR_PAGES * PAGE))
        f.flush()
        os.fsync(f.fileno())
        # Out of the cache: the child's faults read it back in small folios.
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    from damo.linux.maps import read_maps
    from damo.ops.vaddr.filepages import FilePages
    from damo.sampler import PageSampler

    child = FileChild(path)
    s = PageSampler(child.pid)
    files = FilePages(child.pid)
    files.update(read_maps(child.pid))
    try:
        yield path, child, s, files
    finally:
        files.close()
        s.close()
        child.stop()


def sample_once(path_kind: str, s, files, n: int, restore: bool, draw: bool = True) -> None:
    """Draw and clear (restoring or not: unless `draw`, the last draw stands), 5 ms, check."""
    from damo.sampler.walker import walker

    w = walker()
    if path_kind == "native":
        cfg = np.frombuffer(w._config, dtype=np.uint64).ctypes.data
        target = s.loop_target(0, n) + (files.loop_args() if restore else ())
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        reason, *_ = native.loop().run(cfg, w._loaded.prog_fds["sample"], w.iovecs_addr,
                                       [target], not draw, 0, now + 5 * MS, 5 * MS, now + 5 * MS)
        assert reason == native.R_DONE
        return
    if draw:
        staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, n)
        if staged:
            s.clear_staged(staged, nbytes)
            if restore:
                files.restore(w.iovecs_addr, staged)
    time.sleep(0.005)
    s.sample(SAMPLE_CHECK, 0, n)


@pytest.mark.parametrize("path_kind", ["native", "python"])
@pytest.mark.parametrize("restore", [True, False], ids=["restored", "madv_cold_alone"])
def test_a_cleared_file_page_stays_active_and_reads_old_until_touched(mapped_file, path_kind,
                                                                     restore):
    path, child, s, files = mapped_file
    # The file is in the table (beside the interpreter's and its libraries').
    assert child.start in files.maps[:, 0].tolist()
    # One region per page; fewer pages than a per-CPU LRU batch holds (15),
    # so that MADV_COLD's deactivations all wait in the batch at once.
    pages = list(range(0, NR_PAGES, 8))
    addrs = [child.start + i * PAGE for i in pages]
    n = len(pages)
    # Folios freshly faulted in wait in the faulting CPU's LRU batch, where a
    # read from another CPU cannot activate them: drain first.
    s.drain()
    activate(path, [i * PAGE for i in pages])
    child.touch(pages)
    s.drain()  # the activations reach the LRU lists
    before = folio_flags(child.pid, addrs)
    assert all(f >> KPF_ACTIVE & 1 and f >> KPF_LRU & 1 for f in before), before
    assert s.walk(np.array(addrs, dtype=np.uint64)).young.all()

    r = lay_out([(a, a + PAGE) for a in addrs])
    sample_once(path_kind, s, files, n, restore)
    # Cleared (old now), and damo's reads left the target's entries old: none counted.
    assert not s.walk(np.array(addrs, dtype=np.uint64)).young.any()
    assert r.nr_accesses[:n].tolist() == [0] * n
    s.drain()  # the activations damo queued on its CPU reach the lists
    after = folio_flags(child.pid, addrs)
    # The machine's kdamond (a pageout scheme) may reclaim a page now and then:
    # the pages still mapped are judged.
    mapped = [f for f in after if f]
    assert len(mapped) >= n - 1, [hex(f) for f in after]
    active = [bool(f >> KPF_ACTIVE & 1) for f in mapped]
    if restore:
        assert all(active), [hex(f) for f in after]
        assert files.stats[native.U_RESTORED] == n, files.stats
    else:
        assert not any(active), [hex(f) for f in after]  # what MADV_COLD alone does

    # Touched since (one-page regions: the same pages are drawn), half of them
    # are counted, the others still not.
    lay_out([(a, a + PAGE) for a in addrs])
    child.touch(pages[: n // 2])
    sample_once(path_kind, s, files, n, restore, draw=False)
    counts = r.nr_accesses[:n].tolist()
    assert counts[n // 2:] == [0] * (n - n // 2), counts
    assert sum(counts[: n // 2]) >= n // 2 - 1, counts


def test_only_files_whose_pages_stay_theirs_are_in_the_table(tmp_path):
    from damo.linux.maps import Mapping
    from damo.ops.vaddr.filepages import _restorable

    def m(perms, path="/x", inode=7):
        return Mapping(0x1000, 0x2000, perms, 0, "fd:00", inode, path)

    assert _restorable(m("rw-s")) and _restorable(m("r--p")) and _restorable(m("r-xp"))
    assert not _restorable(m("rw-p"))  # written pages are anonymous copies
    assert not _restorable(m("rw-p", "", 0)) and not _restorable(m("r--p", "[vdso]", 0))
