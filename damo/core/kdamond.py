"""The monitor loop: the seed's `kdamond_fn`, driven by the context's clock.

Per sample: prepare access checks, after_sampling, sleep one sampling
interval, check accesses; or, when the operations have `run_samples`, that
one call runs every sample up to the next aggregation or update deadline
(after_sampling is then not called per sample).  When an aggregation interval has passed: age
(`damo.core.age`), merge, after_aggregation, reset the counts, split.  When an update interval has
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
from damo.core.age import age_regions
from damo.core.context import Callback, Context


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


def aggregate_regions(ctx: Context, max_nr_accesses: int, sz_limit: int) -> None:
    """What runs once per aggregation: age, merge, report, reset, split (bench/engine times it)."""
    if ctx.intervals_tuner is not None:  # the kernel tunes on the aggregation's counts
        ctx.intervals_tuner.after_aggregation(ctx, ctx.clock.now_ns())
    age_regions(ctx, max_nr_accesses // 10)
    kdamond_merge_regions(ctx, max_nr_accesses // 10, sz_limit)
    _call(ctx, ctx.callbacks.after_aggregation)
    kdamond_reset_aggregated(ctx)
    kdamond_split_regions(ctx)
    if ctx.ops is not None:
        ctx.ops.reset_aggregated(ctx)


def kdamond_fn(ctx: Context) -> None:
    """Monitor until asked to stop; returns after before_terminate and the ops' cleanup."""
    ops, cb, attrs, clock = ctx.ops, ctx.callbacks, ctx.attrs, ctx.clock
    if ops is not None:
        ops.init(ctx)
    _call(ctx, cb.before_start)

    # `damon_check_reset_time_interval`: an interval is due once it has passed
    # since its baseline, which then moves to that moment.
    update_ns = attrs.update_interval * 1000
    last_aggr = last_update = clock.now_ns()
    sz_limit = _sz_limit(ctx)
    max_nr_accesses = 0
    # Bound once: on a machine where a process waking every few milliseconds
    # finds its caches cold, every lookup of the per-sample path costs.
    sleep_us, now_ns, sample_us = clock.sleep_us, clock.now_ns, attrs.sample_interval
    prepare = ops.prepare_access_checks if ops is not None else None
    check = ops.check_accesses if ops is not None else None
    run_samples = ops.run_samples if ops is not None else None

    while not _need_stop(ctx):
        # Read afresh: the operations may lengthen the sampling and aggregation
        # intervals together between two aggregations (a CPU budget).
        aggr_ns = ctx.attrs.aggr_interval * 1000
        if run_samples is not None:
            # Every sample up to the first deadline in one call; the baselines
            # move by whole intervals, so the deadlines do not drift, unless
            # the aggregation waited (for a region's missing checks).
            aggr_due, update_due = last_aggr + aggr_ns, last_update + update_ns
            # An update comes at a sampling step of the aggregation, as in the
            # per-sample loop: a step of its own off the aggregation's steps
            # would draw and clear samples a moment before the aggregation's
            # next step, whose check must then wait, and end it that late.
            update_step = update_due
            if update_due < aggr_due:
                sample_ns = ctx.attrs.sample_interval * 1000
                update_step = aggr_due - (aggr_due - update_due) // sample_ns * sample_ns
            ctx.aggregating = aggr_due <= update_step
            max_nr_accesses = run_samples(ctx, min(aggr_due, update_step))
            now = now_ns()
            aggregate, update = now >= aggr_due, now >= update_due
            if aggregate:
                waited = now - aggr_due >= ctx.attrs.sample_interval * 1000
                last_aggr = now if waited else aggr_due
            if update:
                last_update = update_due if now - update_due < update_ns else now
        else:
            if prepare is not None:
                prepare(ctx)
            if cb.after_sampling is not None:
                _call(ctx, cb.after_sampling)

            sleep_us(sample_us)

            # One clock read per sample serves both intervals.  It comes before
            # the check so the operations know whether the regions change right
            # after it.
            now = now_ns()
            aggregate = now - last_aggr >= aggr_ns
            update = now - last_update >= update_ns
            ctx.regions_change_next = aggregate or update
            ctx.aggregating = aggregate
            if check is not None:
                max_nr_accesses = check(ctx)
            if aggregate:
                last_aggr = now
            if update:
                last_update = now

        if aggregate:
            aggregate_regions(ctx, max_nr_accesses, sz_limit)

        if update:
            if ops is not None:
                ops.update(ctx)
            sz_limit = _sz_limit(ctx)
        if aggregate:  # the operations may have lengthened the intervals
            sample_us = ctx.attrs.sample_interval

    for t in ctx.targets:
        t.clear()
    _call(ctx, cb.before_terminate)
    if ops is not None:
        ops.cleanup(ctx)
