"""A CPU budget for the vaddr operations' sampling: `damo record --max-cpu PCT`.

Every aggregation the budget reads the monitor's own CPU time (all its
threads, `CLOCK_PROCESS_CPUTIME_ID`: the scheduler's exact runtime, not
sampled ticks, which includes the sample program's runs in its syscalls;
plus the kernel-side time of its attached BPF programs, when the operations
have any) and, over the last few aggregation intervals, compares it with PCT
of one core.
Over budget it moves one level (or more, far over) down a ladder of cheaper
settings; well under it, back up towards the nominal one:

1. check the *steady* regions (found accessed on every sample, or on none,
   in each of the last two aggregations) on every 2nd, 3rd, ... step, down to
   `SAMPLE_FLOOR` checks per aggregation.  A saturated region's page is
   young at every check, so it costs a clear (a TLB flush) every time; a cold
   one costs a page-table walk.  Either count a few checks estimate well;
2. then fewer samples per aggregation for every region: the sampling
   interval alone lengthens (20 samples an aggregation, 10, 5, down to the
   floor), the aggregation interval kept.  Each step is a wake-up and a
   check of every region due, so this is the cheap half of the cost; the
   aggregation's own work (merge, split, the record) stays;
3. then lengthen the aggregation interval together with the sampling
   interval (2x, 4x, ...: DAMON's intervals auto-tuning does the same), at
   the floor's samples, so only the time resolution coarsens.

Regions adapt once per aggregation, so the aggregation interval is what
sets how soon they resolve a new access pattern: a level of rung 2 holds it
at the cost of noisier counts.  Measured on 200 interleaved 1 MiB regions
(docs/performance.md, "The ladder's order"): 3 samples an aggregation of
400 ms cost what 20 of 1.6 s cost, and resolve four times as often.
Counts keep DAMON's units whatever the level: the operations turn a
region's young checks into a count in units of the nominal samples.

A region is never checked fewer than `SAMPLE_FLOOR` times per aggregation
(below that the count of a region straddling hot and cold memory reads like
a pure neighbour's, and merge and split cannot find the boundaries: see
docs/sampler.md).  Counts are of the checks made: the operations turn a
region's young checks into a count in units of the aggregation's samples.
"""

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from damo.core.attrs import Attrs

# `damo record --max-cpu`'s default for processes: % of one core.
DEFAULT_MAX_CPU = 1.0
# Checks per region per aggregation, never fewer (whatever the budget, late
# steps or stalls: the operations let the aggregation wait for them).
SAMPLE_FLOOR = 3
# Aggregations of CPU history a decision looks at, and the least time at a
# level before the next decision (the window must show the level's cost).
WINDOW = 4
# A region is saturated when its count reached this share of the samples.
SATURATED = 0.9
# Go back up only when well under the budget (hysteresis), and retry a level
# found over budget only after this long (the target may change): time, not
# aggregations, which the budget itself lengthens.
LOWER = 0.7
RETRY_AFTER_NS = 10_000_000_000
# The longest the intervals get: 16x the nominal ones (1.6 s aggregations at
# the defaults).  Longer, the regions take minutes to resolve a change.
MAX_SCALE = 16
# The sample program keeps a region's period in 8 bits.
MAX_PERIOD = 255


@dataclass(frozen=True)
class Level:
    scale: int  # the nominal aggregation interval's multiple
    steady_period: int  # steps between two checks of a steady region
    samples: int = 0  # sampling steps per aggregation (0: the nominal ratio's)


def _halving(top: int, bottom: int) -> list[int]:
    """top, top / 2, top / 4, ... while above bottom, then bottom (top >= bottom)."""
    out = [top]
    while out[-1] // 2 > bottom:
        out.append(out[-1] // 2)
    if out[-1] > bottom:
        out.append(bottom)
    return out


def ladder(samples_per_aggr: int, floor: int = SAMPLE_FLOOR) -> list[Level]:
    """Cheaper and cheaper settings, nominal first; every one keeps `floor` checks per region:
    steady regions checked less often, then fewer samples for all, then longer intervals."""
    s = max(samples_per_aggr, 1)
    longest = max(1, min(s // floor, MAX_PERIOD))
    periods = [1]
    p = 2
    while p < longest:
        periods.append(p)
        p *= 2
    if longest > 1:
        periods.append(longest)
    levels = [Level(1, p, s) for p in periods]
    for samples in _halving(s, max(floor, 1))[1:]:
        levels.append(Level(1, max(1, min(samples // floor, MAX_PERIOD)), samples))
    least = min(s, max(floor, 1))
    m = 2
    while m <= MAX_SCALE:
        levels.append(Level(m, 1, least))
        m *= 2
    return levels


class CpuBudget:
    """Chooses the sampling level that keeps the monitor's CPU within `max_cpu` % of a core."""

    def __init__(self, max_cpu: float, nominal: Attrs, clock=time.clock_gettime_ns,
                 extra_ns: Callable[[], int] | None = None):
        self.max_cpu = max_cpu
        # The kernel-side time of the monitor's attached BPF programs (in no
        # thread's CPU time), in ns so far: counted as the monitor's too.
        self._extra_ns = extra_ns
        self.nominal = nominal
        self._base = nominal
        self.samples_per_aggr = max(nominal.aggr_interval // nominal.sample_interval, 1)
        self.floor = min(SAMPLE_FLOOR, self.samples_per_aggr)
        self.levels = ladder(self.samples_per_aggr, self.floor)
        self.level = 0
        self._clock = clock
        self._history: deque[tuple[int, int]] = deque(maxlen=WINDOW + 1)
        self._since_change = 0
        self._aggrs = 0
        # level -> (usage measured there, when)
        self._cost: dict[int, tuple[float, int]] = {}
        self.usage: float | None = None  # % of a core over the last window
        # What the budget did, for the sidecar and the summary: checks made
        # per region per aggregation (the last one's, and the run's mean).
        self._checks_sum = 0.0
        self._checks_n = 0
        self._scale_sum = 0
        self.checks_min = float(self.samples_per_aggr)
        self.checks_mean = float(self.samples_per_aggr)
        # The level at the start and at each change, for the sidecar (`take_log`).
        self.log: list[dict] = [{"time_ns": clock(time.CLOCK_MONOTONIC), **self.describe()}]
        self._scale_max = 1
        self._samples_low = self.samples_per_aggr  # the fewest samples an aggregation had
        self._checks_low = float(self.samples_per_aggr)

    @property
    def current(self) -> Level:
        return self.levels[self.level]

    def attrs(self, base: Attrs | None = None) -> Attrs:
        """The attributes in force: `base`'s intervals (the nominal ones, or those an
        intervals goal chose), the aggregation's times the level's scale, the
        sampling interval a level's share of it."""
        if base is not None:
            self._base = base
        base, lv = self._base, self.current
        if lv.scale == 1 and lv.samples in (0, self.samples_per_aggr):
            return base
        if lv.samples in (0, self.samples_per_aggr):
            return replace(base, sample_interval=base.sample_interval * lv.scale,
                           aggr_interval=base.aggr_interval * lv.scale)
        # Whole steps: an aggregation a microsecond or so short of the scaled one.
        sample = base.aggr_interval * lv.scale // lv.samples
        return replace(base, sample_interval=sample, aggr_interval=sample * lv.samples)

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
        self._cost[self.level] = (self.usage, w1)
        old = self.level
        if self.usage > self.max_cpu and self.level < len(self.levels) - 1:
            ratio = self.usage / self.max_cpu
            jump = 1 + (ratio > 1.5) + (ratio > 3)
            self.level = min(self.level + jump, len(self.levels) - 1)
        elif self.usage < self.max_cpu * LOWER and self.level > 0:
            below = self._cost.get(self.level - 1)
            if below is None or below[0] <= self.max_cpu or w1 - below[1] > RETRY_AFTER_NS:
                self.level -= 1
        if self.level == old:
            return False
        self._since_change = 0
        self.log.append({"time_ns": w1, **self.describe()})
        # The window restarts: the new level's cost, not the old one's.
        last = self._history[-1]
        self._history.clear()
        self._history.append(last)
        return True

    def take_log(self) -> list[dict]:
        """The log's messages since the last call."""
        out, self.log = self.log, []
        return out

    def steady(self, counts: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Which regions read all-or-nothing in both of their last two aggregations."""
        full = SATURATED * self.samples_per_aggr
        return ((counts == 0) & (before == 0)) | ((counts >= full) & (before >= full))

    def periods(self, counts: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
        """Each region's period in steps, from its counts in the last two aggregations."""
        if before is None:
            before = counts
        return np.where(self.steady(counts, before), self.current.steady_period,
                        1).astype(np.int64)

    def note_checks(self, checks: np.ndarray) -> None:
        """Record the checks each region got in the aggregation that ended (the ones made)."""
        if len(checks):
            self.checks_mean = float(checks.mean())
            self.checks_min = float(checks.min())
        self._checks_sum += self.checks_mean
        self._checks_n += 1
        self._scale_sum += self.current.scale
        self._scale_max = max(self._scale_max, self.current.scale)
        self._samples_low = min(self._samples_low, self.current.samples or self.samples_per_aggr)
        self._checks_low = min(self._checks_low, self.checks_min)

    @property
    def run_checks_mean(self) -> float:
        """Checks per region per aggregation, averaged over the run so far."""
        return self._checks_sum / self._checks_n if self._checks_n else self.checks_mean

    @property
    def run_scale_mean(self) -> float:
        """The intervals' multiple, averaged over the run's aggregations."""
        return self._scale_sum / self._checks_n if self._checks_n else 1.0

    def describe(self) -> dict:
        """The current level and the intervals in force, for the sidecar."""
        lv, attrs = self.current, self.attrs()
        return {"max_cpu": self.max_cpu, "level": self.level, "cpu": self.usage,
                "sampling_scale": lv.scale, "steady_period": lv.steady_period,
                "samples_per_aggr": attrs.aggr_interval // attrs.sample_interval,
                "sample_us": attrs.sample_interval, "aggr_us": attrs.aggr_interval,
                "checks_per_region_mean": self.checks_mean,
                "checks_per_region_min": self.checks_min,
                "sample_floor": self.floor,
                "nominal_checks": self.samples_per_aggr}

    def status(self) -> str:
        """The live status line's part: checks per region and the aggregation interval now."""
        return (f"   checks {self.checks_mean:.1f}/{self.samples_per_aggr} per aggr"
                f"   aggr {self.attrs().aggr_interval / 1000:g} ms")

    def summary(self) -> str:
        """What the budget traded over the run, for the summary line."""
        mean, nominal = self.run_checks_mean, self.samples_per_aggr
        if mean >= nominal and self._scale_max == 1 and self._samples_low >= nominal:
            return f" (budget {self.max_cpu:g}%: every sample taken)"
        text = (f" (budget {self.max_cpu:g}%: {mean:.1f} checks per region per aggregation "
                f"on average, of {nominal}, never under {self._checks_low:g}")
        if self._samples_low < nominal:
            text += f"; down to {self._samples_low} samples per aggregation"
        if self._scale_max > 1:
            text += (f"; aggregation interval up to {self._scale_max}x the nominal, "
                     f"{self.run_scale_mean:.1f}x on average")
        return text + ")"


def count_before(old: tuple[np.ndarray, np.ndarray] | None, start: np.ndarray) -> np.ndarray:
    """Each region's count in an earlier aggregation, `old` = (starts, counts) of its
    regions: the count of the region that held this region's start (0 without one)."""
    if old is None or not len(old[0]):
        return np.zeros(len(start), dtype=np.int64)
    idx = np.searchsorted(old[0], start, side="right") - 1
    return old[1][np.clip(idx, 0, len(old[0]) - 1)].astype(np.int64)


def counts_from_checks(hits: np.ndarray, checks: np.ndarray, before: np.ndarray,
                       samples: int, floor: int) -> np.ndarray:
    """Each region's count for an aggregation of `samples` nominal samples, from its checks.

    `hits` of `checks` made found the page young: the count is hits x samples
    / checks, so it keeps DAMON's units whatever the checks were.  A region
    checked fewer than `floor` times gets its missing checks from `before`,
    its count in the aggregation before: it is never read as unaccessed for
    lack of checks.
    """
    checks = checks.astype(np.int64)
    full = hits * samples / np.maximum(checks, 1)
    filled = (hits * samples + before * np.maximum(floor - checks, 0)) / floor
    counts = np.rint(np.where(checks >= floor, full, filled)).astype(hits.dtype)
    return np.minimum(counts, samples)
