"""The monitor loop (kdamond_fn) against the operations interface.

`Traced` is a real Operations backend over a fixed address space whose every
page is always accessed; it logs the calls kdamond makes so the loop's order
and its stop conditions can be checked.
"""

import numpy as np
import pytest

from damo.core.attrs import Attrs
from damo.core.clock import VirtualClock
from damo.core.context import Callbacks, Context
from damo.core.kdamond import kdamond_fn
from damo.core.operations import Operations
from damo.ops.common import VaddrOperations

MAPS = [(0x1000, 0x100000), (0x10000000, 0x10100000), (0x7FF000000000, 0x7FF000010000)]


class Traced(VaddrOperations):
    def __init__(self, valid_samples: int | None = None):
        self.log: list[str] = []
        self.valid_samples = valid_samples
        self.samples = 0

    def mappings(self, target):
        return MAPS

    def init(self, ctx):
        self.log.append("init")
        super().init(ctx)

    def update(self, ctx):
        self.log.append("update")
        super().update(ctx)

    def mkold(self, target):
        self.log.append("prepare")

    def young(self, target):
        self.log.append("check")
        self.samples += 1
        return np.ones(target.nr_regions, dtype=bool)

    def reset_aggregated(self, ctx):
        self.log.append("reset")

    def target_valid(self, target):
        return self.valid_samples is None or self.samples < self.valid_samples

    def cleanup(self, ctx):
        self.log.append("cleanup")


def make(ops, callbacks=None, **attrs):
    ctx = Context(Attrs(**attrs), ops, callbacks, np.random.default_rng(0), VirtualClock())
    ctx.set_targets([7])
    return ctx


def test_base_operations_are_null_primitives():
    ctx = make(Operations())
    ops = ctx.ops
    ops.init(ctx)
    ops.prepare_access_checks(ctx)
    assert ops.check_accesses(ctx) == 0
    assert ops.target_valid(ctx.targets[0]) is True


def test_loop_order_and_stop_when_no_target_is_valid():
    events = []

    def cb(name):
        def f(ctx):
            events.append((name, ctx.clock.now_ns()))

        return f

    ops = Traced(valid_samples=45)
    callbacks = Callbacks(cb("before_start"), None, cb("after_aggregation"), cb("before_terminate"))
    ctx = make(ops, callbacks)
    kdamond_fn(ctx)
    assert ops.log[0] == "init"
    assert ops.log[1:4] == ["prepare", "check", "prepare"]
    assert ops.log[-1] == "cleanup"
    # 45 samples of 5 ms: aggregations at 100 and 200 ms, then the target is gone
    assert events == [
        ("before_start", 0),
        ("after_aggregation", 100_000_000),
        ("after_aggregation", 200_000_000),
        ("before_terminate", 225_000_000),
    ]
    assert ops.log.count("check") == 45
    assert ops.log.count("reset") == 2
    # kdamond drops the regions before before_terminate, as the seed does
    assert ctx.targets[0].nr_regions == 0


def test_callback_stop_and_aggregated_counts():
    snapshots = []

    def after_aggregation(ctx):
        t = ctx.targets[0]
        snapshots.append((t.nr_regions, t.nr_accesses.copy()))
        return len(snapshots) == 3

    ops = Traced()
    ctx = make(ops, Callbacks(after_aggregation=after_aggregation))
    kdamond_fn(ctx)
    assert len(snapshots) == 3
    # every page accessed at every sample: 20 samples per aggregation
    for nr, counts in snapshots:
        assert (counts == 20).all()
        assert 3 <= nr <= 1000


def test_update_interval():
    ops = Traced()
    ctx = make(ops, Callbacks(after_aggregation=lambda c: c.clock.now_ns() >= 3_000_000_000))
    kdamond_fn(ctx)
    assert ops.log.count("update") == 3


def test_before_start_stop_skips_sampling():
    ops = Traced()
    ctx = make(ops, Callbacks(before_start=lambda c: True))
    kdamond_fn(ctx)
    assert ops.log == ["init", "cleanup"]


def test_request_stop_and_after_sampling():
    calls = []

    def after_sampling(ctx):
        calls.append(1)
        if len(calls) == 5:
            ctx.request_stop()

    ops = Traced()
    kdamond_fn(make(ops, Callbacks(after_sampling=after_sampling)))
    # the sample in progress is finished, then the loop ends
    assert ops.log.count("check") == 5


def test_uniform_access_merges_to_min_regions():
    """Alike neighbours merge down; the size limit keeps about min_nr_regions."""
    counts = []

    def after_aggregation(ctx):
        counts.append(ctx.targets[0].nr_regions)
        return len(counts) == 50

    kdamond_fn(make(Traced(), Callbacks(after_aggregation=after_aggregation)))
    assert 3 <= min(counts[10:]) and max(counts[10:]) <= 2 * 10 + 3


@pytest.mark.parametrize("bad", [dict(min_nr_regions=1), dict(sample_interval=0)])
def test_context_rejects_bad_attrs(bad):
    from damo.errors import AttrsError

    with pytest.raises(AttrsError):
        make(Traced(), **bad)
