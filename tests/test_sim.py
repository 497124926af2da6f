"""The `sim` operations: layout, phase schedule, access answers, validity."""

import numpy as np
import pytest

from damo.core.attrs import Attrs
from damo.core.clock import VirtualClock
from damo.core.context import Callbacks, Context
from damo.core.kdamond import kdamond_fn
from damo.core.target import Target
from damo.errors import WorkloadError
from damo.ops.common import three_regions
from damo.ops.sim import MMAP_BASE, SIM_TARGET_ID, SimOperations, layout
from damo.workload.load import parse

WORKLOAD = """\
[[regions]]
name = "a"
size = "1 MiB"
[[regions]]
name = "b"
size = "1000"
gap_before = "1 GiB"
[[phases]]
name = "a"
duration_ms = 1000
access = ["a"]
[[phases]]
name = "b part"
duration_ms = 500
access = [{ region = "b", probability = 0.3 }]
"""


def sim(text=WORKLOAD, loop=False):
    return SimOperations(parse(("loop = true\n" if loop else "") + text, "w.toml"))


def test_layout_like_a_process():
    maps = layout(sim().workload)
    assert [m.name for m in maps] == ["[heap]", "a", "b", "[stack]"]
    heap, a, b, stack = maps
    assert a.start == MMAP_BASE and a.end == MMAP_BASE + (1 << 20)
    # gap_before honoured; sizes rounded up to whole pages
    assert b.start == a.end + (1 << 30) and b.end == b.start + 4096
    assert all(m.start % 4096 == 0 and m.end % 4096 == 0 for m in maps)
    # the two biggest gaps are heap..mmap and mmap..stack
    assert three_regions([(m.start, m.end) for m in maps], 4096) == [
        (heap.start, heap.end),
        (a.start, b.end),
        (stack.start, stack.end),
    ]


def test_layout_too_big():
    text = WORKLOAD.replace('size = "1000"', 'size = "2 TiB"')
    with pytest.raises(WorkloadError, match="do not fit"):
        sim(text)


def test_runs_once_and_looped():
    ops = sim()
    runs = list(ops.runs(0, 10**12))
    assert [(r.phase.name, r.start_ns, r.end_ns) for r in runs] == [
        ("a", 0, 1_000_000_000),
        ("b part", 1_000_000_000, 1_500_000_000),
    ]
    assert list(ops.runs(1_500_000_000, 2_000_000_000)) == []
    looped = sim(loop=True)
    runs = list(looped.runs(1_200_000_000, 3_100_000_000))
    assert [(r.phase.name, r.start_ns) for r in runs] == [
        ("b part", 1_000_000_000),
        ("a", 1_500_000_000),
        ("b part", 2_500_000_000),
        ("a", 3_000_000_000),
    ]


def _young_fraction(ops, ctx, t, start_ns, end_ns, n=20000):
    ops.sample_start_ns = start_ns
    ctx.clock.ns = end_ns
    return ops.young(t).mean()


def _single_region_target(start, end, n=20000):
    t = Target(SIM_TARGET_ID)
    t.set_regions(np.full(n, start), np.full(n, end))
    t.sampling_addr = np.random.default_rng(1).integers(start, end, size=n)
    return t


def test_young_follows_the_phase():
    ops = sim()
    ctx = Context(Attrs(), ops, rng=np.random.default_rng(3), clock=VirtualClock())
    ops.init(ctx)
    heap, a, b, stack = ops.maps
    ta = _single_region_target(a.start, a.end)
    tb = _single_region_target(b.start, b.end)
    tgap = _single_region_target(a.end, b.start)
    theap = _single_region_target(heap.start, heap.end)
    assert _young_fraction(ops, ctx, ta, 0, 5_000_000) == 1.0
    assert _young_fraction(ops, ctx, tb, 0, 5_000_000) == 0.0
    assert _young_fraction(ops, ctx, tgap, 0, 5_000_000) == 0.0
    assert _young_fraction(ops, ctx, theap, 0, 5_000_000) == 0.0
    assert _young_fraction(ops, ctx, ta, 1_100_000_000, 1_105_000_000) == 0.0
    assert _young_fraction(ops, ctx, tb, 1_100_000_000, 1_105_000_000) == pytest.approx(
        0.3, abs=0.02
    )
    # an interval spanning the phase change sees both phases
    assert _young_fraction(ops, ctx, ta, 998_000_000, 1_003_000_000) == 1.0
    assert _young_fraction(ops, ctx, tb, 998_000_000, 1_003_000_000) == pytest.approx(0.3, abs=0.02)


def _run(ops, seed, **attrs):
    snaps = []

    def after_aggregation(ctx):
        t = ctx.targets[0]
        snaps.append((ctx.clock.now_ns(), t.start.copy(), t.end.copy(), t.nr_accesses.copy()))

    ctx = Context(
        Attrs(**attrs),
        ops,
        Callbacks(after_aggregation=after_aggregation),
        np.random.default_rng(seed),
        VirtualClock(),
    )
    ctx.set_targets([SIM_TARGET_ID])
    kdamond_fn(ctx)
    return snaps


def test_target_ends_with_the_workload():
    snaps = _run(sim(), 0)
    assert [s[0] for s in snaps] == [i * 100_000_000 for i in range(1, 16)]


def test_same_seed_same_run():
    a, b, c = _run(sim(), 5), _run(sim(), 5), _run(sim(), 6)
    same = [
        all((x == y).all() for x, y in zip(p[1:], q[1:], strict=True))
        for p, q in zip(a, b, strict=True)
    ]
    assert all(same)
    differ = [len(p[1]) != len(q[1]) or not (p[1] == q[1]).all() for p, q in zip(a, c, strict=True)]
    assert any(differ)


def test_snapshots_are_sane():
    ops = sim(loop=True)
    snaps = []

    def after_aggregation(ctx):
        t = ctx.targets[0]
        snaps.append((t.start.copy(), t.end.copy()))
        return len(snaps) == 100

    ctx = Context(
        Attrs(min_nr_regions=5, max_nr_regions=40),
        ops,
        Callbacks(after_aggregation=after_aggregation),
        np.random.default_rng(0),
        VirtualClock(),
    )
    ctx.set_targets([SIM_TARGET_ID])
    kdamond_fn(ctx)
    for start, end in snaps:
        assert (end > start).all() and (start[1:] >= end[:-1]).all()
        assert (start % 4096 == 0).all() and (end % 4096 == 0).all()
        assert 5 <= len(start) <= 40
