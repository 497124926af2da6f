"""The seed's core-test.h (kunit), case by case, with its expected values.

As in the seed's kunit build, the minimum region size is 1; the contexts use
`--adjust seed`, the seed's exact merge and split.
"""

import numpy as np
import pytest

from damo.core.adjust import (
    kdamond_merge_regions,
    kdamond_reset_aggregated,
    kdamond_split_regions,
    merge_regions_of,
    region_sz_limit,
    split_region_at,
    split_regions_of,
)
from damo.core.attrs import Attrs
from damo.core.context import Context
from damo.core.target import Target
from damo.errors import AttrsError


def new_ctx(**attrs) -> Context:
    return Context(Attrs(**attrs), rng=np.random.default_rng(42), min_region=1, adjust="seed")


def test_damon_test_regions():
    t = Target(42)
    assert t.nr_regions == 0
    t.add_region(1, 2)
    assert t.region(0) == (1, 2, 0)
    assert t.nr_regions == 1
    t.del_region(0)
    assert t.nr_regions == 0


def test_damon_test_target():
    c = new_ctx()
    t = Target(42)
    assert t.id == 42
    assert len(c.targets) == 0
    c.add_target(t)
    assert len(c.targets) == 1
    c.targets.remove(t)
    assert len(c.targets) == 0


def test_damon_test_aggregate():
    ctx = new_ctx()
    saddr = [[10, 20, 30], [5, 42, 49], [13, 33, 55]]
    eaddr = [[15, 27, 40], [31, 45, 55], [23, 44, 66]]
    accesses = [[42, 95, 84], [10, 20, 30], [0, 1, 2]]
    ctx.set_targets([1, 2, 3])
    for it, t in enumerate(ctx.targets):
        for ir in range(3):
            t.add_region(saddr[it][ir], eaddr[it][ir], accesses[it][ir])
    kdamond_reset_aggregated(ctx)
    # targets and regions are preserved, '->nr_accesses' zeroed
    assert len(ctx.targets) == 3
    for it, t in enumerate(ctx.targets):
        assert t.nr_regions == 3
        assert [r.nr_accesses for r in t.regions()] == [0, 0, 0]
        assert t.start.tolist() == saddr[it]
        assert t.end.tolist() == eaddr[it]


def test_damon_test_split_at():
    t = Target(42)
    t.add_region(0, 100)
    split_region_at(t, 0, 25)
    assert t.region(0)[:2] == (0, 25)
    assert t.region(1)[:2] == (25, 100)


def test_damon_test_merge_two():
    """The kernel's case for damon_merge_two_regions, through the merge loop (one join)."""
    t = Target(42)
    t.add_region(0, 100, 10)
    t.add_region(100, 300, 20)
    merge_regions_of(t, 10, 300)
    assert t.region(0) == (0, 300, 16)
    assert t.nr_regions == 1


def test_damon_test_merge_regions_of():
    t = Target(42)
    sa = [0, 100, 114, 122, 130, 156, 170, 184]
    ea = [100, 112, 122, 130, 156, 170, 184, 230]
    nrs = [0, 0, 10, 10, 20, 30, 1, 2]
    for s, e, n in zip(sa, ea, nrs, strict=True):
        t.add_region(s, e, n)
    merge_regions_of(t, 9, 9999)
    # 0-112, 114-130, 130-156, 156-170, 170-230
    assert t.nr_regions == 5
    assert t.start.tolist() == [0, 114, 130, 156, 170]
    assert t.end.tolist() == [112, 130, 156, 170, 230]


@pytest.mark.parametrize("seed", range(20))
def test_damon_test_split_regions_of(seed):
    rng = np.random.default_rng(seed)
    t = Target(42)
    t.add_region(0, 22)
    split_regions_of(t, 2, rng, 1)
    assert t.nr_regions == 2

    t = Target(42)
    t.add_region(0, 220)
    split_regions_of(t, 4, rng, 1)
    assert t.nr_regions == 4
    # the pieces still tile the original region
    assert t.start[0] == 0 and t.end[-1] == 220
    assert (t.start[1:] == t.end[:-1]).all()


# Beyond the kunit cases: the rules the seed's code states.


def test_merge_respects_size_limit_and_adjacency():
    t = Target(1)
    for s, e in [(0, 10), (10, 20), (20, 30), (40, 50)]:
        t.add_region(s, e, 5)
    merge_regions_of(t, 0, 20)
    # 0-20 is at the limit, 20-30 would exceed it, 40-50 is not adjacent
    assert [r[:2] for r in t.regions()] == [(0, 20), (20, 30), (40, 50)]


def test_split_keeps_alignment_and_skips_small_regions():
    rng = np.random.default_rng(0)
    t = Target(1)
    t.add_region(0, 4096 * 2)  # not bigger than two minimum regions: left alone
    t.add_region(4096 * 10, 4096 * 110)
    split_regions_of(t, 3, rng, 4096)
    assert t.region(0)[:2] == (0, 8192)
    assert t.nr_regions in (3, 4)
    assert (t.start % 4096 == 0).all() and (t.end % 4096 == 0).all()
    assert (t.end > t.start).all()


def test_sz_limit():
    t = Target(1)
    t.add_region(0, 1000)
    t.add_region(2000, 3000)
    assert region_sz_limit([t], 10, 1) == 200
    assert region_sz_limit([t], 10, 4096) == 4096


def test_split_two_or_three():
    ctx = new_ctx(min_nr_regions=3, max_nr_regions=30)
    ctx.set_targets([1])
    ctx.targets[0].add_region(0, 1_000_000)
    kdamond_split_regions(ctx)  # first call: count differs from the remembered 0
    assert ctx.targets[0].nr_regions == 2
    assert ctx.last_nr_regions == 1
    kdamond_merge_regions(ctx, 0, 10**9)
    assert ctx.targets[0].nr_regions == 1
    kdamond_split_regions(ctx)  # count unchanged since last split, below max/3
    assert ctx.targets[0].nr_regions == 3
    # above max / 2: no split at all
    t = ctx.targets[0]
    t.set_regions(np.arange(16) * 100, np.arange(16) * 100 + 100)
    kdamond_split_regions(ctx)
    assert t.nr_regions == 16


@pytest.mark.parametrize(
    "attrs, message",
    [
        (dict(min_nr_regions=2), "at least 3"),
        (dict(min_nr_regions=20, max_nr_regions=10), "min (20) > max (10)"),
        (dict(sample_interval=0), "sample_interval"),
        (dict(aggr_interval=1000, sample_interval=5000), "shorter than"),
        (dict(update_interval=-1), "update_interval"),
    ],
)
def test_attrs_validation(attrs, message):
    with pytest.raises(AttrsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Attrs(**attrs).validate()


def test_attrs_defaults():
    a = Attrs()
    assert (a.sample_interval, a.aggr_interval, a.update_interval) == (5000, 100000, 1000000)
    assert (a.min_nr_regions, a.max_nr_regions) == (10, 1000)
    assert a.validate() is a


def test_set_targets():
    """dbgfs-test.h damon_dbgfs_test_set_targets, on the context's target list."""
    ctx = new_ctx()
    for ids in ([1, 2, 3], [], [1, 2], [2], []):
        ctx.set_targets(ids)
        assert ctx.target_ids() == ids


@pytest.mark.parametrize("seed", range(20))
def test_merge_loop_follows_the_rule(seed):
    """damo/core/_adjust.c's merge loop, checked against the rule it implements on random
    regions (gaps, narrow's `may`, size limits, counts and ages big enough to need 128
    bits): the survivors are runs of parts whose every join was allowed (touching, `may`,
    counts within the threshold of the survivor's count so far, the sum within the size
    limit), the next part after a run could not join it, the count folds pair by pair
    (rounded down each time), the age is the parts' size-weighted mean to the nearest."""
    from damo.core import adjust

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    sizes = rng.integers(1, 1 << int(rng.integers(1, 40)), n)
    gaps = np.where(rng.random(n) < 0.1, rng.integers(1, 100, n), 0)
    start = np.cumsum(sizes + gaps) - sizes
    # A few levels, each with a little spread: runs of alike counts, and unlike ones.
    levels = rng.integers(0, int(rng.choice([3, 20, 1 << 40])), 4)
    nr = rng.choice(levels, n) + rng.integers(0, 3, n)
    may = rng.random(n) < 0.8 if seed % 2 else None
    thres, sz_limit = int(rng.integers(0, 5)), int(sizes.sum() // rng.integers(1, 20))
    age = rng.integers(0, 1 << 20, n)
    t = Target(1)
    t.set_regions(start, start + sizes, nr)
    t.age = age.copy()
    t.last_nr_accesses = np.arange(n)
    idx = adjust.merge_regions(t, thres, sz_limit, may)
    first = list(range(n)) if idx is None else idx.tolist()
    assert first[0] == 0 and first == sorted(set(first))
    s, e, sz = start.tolist(), (start + sizes).tolist(), sizes.tolist()
    nrs, ages = nr.tolist(), age.tolist()
    bounds = first + [n]
    for r, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        count, size = nrs[lo], sz[lo]  # the survivor as it grows, part by part
        for i in range(lo + 1, hi):
            assert e[i - 1] == s[i] and (may is None or may[i])
            assert abs(count - nrs[i]) <= thres and size + sz[i] <= sz_limit
            count = (count * size + nrs[i] * sz[i]) // (size + sz[i])
            size += sz[i]
        if hi < n:  # the next part could not join
            assert e[hi - 1] != s[hi] or (may is not None and not may[hi]) \
                or abs(count - nrs[hi]) > thres or size + sz[hi] > sz_limit
        assert (int(t.start[r]), int(t.end[r]), int(t.nr_accesses[r])) == (s[lo], e[hi - 1], count)
        wage = sum(ages[i] * sz[i] for i in range(lo, hi))
        assert int(t.age[r]) == (wage + size // 2) // size
        assert int(t.last_nr_accesses[r]) == lo  # per-region arrays follow the first part
    assert t.nr_regions == len(first)
    assert n - len(first) >= n // 20, (n, len(first))  # merges were tried and made
