"""DAMON's monitoring intervals auto-tuning (Linux 6.15): `--monitoring_intervals_goal`.

The goal is an access ratio: of all the access events an aggregation could
observe (every byte accessed at every sample), the share actually observed,
in basis points (`access_bp`).  Every `aggrs` aggregations the tuner scores
the last aggregation against the goal and scales both intervals by the same
factor, their ratio (samples per aggregation) kept, the sampling interval
within [min_sample_us, max_sample_us]:

- under the goal (too few accesses seen) the intervals grow by the shortfall,
  up to twice as long at once;
- over it they shrink by the excess, at most to half at once (the kernel
  rescales its feedback's decrease to [50%, 100%]: shorter intervals have no
  merit that calls for haste).

A busy target then gets short intervals and an idle one long ones, which
costs less.  This follows the kernel's semantics (mm/damon/core.c,
`kdamond_tune_intervals`); the arithmetic is this module's own.
"""

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from damo.core.attrs import Attrs
from damo.errors import UsageError

if TYPE_CHECKING:
    from damo.core.context import Context

BP = 10_000  # basis points of one


@dataclass(frozen=True)
class IntervalsGoal:
    access_bp: int  # the access events to observe, per 10,000 possible
    aggrs: int  # aggregations between two tunings
    min_sample_us: int
    max_sample_us: int


# `--monitoring_intervals_autotune`: upstream damo's choice (4 %, every 3 aggregations).
AUTOTUNE = IntervalsGoal(400, 3, 5_000, 10_000_000)

_UNITS_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000}


def _duration_us(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(us|ms|s|m)?\s*", text)
    if m is None:
        raise UsageError(f"--monitoring_intervals_goal: {text!r} is not a duration "
                         "(e.g. 5ms, 10s, or microseconds)")
    return round(float(m.group(1)) * _UNITS_US[m.group(2) or "us"])


def parse_goal(words: tuple[str, str, str, str] | list[str]) -> IntervalsGoal:
    """ACCESS_BP (basis points, or a percentage like 4%) AGGRS MIN_SAMPLE MAX_SAMPLE."""
    access, aggrs, lo, hi = words
    try:
        bp = round(float(access[:-1]) * 100) if access.strip().endswith("%") else int(access)
        nr_aggrs = int(aggrs)
    except ValueError:
        raise UsageError(f"--monitoring_intervals_goal: {access!r} and {aggrs!r} must be "
                         "basis points (or N%) and a number of aggregations") from None
    goal = IntervalsGoal(bp, nr_aggrs, _duration_us(lo), _duration_us(hi))
    if not 0 < goal.access_bp <= BP:
        raise UsageError(f"--monitoring_intervals_goal: the access goal must be 1 to 10000 bp "
                         f"(0.01-100%), not {goal.access_bp}")
    if goal.aggrs < 1:
        raise UsageError("--monitoring_intervals_goal: AGGRS must be at least 1")
    if not 0 < goal.min_sample_us <= goal.max_sample_us:
        raise UsageError("--monitoring_intervals_goal: MIN_SAMPLE must be positive and at most "
                         "MAX_SAMPLE")
    return goal


def score_bp(ctx: "Context", samples: int, goal_bp: int) -> int:
    """Observed access events per 10,000 of the goal, over every region of the context."""
    possible = observed = 0
    for t in ctx.targets:
        if not t.nr_regions:
            continue
        sizes = t.end - t.start
        possible += int(sizes.sum()) * samples
        observed += int((sizes * t.nr_accesses).sum())
    target = possible * goal_bp // BP
    return observed * BP // max(target, 1)


def adaptation_bp(score: int) -> int:
    """The intervals' next scale in basis points: the kernel's proportional feedback."""
    if score == BP:
        return BP
    if score < BP:
        return BP + (BP - score)  # up to 2x
    factor = max(BP - (score - BP), 1)  # down to ~0 ...
    return BP // 2 + factor // 2  # ... rescaled to [50%, 100%]


class IntervalsTuner:
    """Tunes `ctx.base_attrs` (the intervals before a CPU budget scales them) toward the goal."""

    def __init__(self, goal: IntervalsGoal):
        self.goal = goal
        self._aggrs = 0
        self.log: list[dict] = []  # the intervals chosen, for the sidecar

    def after_aggregation(self, ctx: "Context", now_ns: int) -> bool:
        """Every `aggrs` aggregations, scale both intervals; whether they changed."""
        self._aggrs += 1
        if self._aggrs < self.goal.aggrs:
            return False
        self._aggrs = 0
        base = ctx.base_attrs
        samples = max(base.aggr_interval // base.sample_interval, 1)
        score = score_bp(ctx, samples, self.goal.access_bp)
        scale = adaptation_bp(score)
        sample = min(max(base.sample_interval * scale // BP, self.goal.min_sample_us),
                     self.goal.max_sample_us)
        if sample == base.sample_interval:
            return False
        new: Attrs = replace(base, sample_interval=sample, aggr_interval=sample * samples)
        ctx.base_attrs = new
        # The budget's scale (if any) applies to the new base at its next reset;
        # until then each interval keeps its multiple of the base's (a budget
        # may have lengthened the sampling interval alone).
        ctx.attrs = replace(ctx.attrs, sample_interval=new.sample_interval *
                            ctx.attrs.sample_interval // base.sample_interval,
                            aggr_interval=new.aggr_interval * ctx.attrs.aggr_interval //
                            base.aggr_interval)
        self.log.append({"time_ns": now_ns, "sample_us": new.sample_interval,
                         "aggr_us": new.aggr_interval, "score_bp": score,
                         "goal_bp": self.goal.access_bp})
        return True

    def take_log(self) -> list[dict]:
        out, self.log = self.log, []
        return out
