"""The BPF sample program: the vaddr step's draw, check, staging and verification.

Real processes (tests/test_sampler.py's Child), the regions laid out in the
walker's region arrays by hand, as the vaddr operations do.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_sampler import HUGE, PAGE, need_thp, sampler_for  # noqa: F401  (a fixture)

from damo.sampler.walker import SAMPLE_AHEAD, SAMPLE_CHECK


def lay_out(bounds: list[tuple[int, int]]):
    """Regions [start, end) at the start of the region arrays, counts zero."""
    from damo.sampler.walker import walker

    r = walker().regions
    n = len(bounds)
    r.start[:n] = [b[0] for b in bounds]
    r.end[:n] = [b[1] for b in bounds]
    r.nr_accesses[:n] = 0
    r.nr_checks[:n] = 0
    r.uncleared[:n] = 0
    return r


def one_region_per_page(child, pages):
    return lay_out([(child.start + i * PAGE, child.start + (i + 1) * PAGE) for i in pages])


def test_draw_is_uniform_over_the_pages_and_inside_each_region(sampler_for):  # noqa: F811
    child, s = sampler_for(64)
    lo, mid, hi = child.start, child.start + 10 * PAGE, child.start + 64 * PAGE
    r = lay_out([(lo, mid), (mid + 5, hi - 3)])
    draws = []
    for _ in range(3000):
        s.sample(SAMPLE_AHEAD, 0, 2)
        draws.append(r.sampling_addr[:2].copy())
    d = np.array(draws)
    assert ((d[:, 0] >= lo) & (d[:, 0] < mid)).all()
    assert ((d[:, 1] >= mid + 5) & (d[:, 1] < hi - 3)).all()
    counts = np.bincount((d[:, 0] - lo) // PAGE, minlength=10)
    assert len(counts) == 10
    # chi-squared, 9 degrees of freedom: 39.3 is the 0.001 % tail (the kernel's
    # random numbers are not seeded, so a rarer tail keeps CI from failing by chance)
    expected = len(d) / 10
    assert ((counts - expected) ** 2 / expected).sum() < 39.3
    assert len(np.unique(d[:, 0] % PAGE)) > 100  # byte addresses, as damon_rand draws


def test_young_pages_are_staged_cleared_and_counted_when_touched(sampler_for):  # noqa: F811
    child, s = sampler_for(8)  # pages 0, 2, 4, 6 written, the odd ones never mapped
    r = one_region_per_page(child, range(8))
    child.cmd("touch 0 2 4 6")
    s.drain()  # faulted in at start: let them reach the LRU lists, where they can be cleared
    staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 8)
    # Only present, young pages need clearing: whole pages, each region's own.
    assert staged == 4 and nbytes == 4 * PAGE
    from damo.sampler.walker import walker

    iov = walker().iovecs[:staged]
    assert sorted(iov[:, 0].tolist()) == [child.start + i * PAGE for i in (0, 2, 4, 6)]
    assert (iov[:, 1] == PAGE).all()
    assert sorted(r.iov_region[:staged].tolist()) == [0, 2, 4, 6]
    s.clear_staged(staged, nbytes)
    assert not r.uncleared[:8].any()
    assert not s.walk(r.sampling_addr[:8].astype(np.uint64)).young.any()

    child.cmd("touch 2 6")
    _, _, max_nr = s.sample(SAMPLE_CHECK, 0, 8)
    assert r.nr_accesses[:8].tolist() == [0, 0, 1, 0, 0, 0, 1, 0]
    assert max_nr == 1
    # A check alone draws nothing new.
    assert ((r.sampling_addr[:8] - child.start) // PAGE).tolist() == list(range(8))


def test_shared_pages_are_marked_uncleared_and_not_advised_again(sampler_for):  # noqa: F811
    child, s = sampler_for(8)
    child.cmd("fork")  # pages 0, 2, 4, 6 mapped twice (copy on write)
    child.cmd("read 0 2 4 6")
    child.cmd("touch 4")  # copied: private again
    s.drain()  # the copy is a fresh page: let it reach the LRU lists, where it can be cleared
    r = one_region_per_page(child, (0, 2, 4, 6))
    staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 4)
    assert staged == 4
    s.clear_staged(staged, nbytes)
    assert r.uncleared[:4].tolist() == [1, 1, 0, 1]
    # Not counted: their bits are no evidence of access.
    s.sample(SAMPLE_CHECK, 0, 4)
    assert not r.nr_accesses[:4].any()
    # Known shared now: the next draw does not advise them again.
    child.cmd("touch 4")
    staged, _, _ = s.sample(SAMPLE_AHEAD, 0, 4)
    assert staged == 1 and r.iov_region[0] == 2
    assert r.uncleared[:4].tolist() == [1, 1, 0, 1]
    # Until the mappings change (they may have been unmapped or copied since).
    s.forget_shared()
    staged, _, _ = s.sample(SAMPLE_AHEAD, 0, 4)
    assert staged == 4


def test_huge_pages_are_staged_whole(sampler_for):  # noqa: F811
    child, s = sampler_for(512, thp=True)
    need_thp(child.pid, child.addrs())
    assert (s.walk(child.addrs()).leaf_size == HUGE).all()  # as the kernel allocated them
    child.cmd("touch 100")
    r = lay_out([(child.start + PAGE, child.start + 2 * PAGE)])
    staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 1)
    from damo.sampler.walker import walker

    assert staged == 1 and nbytes == HUGE
    assert walker().iovecs[0].tolist() == [child.start, HUGE]
    s.clear_staged(staged, nbytes)
    after = s.walk(child.addrs())
    assert (after.leaf_size == HUGE).all(), "a huge page was split"
    assert not after.young.any() and not r.uncleared[0]


def test_owner_cpu_is_where_the_target_last_ran(sampler_for):  # noqa: F811
    from damo.sampler.walker import walker

    child, s = sampler_for(8)  # sleeping on its stdin: its CPU stays put
    lay_out([(child.start, child.start + PAGE)])
    s.sample(SAMPLE_AHEAD, 0, 1)
    with open(f"/proc/{child.pid}/stat") as f:
        processor = int(f.read().rsplit(")", 1)[1].split()[36])
    assert walker().owner_cpu == processor


def test_cpu_follower_moves_within_the_original_affinity():
    from damo.sampler.colocate import CpuFollower

    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("needs two CPUs")
    f = CpuFollower()
    cpu = max(allowed)
    try:
        f.follow(cpu)  # seen once: a passing migration, not followed
        assert os.sched_getaffinity(0) == allowed
        f.follow(cpu)
        assert os.sched_getaffinity(0) == {cpu}
        f.follow(max(allowed) + 1000)  # not allowed: stays
        assert os.sched_getaffinity(0) == {cpu}
    finally:
        f.release()
    assert os.sched_getaffinity(0) == allowed


def test_fresh_pages_are_cleared_after_a_drain(sampler_for):  # noqa: F811
    child, s = sampler_for(8)
    child.cmd("touch 1 3 5 7")  # faulted in just now: maybe still in a per-CPU LRU batch
    r = one_region_per_page(child, (1, 3, 5, 7))
    staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 4)
    assert staged == 4
    s.clear_staged(staged, nbytes)
    # Mapped by this process alone: never marked uncleared, whatever MADV_COLD did.
    assert not r.uncleared[:4].any()
    s.drain()
    staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 4)
    s.clear_staged(staged, nbytes)
    assert not s.walk(r.sampling_addr[:4].astype(np.uint64)).young.any()


def test_only_pages_that_may_be_shared_are_verified(sampler_for):  # noqa: F811
    from damo.sampler.walker import REGION_MAY_SHARE, walker

    child, s = sampler_for(8)
    child.cmd("fork")  # pages 0, 2, 4, 6: read-only entries now (copy on write)
    child.cmd("touch 2")  # copied: a writable entry again
    s.drain()
    r = one_region_per_page(child, (0, 2))
    staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 2)
    w = walker()
    assert w.regions.iov_region[:staged].tolist() == [0, 1]
    s.clear_staged(staged, nbytes)
    assert r.uncleared[:2].tolist() == [1, 0]
    # Staged, not advised (so still young): a writable entry of a private
    # mapping is not looked at again ...
    child.cmd("touch 2")
    assert s.sample(SAMPLE_AHEAD, 1, 1)[0] == 1
    assert w.verify(s._mem_fd) == 0
    # ... unless the caller says the region may hold MAP_SHARED memory.
    r.flags[1] = REGION_MAY_SHARE
    try:
        assert s.sample(SAMPLE_AHEAD, 1, 1)[0] == 1
        assert w.verify(s._mem_fd) == 1
        assert r.uncleared[1] == 1
    finally:
        r.flags[1] = 0


def test_regions_overlapping_a_shared_mapping():
    from damo.ops.vaddr import overlaps

    ranges = np.array([[100, 200], [300, 400]], dtype=np.int64)
    start = np.array([0, 50, 150, 200, 250, 399, 400], dtype=np.int64)
    end = np.array([50, 101, 160, 300, 301, 500, 900], dtype=np.int64)
    assert overlaps(start, end, ranges).tolist() == [False, True, True, False, True, True, False]
    assert not overlaps(start, end, ranges[:0]).any()


def test_more_young_pages_than_one_call_takes(sampler_for):  # noqa: F811
    from damo.linux.syscalls import IOV_MAX

    child, s = sampler_for(3000)  # 1500 pages written
    s.drain()
    r = one_region_per_page(child, range(0, 3000, 2))
    child.cmd("touch " + " ".join(str(i) for i in range(0, 3000, 2)))
    staged, nbytes, _ = s.sample(SAMPLE_AHEAD, 0, 1500)
    # The machine's own kdamond (paddr) may have cleared a few of the bits
    # since the touch (kernel-facts.md): those pages need no advice.
    assert 1490 <= staged <= 1500 and staged > IOV_MAX
    s.clear_staged(staged, nbytes)
    assert not r.uncleared[:1500].any()
    assert not s.walk(r.sampling_addr[:1500].astype(np.uint64)).young.any()


def test_sampling_an_exited_process_is_target_gone(sampler_for):  # noqa: F811
    from damo.sampler import TargetGone
    from damo.sampler.walker import walker

    child, s = sampler_for(8)
    one_region_per_page(child, range(8))
    s.sample(SAMPLE_AHEAD, 0, 8)
    assert walker().mm_live  # the program read the live process's users: no poll needed
    child.stop()
    with pytest.raises(TargetGone):
        s.sample(SAMPLE_CHECK | SAMPLE_AHEAD, 0, 8)
    assert not walker().mm_live


def test_chunked_programs_without_the_kernels_iterators_agree(sampler_for):  # noqa: F811
    # Kernels before 6.4 have no bpf_iter_num: the programs then loop over
    # chunks and tail-call themselves; they must answer as the iterator ones do,
    # over more items than one run of chunks covers (34 x 64 addresses, 34 x 16 regions).
    from damo.sampler.walker import Walker, check_levels, walker

    child, s = sampler_for(64)  # pages 0, 2, 4, ... written, the odd ones never mapped
    w = walker()
    chunked = Walker(use_iterators=False)
    try:
        check_levels(chunked)
        assert w.iterators and not chunked.iterators
        addrs = np.tile(child.addrs(), 50)
        leaves, shifts, _ = w.walk(s._mem_fd, addrs)
        c_leaves, c_shifts, _ = chunked.walk(s._mem_fd, addrs)
        assert (shifts == c_shifts).all() and (leaves == c_leaves).all()
        assert ((shifts == 12) == (np.arange(len(addrs)) % 2 == 0)).all()

        bounds = [(child.start + p * PAGE, child.start + (p + 1) * PAGE)
                  for p in np.tile(np.arange(64), 10).tolist()]
        staged_regions = []
        for x in (w, chunked):
            r = x.regions
            r.start[:640] = [b[0] for b in bounds]
            r.end[:640] = [b[1] for b in bounds]
            r.uncleared[:640] = 0
            staged, _, _ = x.sample(s._mem_fd, SAMPLE_AHEAD, 0, 640, 0)
            staged_regions.append(sorted(r.iov_region[:staged].tolist()))
            assert ((r.sampling_addr[:640] >= r.start[:640]) &
                    (r.sampling_addr[:640] < r.end[:640])).all()
        # Nothing cleared in between: both found the same young pages.
        assert staged_regions[0] == staged_regions[1]
        assert len(staged_regions[0]) > 600 // 2 - 10  # the written ones (kdamond may age a few)
    finally:
        chunked.close()
