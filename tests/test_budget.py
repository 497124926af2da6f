"""The CPU budget's ladder and controller, and kdamond's run_samples operation (no root)."""

import time

import numpy as np

from damo.core.attrs import Attrs
from damo.core.clock import VirtualClock
from damo.core.context import Callbacks, Context
from damo.core.kdamond import kdamond_fn
from damo.core.operations import Operations
from damo.ops.vaddr.budget import SAMPLE_FLOOR, CpuBudget, Level, ladder


def test_ladder_keeps_the_sample_floor_then_lengthens_both_intervals():
    levels = ladder(20)
    assert levels[0] == Level(1, 1, 20)
    nominal = [lv for lv in levels if lv.scale == 1 and lv.samples == 20]
    # Steady regions less often, down to 3 checks (20 // 3 = 6 steps apart)...
    assert [lv.steady_period for lv in nominal] == [1, 2, 4, 6]
    for lv in levels:
        assert lv.samples // lv.steady_period >= SAMPLE_FLOOR
    # ...then fewer samples for every region, the aggregation interval kept...
    assert [lv.samples for lv in levels if lv.scale == 1] == [20, 20, 20, 20, 10, 5, 3]
    # ...then both intervals longer, at the floor's samples.
    assert [lv.scale for lv in levels if lv.scale > 1] == [2, 4, 8, 16]
    assert all(lv.samples == SAMPLE_FLOOR for lv in levels if lv.scale > 1)
    # Each level is cheaper: no more checks, nor more aggregations, than the one before.
    for a, b in zip(levels, levels[1:], strict=False):
        assert b.samples / b.scale <= a.samples / a.scale
    # A period fits the sample program's 8 bits.
    assert all(lv.steady_period <= 255 for lv in ladder(10_000))
    # Fewer samples than the floor: every sample, only longer intervals.
    assert {(lv.steady_period, lv.samples) for lv in ladder(2, floor=2)} == {(1, 2)}


def test_the_budget_scales_the_intervals_and_keeps_their_ratio():
    b = CpuBudget(1.0, Attrs())
    assert b.attrs() == Attrs()
    # Steady periods: the nominal intervals.
    b.level = 3
    assert b.attrs() == Attrs()
    # Fewer samples: the sampling interval alone lengthens, in whole steps.
    b.level = [lv.samples for lv in b.levels].index(5)
    a = b.attrs()
    assert (a.sample_interval, a.aggr_interval) == (20_000, 100_000)
    b.level = [lv.samples for lv in b.levels].index(3)
    a = b.attrs()
    assert (a.sample_interval, a.aggr_interval) == (33_333, 99_999)
    b.level = len(b.levels) - 1
    a = b.attrs()
    assert (a.sample_interval, a.aggr_interval) == (533_333, 1_599_999)
    assert a.aggr_interval // a.sample_interval == SAMPLE_FLOOR
    assert a.update_interval == Attrs().update_interval  # the maps scan keeps its pace
    d = b.describe()
    assert (d["sample_us"], d["aggr_us"], d["sample_floor"]) == (533_333, 1_599_999, 3)
    assert (d["sampling_scale"], d["samples_per_aggr"], d["nominal_checks"]) == (16, 3, 20)
    # An intervals goal's base: the same multiples of it.
    a = b.attrs(Attrs(sample_interval=10_000, aggr_interval=200_000))
    assert (a.sample_interval, a.aggr_interval) == (1_066_666, 3_199_998)


def test_the_summary_says_what_was_traded():
    b = CpuBudget(1.0, Attrs())
    b.note_checks(np.full(4, 20))
    assert b.summary() == " (budget 1%: every sample taken)"
    b.level = len(b.levels) - 1
    b.note_checks(np.full(4, 3))
    text = b.summary()
    assert "down to 3 samples per aggregation" in text
    assert "aggregation interval up to 16x the nominal" in text


class FakeProcess:
    """A clock for CpuBudget: wall time and this process's CPU time, set by the test."""

    def __init__(self):
        self.wall = self.cpu = 0

    def __call__(self, clock_id):
        return self.cpu if clock_id == time.CLOCK_PROCESS_CPUTIME_ID else self.wall

    def aggregate(self, share: float, n: int = 1) -> None:
        for _ in range(n):
            self.wall += 100_000_000
            self.cpu += round(100_000_000 * share)


def run_at(budget: CpuBudget, proc: FakeProcess, cost, n: int) -> list[int]:
    levels = []
    for _ in range(n):
        proc.aggregate(cost(budget.level))
        budget.after_aggregation()
        levels.append(budget.level)
    return levels


def test_over_budget_it_steps_down_the_ladder_and_settles_under_it():
    proc = FakeProcess()
    b = CpuBudget(2.0, Attrs(), clock=proc)
    # Each level halves what is left over a floor of 0.5 %.
    levels = run_at(b, proc, lambda lv: (0.005 + 0.08 / 2 ** lv), 80)
    final = levels[-1]
    assert 0.5 + 8 / 2 ** final <= 2.0 < 0.5 + 8 / 2 ** (final - 1)  # the first level under
    assert levels[-20:] == [final] * 20  # settled: no oscillation
    assert b.usage is not None and b.usage <= 2.0


def test_under_budget_it_returns_to_the_nominal_attributes():
    proc = FakeProcess()
    b = CpuBudget(2.0, Attrs(), clock=proc)
    run_at(b, proc, lambda lv: 0.10, 40)  # a busy phase
    assert b.level > 0
    levels = run_at(b, proc, lambda lv: 0.003, 200)  # then idle
    assert levels[-1] == 0


def test_a_level_found_over_budget_is_retried_later_not_at_once():
    proc = FakeProcess()
    b = CpuBudget(2.0, Attrs(), clock=proc)
    # Level 0 costs 3 %, level 1 costs 1 %: below 70 % of the budget, but going
    # back to 0 would be over again.
    levels = run_at(b, proc, lambda lv: 0.03 if lv == 0 else 0.01, 120)
    assert levels[10:].count(0) < 15  # mostly at 1, a probe of 0 now and then


def test_periods_only_for_regions_steady_in_two_aggregations():
    b = CpuBudget(2.0, Attrs())
    b.level = 2  # steady period 4
    now = np.array([0, 0, 5, 17, 18, 20, 20])
    before = np.array([0, 3, 5, 17, 20, 20, 0])
    assert b.periods(now, before).tolist() == [4, 1, 1, 1, 4, 4, 1]
    b.note_checks(np.array([20, 20, 5, 5]))
    assert b.checks_mean == (20 + 20 + 5 + 5) / 4 and b.checks_min == 5


class CountingOps(Operations):
    """run_samples over a virtual clock: counts the calls and the deadlines it is given."""

    name = "counting"

    def __init__(self, clock: VirtualClock, late_ns: int = 0):
        self.clock, self.late_ns = clock, late_ns
        self.deadlines: list[int] = []

    def run_samples(self, ctx, deadline_ns):
        self.deadlines.append(deadline_ns)
        self.clock.ns = deadline_ns + self.late_ns  # the loop returns a little late
        return 3


def test_kdamond_runs_the_samples_to_deadlines_that_do_not_drift():
    clock = VirtualClock()
    ops = CountingOps(clock, late_ns=1_500_000)  # Python's aggregation takes 1.5 ms
    aggregations = []

    def after(ctx):
        aggregations.append(ctx.clock.now_ns())
        return len(aggregations) >= 25

    ctx = Context(Attrs(), ops, Callbacks(after_aggregation=after), clock=clock, min_region=1)
    ctx.set_targets([1])
    ctx.targets[0].add_region(0, 1 << 20)
    kdamond_fn(ctx)
    # One call per aggregation (updates fall on aggregation deadlines at the defaults),
    # every deadline a whole number of aggregation intervals from the start.
    assert len(ops.deadlines) == 25
    assert ops.deadlines == [(i + 1) * 100_000_000 for i in range(25)]


def test_an_update_comes_at_a_step_of_the_aggregation():
    """An update due between two steps waits for the next step (kdamond's per-sample
    loop does the same): a step of its own, 0.1 s before an aggregation's end, would
    leave that aggregation's last check a whole sampling interval past its deadline."""
    clock = VirtualClock()
    ops = CountingOps(clock)
    updates = []
    ops.update = lambda ctx: updates.append(clock.ns)
    ends = []

    def after(ctx):
        ends.append(clock.ns)
        return len(ends) >= 4

    # Steps of 300 ms, aggregations of 900 ms, updates due every 1.7 s (at 1.7 and 3.4 s).
    ctx = Context(Attrs(300_000, 900_000, 1_700_000, 10, 1000), ops,
                  Callbacks(after_aggregation=after), clock=clock, min_region=1)
    ctx.set_targets([1])
    ctx.targets[0].add_region(0, 1 << 20)
    kdamond_fn(ctx)
    ms = 1_000_000
    assert ends == [900 * ms, 1800 * ms, 2700 * ms, 3600 * ms]
    assert updates == [1800 * ms, 3600 * ms]  # at the steps after 1.7 and 3.4 s
    assert ops.deadlines == ends  # no run of its own to 1.7 s


def test_first_step_is_on_the_deadlines_grid():
    from damo.ops.vaddr.sampling import first_step

    ms = 1_000_000
    # 2 ms of work since the last deadline: the steps keep to 300, 600, 900 ms.
    assert first_step(900 * ms, 300 * ms, 2 * ms) == 300 * ms
    # Work past half an interval: that step goes, the first window is never shorter.
    assert first_step(900 * ms, 300 * ms, 160 * ms) == 600 * ms
    assert first_step(900 * ms, 300 * ms, 750 * ms) == 900 * ms  # 150 ms: half of one
    # Later still: one whole interval from now, as a late run always did.
    assert first_step(900 * ms, 300 * ms, 760 * ms) == 1060 * ms


def test_kernel_side_time_counts_as_the_monitors():
    """Attached programs' time (extra_ns) is in no thread's CPU: the budget adds it."""
    from damo.ops.vaddr.budget import WINDOW

    now = {"mono": 0, "cpu": 0, "bpf": 0}

    def clock(which):
        return now["mono"] if which == time.CLOCK_MONOTONIC else now["cpu"]

    b = CpuBudget(1.0, Attrs(), clock=clock, extra_ns=lambda: now["bpf"])
    for _ in range(WINDOW + 1):
        b.after_aggregation()
        now["mono"] += 100_000_000
        now["cpu"] += 500_000  # 0.5 % of a core in the monitor's threads
        now["bpf"] += 1_000_000  # and 1 % in the kernel on its behalf
    b.after_aggregation()
    assert b.usage is not None and abs(b.usage - 1.5) < 0.01
    assert b.level > 0  # over the 1 % budget only with the kernel-side time
