"""A CPU budget for sampling: `damo record --max-cpu PCT`.

Every aggregation the budget reads the monitor's own CPU time (all its
threads, `CLOCK_PROCESS_CPUTIME_ID`: the scheduler's exact runtime, not
sampled ticks; plus the kernel-side time of its attached BPF programs, when
the operations have any) and, over the last few aggregation intervals, compares it with
PCT of one core.  Over budget it moves one level (or more, far over) down a
ladder of cheaper settings; well under it, back up towards the nominal one:

1. check the *saturated* regions (found accessed on nearly every sample of
   the last aggregation) on every 2nd, 4th, ... step, up to once per
   aggregation interval.  Their pages are young at every check, so they are
   the ones whose Accessed bit costs a clear (a TLB flush) every time, and
   the ones whose count a few checks estimate best;
2. then lengthen the sampling interval of every region (2x, 4x, ... the
   nominal one), the saturated ones staying at one check per aggregation.

A region is never checked less than once per aggregation interval.  Counts
stay in units of the nominal sampling interval: a check that finds the page
accessed counts its period times the interval's multiple (a region checked 5
times out of 20, accessed each time, records 20).  The operations apply a
`Plan`: per region its period (in steps) and phase, and the step's length.
"""

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

# Aggregations of CPU history a decision looks at, and the least time at a
# level before the next decision (the window must show the level's cost).
WINDOW = 4
# A region is saturated when its count reached this share of the samples.
SATURATED = 0.9
# Go back up only when well under the budget (hysteresis), and retry a level
# found over budget only after this many aggregations (the target may change).
LOWER = 0.7
RETRY_AFTER = 50


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class Level:
    scale: int  # nominal sampling intervals per step
    hot_period: int  # steps between two checks of a saturated region


# The sample program keeps a region's period in 8 bits.
MAX_PERIOD = 255


def _period(steps: int) -> int:
    """The longest period (at most MAX_PERIOD) that divides `steps`."""
    return max(d for d in _divisors(steps) if d <= MAX_PERIOD)


def ladder(samples_per_aggr: int) -> list[Level]:
    """Cheaper and cheaper settings, nominal first; each keeps one check per aggregation."""
    s = max(samples_per_aggr, 1)
    levels = [Level(1, p) for p in _divisors(s) if p <= MAX_PERIOD]
    levels += [Level(m, _period(s // m)) for m in _divisors(s)[1:]]
    return levels


class CpuBudget:
    """Chooses the sampling level that keeps the monitor's CPU within `max_cpu` % of a core."""

    def __init__(self, max_cpu: float, samples_per_aggr: int, clock=time.clock_gettime_ns,
                 extra_ns=None):
        self.max_cpu = max_cpu
        # The kernel-side time of the monitor's attached BPF programs (in no
        # thread's CPU time), in ns so far: counted as the monitor's too.
        self._extra_ns = extra_ns
        self.samples_per_aggr = max(samples_per_aggr, 1)
        self.levels = ladder(self.samples_per_aggr)
        self.level = 0
        self._clock = clock
        self._history: deque[tuple[int, int]] = deque(maxlen=WINDOW + 1)
        self._since_change = 0
        self._aggrs = 0
        # level -> (usage measured there, aggregation it was measured at)
        self._cost: dict[int, tuple[float, int]] = {}
        self.usage: float | None = None  # % of a core over the last window
        # What the budget did, for the sidecar and the summary.
        self.changes: list[dict] = []
        self._checks_sum = 0.0
        self._checks_n = 0
        self.checks_min = float(self.samples_per_aggr)
        self.checks_mean = float(self.samples_per_aggr)

    @property
    def current(self) -> Level:
        return self.levels[self.level]

    def _sample_cpu(self) -> None:
        cpu = self._clock(time.CLOCK_PROCESS_CPUTIME_ID)
        if self._extra_ns is not None:
            cpu += self._extra_ns()
        self._history.append((self._clock(time.CLOCK_MONOTONIC), cpu))

    def after_aggregation(self) -> bool:
        """Measure the last aggregation and choose the next level; whether it changed."""
        self._sample_cpu()
        self._aggrs += 1
        self._since_change += 1
        if len(self._history) < 2 or self._since_change < WINDOW:
            return False
        (w0, c0), (w1, c1) = self._history[0], self._history[-1]
        if w1 <= w0:
            return False
        self.usage = (c1 - c0) / (w1 - w0) * 100
        self._cost[self.level] = (self.usage, self._aggrs)
        old = self.level
        if self.usage > self.max_cpu and self.level < len(self.levels) - 1:
            ratio = self.usage / self.max_cpu
            jump = 1 + (ratio > 1.5) + (ratio > 3)
            self.level = min(self.level + jump, len(self.levels) - 1)
        elif self.usage < self.max_cpu * LOWER and self.level > 0:
            below = self._cost.get(self.level - 1)
            if below is None or below[0] <= self.max_cpu or self._aggrs - below[1] > RETRY_AFTER:
                self.level -= 1
        if self.level == old:
            return False
        self._since_change = 0
        # The window restarts: the new level's cost, not the old one's.
        last = self._history[-1]
        self._history.clear()
        self._history.append(last)
        return True

    def periods(self, counts: np.ndarray) -> np.ndarray:
        """Each region's period in steps, from its count in the last aggregation."""
        saturated = counts >= SATURATED * self.samples_per_aggr
        return np.where(saturated, self.current.hot_period, 1).astype(np.int64)

    def note_checks(self, periods: np.ndarray) -> None:
        """Record the checks per region per aggregation that these periods give."""
        steps = self.samples_per_aggr / self.current.scale
        if len(periods):
            checks = steps / periods
            self.checks_mean = float(checks.mean())
            self.checks_min = float(checks.min())
        self._checks_sum += self.checks_mean
        self._checks_n += 1

    @property
    def run_checks_mean(self) -> float:
        """Checks per region per aggregation, averaged over the run so far."""
        return self._checks_sum / self._checks_n if self._checks_n else self.checks_mean

    def describe(self) -> dict:
        """The current level, for the sidecar."""
        lv = self.current
        return {"max_cpu": self.max_cpu, "level": self.level, "cpu": self.usage,
                "sampling_scale": lv.scale, "saturated_period": lv.hot_period,
                "checks_per_region_mean": self.checks_mean,
                "checks_per_region_min": self.checks_min,
                "nominal_checks": self.samples_per_aggr}
