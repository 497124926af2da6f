"""The monitor loop: the seed's `kdamond_fn`, driven by the context's clock.

Per sample: prepare access checks, after_sampling, sleep one sampling
interval, check accesses.  When an aggregation interval has passed: merge,
after_aggregation, reset the counts, split.  When an update interval has
passed: let the operations update the regions and recompute the size limit.
The loop ends when a callback returns true, `Context.request_stop` is called,
or no target is valid any more.
"""

from damo.core.adjust import (
    kdamond_merge_regions,
    kdamond_reset_aggregated,
    kdamond_split_regions,
    region_sz_limit,
)
from damo.core.context import Callback, Context


class _Interval:
    """`damon_check_reset_time_interval`: due once `interval` has passed since the last time."""

    def __init__(self, ctx: Context, interval_us: int):
        self.clock = ctx.clock
        self.interval_ns = interval_us * 1000
        self.baseline = self.clock.now_ns()

    def due(self, now: int) -> bool:
        return now - self.baseline >= self.interval_ns

    def passed(self, now: int) -> bool:
        if not self.due(now):
            return False
        self.baseline = now
        return True


def _call(ctx: Context, callback: Callback | None) -> None:
    if callback is not None and callback(ctx):
        ctx.request_stop()


def _need_stop(ctx: Context) -> bool:
    if ctx.stop_requested:
        return True
    ops = ctx.ops
    if ops is None:
        return False
    for t in ctx.targets:  # a plain loop, not any(genexpr): this runs every sample
        if ops.target_valid(t):
            return False
    return True


def _sz_limit(ctx: Context) -> int:
    return region_sz_limit(ctx.targets, ctx.attrs.min_nr_regions, ctx.min_region)


def kdamond_fn(ctx: Context) -> None:
    """Monitor until asked to stop; returns after before_terminate and the ops' cleanup."""
    ops, cb, attrs = ctx.ops, ctx.callbacks, ctx.attrs
    if ops is not None:
        ops.init(ctx)
    _call(ctx, cb.before_start)

    aggregation = _Interval(ctx, attrs.aggr_interval)
    update = _Interval(ctx, attrs.update_interval)
    sz_limit = _sz_limit(ctx)
    max_nr_accesses = 0

    while not _need_stop(ctx):
        if ops is not None:
            ops.prepare_access_checks(ctx)
        _call(ctx, cb.after_sampling)

        ctx.clock.sleep_us(attrs.sample_interval)

        # One clock read per sample serves both intervals.  It comes before the
        # check so the operations know whether the regions change right after it.
        now = ctx.clock.now_ns()
        ctx.regions_change_next = aggregation.due(now) or update.due(now)
        if ops is not None:
            max_nr_accesses = ops.check_accesses(ctx)

        if aggregation.passed(now):
            kdamond_merge_regions(ctx, max_nr_accesses // 10, sz_limit)
            _call(ctx, cb.after_aggregation)
            kdamond_reset_aggregated(ctx)
            kdamond_split_regions(ctx)
            if ops is not None:
                ops.reset_aggregated(ctx)

        if update.passed(now):
            if ops is not None:
                ops.update(ctx)
            sz_limit = _sz_limit(ctx)

    for t in ctx.targets:
        t.clear()
    _call(ctx, cb.before_terminate)
    if ops is not None:
        ops.cleanup(ctx)
