"""The vaddr operations' sampling: the native loop running the BPF sample program.

Per sample each region's random page is checked and made old through
`damo.sampler.PageSampler`: the BPF sample program walks the pages, counts
and draws, `process_madvise(MADV_COLD)` clears the Accessed bit of the pages
that are young (an old page needs no clearing), whole huge-page leaves at
once.  The targets' region arrays are views of that program's arrays, each
target a slice (`_lay_out`, again whenever merge, split or an update made
new arrays).

One step, merged: the check of sample k and the preparation of sample k+1
are one pass of the program, which counts the previous pages and draws and
stages the next; when the regions changed in between (aggregation, update)
the first step draws and clears afresh.  A page whose bit could not be
cleared (shared with another process) gives a check without evidence.

The program counts, per region, the checks it made and the young ones among
them; at the end of an aggregation `_to_counts` turns the two into the
region's count in units of the aggregation's samples (budget.py's
`counts_from_checks`), so a region checked less often than nominal (the CPU
budget, a late step) reads what its checks found, never less.

The native loop (`damo/sampler/_loop.c`, required: the step exists only
there) runs, as `run_samples`, every sample up to the next aggregation or
update as one call with the GIL released; the steps it cannot finish itself
(an advice the kernel stopped short, a failed walk, an exit) it hands back,
and this module finishes that one step with one program pass (`_sample`),
which also remembers the shared pages it finds (the loop does not: their
samples are not counted either way).  An aggregation
waits for the regions checked fewer than the floor's times (`_make_up`).
The CPU budget (`--max-cpu`, budget.py) sets each region's period and the
intervals before each aggregation interval.

With `--checks kernel` (`use_kernel_checks`) the checks run in the kernel
instead, on a periodic perf event (damo.sampler.tick) whose period is the
sampling interval in force (an intervals goal tunes it), and `run_samples`
is `_tick_samples`: no budget applies.  Its counts are of the checks made
too, summed over the aggregation's calls; the aggregation waits for the
regions checked fewer than the floor's times (`_tick_make_up`), and a
region still short gets its missing checks from its last count
(`counts_from_checks`), never read as unaccessed.  A target that may come under
memory pressure is looked at between the tick's wakes (`_tick_look`), as
between the native loop's spans.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from damo.core.target import Target
from damo.errors import PlatformError
from damo.ops.vaddr.budget import (
    DEFAULT_MAX_CPU,
    MAX_PERIOD,
    SAMPLE_FLOOR,
    CpuBudget,
    count_before,
    counts_from_checks,
)
from damo.ops.vaddr.pressure import WATCH_NS
from damo.ops.vaddr.process import Process
from damo.sampler import TargetGone, native
from damo.sampler.walker import (
    CHECKS_NO_EVIDENCE_SHIFT,
    REGION_FILE,
    REGION_MAY_SHARE,
    REGION_NO_CLEAR,
    REGION_PERIOD_SHIFT,
    REGION_PHASE_SHIFT,
    SAMPLE_AHEAD,
)

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.sampler.tick import Look
    from damo.sampler.walker import Walker


# Region flags of what the region overlaps, kept whatever the plan sets.
REGION_KIND = REGION_MAY_SHARE | REGION_FILE


def overlaps(start: np.ndarray, end: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Which regions [start, end) overlap any of `ranges` ((N, 2), sorted, disjoint)."""
    if not len(ranges):
        return np.zeros(len(start), dtype=bool)
    # The first range ending after each region's start must begin before its end.
    i = np.searchsorted(ranges[:, 1], start, side="right")
    hit = i < len(ranges)
    hit[hit] = ranges[i[hit], 0] < end[hit]
    return hit


def watched_for_pressure(live: list[tuple[Target, Process]]) -> list[int]:
    """Which of `live` to look at within aggregations for memory pressure (pressure.py):
    file mappings, a cgroup with a limit, no relief yet."""
    return [k for k, (_, p) in enumerate(live)
            if len(p.file_ranges) and p.pressure.watching(p.relief)]


def relief_starts(p: Process, now_ns: int) -> bool:
    """A look within an aggregation: whether it starts `p`'s relief (its cgroup reclaimed
    at its limit since the last look); `p.relief` is then set."""
    if p.relief or not p.valid or not p.pressure.reclaimed(now_ns):
        return False
    p.relief = True
    return True


def carried(old_start: np.ndarray, old_end: np.ndarray, old: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> np.ndarray:
    """Per region [start, end), the value `old` held for the old region it overlaps first
    (0 without one): what survives an update, which drops, stretches or adds regions
    at the mappings' edges and keeps the others."""
    if not len(old_start) or not len(start):
        return np.zeros(len(start), dtype=np.int64)
    i = np.searchsorted(old_end, start, side="right")
    i_ok = np.minimum(i, len(old_end) - 1)
    keep = (i < len(old_end)) & (old_start[i_ok] < end)
    return np.where(keep, old[i_ok], 0)


def first_step(deadline_ns: int, interval: int, now: int) -> int:
    """When the first step of a run of the native loop to `deadline_ns` comes, `now`
    being when it draws and clears its first samples.

    On the deadline's grid of steps (`deadline_ns` less whole intervals), so the
    run's last step is the deadline's: the work between two runs (the
    aggregation, an update) shortens the first window instead of moving every
    step.  Anchored on `now` instead, each aggregation's end carried the last
    one's lateness plus that work, up to a whole sampling interval (a third of
    the aggregation at the budget's 3 samples), and a change of the intervals
    dropped or added it at once: records 0.3x and 2x apart (docs/testing.md).
    The first window is at least half an interval (a shorter one would read
    cold); a run already that late starts a whole interval from now.
    """
    room = deadline_ns - now - interval // 2
    if room < 0:
        return now + interval
    return deadline_ns - room // interval * interval


class Sampling:
    """The sampling half of `VaddrBpfOperations` (a mixin: it shares the processes)."""

    walker: Walker
    procs: dict[int, Process]
    colocate: bool

    def _init_sampling(self) -> None:
        # The last check drew the next sample of every target and cleared it.
        self.ahead = False
        # The native loop (damo/sampler/_loop.c), required.
        self._native = native.loop()
        # `damo record --max-cpu` (0: none): the budget, made by init().
        self.max_cpu = DEFAULT_MAX_CPU
        self.budget: CpuBudget | None = None
        self.step = 0  # the native loop's step within the aggregation interval
        self._done_at: int | None = None  # when the last deadline's check ran
        self._next_ns = 0  # the pending step's time, after an interrupted run
        # id -> (start, count) of the last aggregation's regions, and of the one before
        self._counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._counts_before: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Samples per aggregation at the nominal attributes (what counts are in units of),
        # and the least checks per region per aggregation.
        self._samples = 1
        self._floor = 1
        self._replan = True
        self._steps = 1  # steps per aggregation at the intervals in force (the plan's)
        self._laid_out_regions = 0  # regions in the program's arrays, all targets
        # target id -> (checks with evidence, checks made) per region, of the
        # regions of the last aggregation before merge: what its counts rest on.
        self.last_checks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Per-sample checks in the kernel (damo.sampler.tick), loaded by
        # use_kernel_checks() and attached at init; None: the native loop samples.
        self.tick = None
        # The kernel checks' sums of the aggregation so far, per target id:
        # (start, end, (hits, checks, uncleared) per region).
        self._tick_sums: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # Sampling intervals the aggregations waited for regions under the
        # floor, over the run (both paths); and the waits not yet in the
        # sidecar, (steps, ns) per aggregation that waited (`take_waits`).  The one
        # count of them: the summary and the sidecar's "wait" messages read it.
        self.makeup_steps = 0
        self.nr_waits = 0  # aggregations that waited, and their waits' wall time, run-long
        self.waited_ns = 0
        self._waits: list[tuple[int, int]] = []

    def _start_sampling(self, ctx: Context) -> None:
        """The nominal samples per aggregation, the floor, and the budget (at init)."""
        self._samples = max(ctx.attrs.aggr_interval // ctx.attrs.sample_interval, 1)
        self._floor = min(SAMPLE_FLOOR, self._samples)
        self._steps = self._samples
        if self.tick is not None:
            from damo.sampler.tick import refusal

            try:
                self.tick.start()
            except PlatformError as e:
                print(f"damo: warning: {refusal(e)}", file=sys.stderr)
                self.tick.close()
                self.tick = None
            else:
                self.run_samples = self._tick_samples  # type: ignore[method-assign]
        if self.tick is None and self.max_cpu > 0:
            self.budget = CpuBudget(self.max_cpu, ctx.attrs,
                                    extra_ns=lambda: round(self.kernel_seconds() * 1e9))

    def use_kernel_checks(self, interval_us: int) -> None:
        """Check samples in the kernel (damo.sampler.tick): loaded now, before any
        command starts; where the kernel refuses, one line says the native loop samples."""
        from damo.sampler.tick import load_tick_checks

        self.tick, why = load_tick_checks(interval_us)
        if why is not None:
            print(f"damo: warning: {why}", file=sys.stderr)

    def _stop_kernel_checks(self) -> None:
        """Detach the tick program (before the samplers let go of the targets' mm)."""
        if self.tick is not None:
            self.tick.close()
            self.tick = None

    def kernel_seconds(self) -> float:
        """Kernel-side time of damo's attached BPF programs so far (beyond its threads' CPU)."""
        return self.tick.kernel_ns() / 1e9 if self.tick is not None else 0.0

    def _reset_sampling(self, ctx: Context) -> None:
        """Between two aggregations: no checks yet, a new plan, the budget's next level."""
        self.step = 0
        self.walker.regions.nr_checks[:self._laid_out_regions] = 0
        self._replan = True
        if self.budget is not None:
            self.budget.after_aggregation()
            ctx.attrs = self.budget.attrs(ctx.base_attrs)

    def _laid_out(self, ctx: Context) -> bool:
        """Whether every sampled target's arrays are still the region arrays' views."""
        for t, p in self._live(ctx):
            if len(p.views) != 4 or not (p.views[0] is t.start and p.views[1] is t.end and
                                         p.views[2] is t.sampling_addr and
                                         p.views[3] is t.nr_accesses):
                return False
        return True

    def _lay_out(self, ctx: Context) -> None:
        """Give each target a slice of the sample program's region arrays.

        The target's arrays become views of its slice: the program counts
        into `nr_accesses` and draws into `sampling_addr` in place, and an
        edit of the regions in place reaches it too.  New arrays (merge,
        split, update) are laid out again before the next sample.
        """
        live = self._live(ctx)
        # Copies first: a slice may move over another target's old one.
        columns = [(t, p, np.array(t.start), np.array(t.end), np.array(t.nr_accesses),
                    self._old_checks(p, t.start, t.end))
                   for t, p in live]
        if sum(t.nr_regions for t, _ in live) > len(self.walker.regions.start):
            raise PlatformError(f"more than {len(self.walker.regions.start)} regions to sample")
        arrays, base = self.walker.regions, 0
        for t, p, start, end, nr_accesses, checks in columns:
            n = len(start)
            views = tuple(a[base:base + n] for a in (arrays.start, arrays.end,
                                                     arrays.sampling_addr, arrays.nr_accesses))
            views[0][:] = start
            views[1][:] = end
            views[3][:] = nr_accesses
            arrays.nr_checks[base:base + n] = checks
            arrays.flags[base:base + n] = \
                np.where(overlaps(start, end, p.shared_ranges), REGION_MAY_SHARE, 0) | \
                np.where(overlaps(start, end, p.file_ranges), REGION_FILE, 0)
            self._relieve(arrays.flags[base:base + n], start, end, p)
            t.start, t.end, t.sampling_addr, t.nr_accesses = views
            p.views, p.base = views, base
            base += n
        self._laid_out_regions = base
        for p in self.procs.values():
            if all(p is not q for _, q in live):  # its old slice is another's now
                p.views = ()

    def _relieve(self, f: np.ndarray, start: np.ndarray, end: np.ndarray, p: Process) -> None:
        """Under memory pressure (p.relief), mark the regions overlapping file mappings.

        They are never cleared (REGION_NO_CLEAR) and checked once per
        aggregation, their checks spread over its steps (pressure.py says why).
        """
        if not p.relief:
            return
        hit = overlaps(start, end, p.file_ranges)
        if not hit.any():
            return
        period = max(1, min(MAX_PERIOD, self._steps))
        phases = np.arange(len(f))[hit] % period
        f[hit] = (f[hit] & REGION_KIND) | REGION_NO_CLEAR | \
            (period << REGION_PERIOD_SHIFT) | (phases << REGION_PHASE_SHIFT)

    def _old_checks(self, p: Process, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The checks made so far of each region [start, end), from the process's old slice.

        Between two aggregations only an update changes the regions: it drops,
        stretches or adds regions at the mappings' edges, keeping the others'
        counts.  A region keeps the checks of the old one it overlaps first
        (itself, when kept); a new one has none yet.
        """
        if len(p.views) != 4:
            return np.zeros(len(start), dtype=np.int64)
        old_start, old_end = p.views[0], p.views[1]
        old = self.walker.regions.nr_checks[p.base:p.base + len(old_start)]
        return carried(old_start, old_end, old, start, end)

    def _sample(self, p: Process, mode: int, n: int, first: int = 0) -> int:
        """One sample-program pass over the process's regions [first, n), then the clearing
        it staged."""
        try:
            staged, staged_bytes, max_nr_accesses = p.sampler.sample(mode, p.base + first,
                                                                     n - first)
            if self.colocate:
                self.cpu.follow(self.walker.owner_cpu)
            if staged:
                p.sampler.clear_staged(staged, staged_bytes)
        except TargetGone:
            p.valid = False
            return 0
        return max_nr_accesses

    def _proc(self, t: Target) -> Process | None:
        """The target's process while it is valid (not exited, not failed)."""
        p = self.procs.get(t.id)
        return p if p is not None and p.valid else None

    def _live(self, ctx: Context) -> list[tuple[Target, Process]]:
        """The targets to sample, with their processes: valid, and with regions."""
        return [(t, p) for t in ctx.targets if t.nr_regions and (p := self._proc(t)) is not None]

    def run_samples(self, ctx: Context, deadline_ns: int) -> int:
        """Every sample up to `deadline_ns`, whose check runs alone, through the native loop.

        At an aggregation's deadline the aggregation waits, a few steps at a
        time, for the regions checked fewer than the floor's times (a stalled
        monitor, late wake-ups); then the checks become counts (`_to_counts`).
        """
        if not self.ahead:  # a deadline passed: the regions may be new
            if not self._laid_out(ctx):
                self._lay_out(ctx)
            self._plan(ctx)
        interval = ctx.attrs.sample_interval * 1000  # in force: the budget may lengthen it
        now = ctx.clock.now_ns()
        next_ns = self._next_ns if self.ahead else \
            first_step(deadline_ns, interval, max(self._done_at or now, now))
        live = self._live(ctx)
        if not live:  # nothing to sample (yet): the deadline's update may find regions
            time.sleep(max(0, deadline_ns - now) / 1e9)
            return 0
        next_ns = self._run_watching(ctx, live, next_ns, interval, deadline_ns)
        self._next_ns = next_ns
        if self.ahead:  # interrupted: kdamond calls again
            return 0
        # The last step ran at next_ns - interval: at the deadline, or up to
        # an interval after it when wake-ups came late.
        self._done_at = max(deadline_ns, next_ns - interval)
        if not ctx.aggregating:
            return 0
        self._make_up(ctx, interval)
        return self._to_counts(ctx)

    def _run_watching(self, ctx: Context, live: list[tuple[Target, Process]], next_ns: int,
                      interval: int, deadline_ns: int) -> int:
        """_run to the deadline; while a target's cgroup may come under memory pressure
        (a limit, no relief yet: pressure.py), in spans of WATCH_NS with a look between,
        its file-backed regions spared clearing from the look that sees reclaim on.

        A span ends with a step's check alone, as at a deadline; the next span
        starts with that step's draw (the native loop's AHEAD pass): the same
        steps as one run makes.
        """
        while True:
            watched = [live[k] for k in watched_for_pressure(live)]
            end = deadline_ns
            if watched:
                end = min(deadline_ns, next_ns + max(1, WATCH_NS // interval) * interval)
            next_ns = self._run(ctx, live, next_ns, interval, end)
            if self.ahead or end >= deadline_ns:  # interrupted, or the deadline's check done
                return next_ns
            now = ctx.clock.now_ns()
            for t, p in watched:
                if relief_starts(p, now):
                    # Not cleared from now; checked as planned (the plan of the next
                    # aggregation checks them once, _relieve).
                    f = self.walker.regions.flags[p.base:p.base + t.nr_regions]
                    f[overlaps(t.start, t.end, p.file_ranges)] |= REGION_NO_CLEAR
            live = self._live(ctx)

    def _run(self, ctx: Context, live: list[tuple[Target, Process]], next_ns: int,
             interval: int, deadline_ns: int) -> int:
        """The native loop to the deadline, finishing in Python the steps it hands back."""
        w = self.walker
        while live:
            reason, index, mode, self.step, next_ns, ahead, staged, nbytes, _, advised, walked = \
                self._native.run(self._config_addr, self._sample_fd, w.iovecs_addr,
                                 [p.sampler.loop_target(p.base, t.nr_regions) for t, p in live],
                                 self.ahead, self.step, next_ns, interval, deadline_ns)
            self.ahead = bool(ahead)
            if reason in (native.R_DONE, native.R_INTR):
                break
            self._finish_step(live, index, reason, mode, staged, nbytes, advised, walked)
            self.ahead = bool(mode & SAMPLE_AHEAD)
            if not self.ahead:
                break
            live = self._live(ctx)
        if self.colocate:
            self.cpu.follow(w.owner_cpu)
        return next_ns

    def _checks(self, p: Process, n: int) -> tuple[np.ndarray, np.ndarray]:
        """A process's regions' checks with evidence, and all checks made, so far."""
        raw = self.walker.regions.nr_checks[p.base:p.base + n]
        evidence = raw & ((1 << CHECKS_NO_EVIDENCE_SHIFT) - 1)
        return evidence, evidence + (raw >> CHECKS_NO_EVIDENCE_SHIFT)

    def _make_up(self, ctx: Context, interval: int) -> None:
        """Let the aggregation wait for the checks its regions miss under the floor.

        Regions checked fewer than the floor's times (steps lost to a stalled
        monitor or late wake-ups) are checked at every step until they have
        them, for at most one more aggregation's steps.  A region whose checks
        were made but gave no evidence (its page shared, its bit kept) is not
        waited for.
        """
        flags = self.walker.regions.flags
        steps = max(ctx.attrs.aggr_interval // ctx.attrs.sample_interval, 1)  # in force
        waited, begun = 0, ctx.clock.now_ns()
        while waited < steps and not ctx.stop_requested:
            short_any, need = False, 0
            for t, p in self._live(ctx):
                _, made = self._checks(p, t.nr_regions)
                # Regions spared clearing (memory pressure) are checked once on purpose.
                relieved = (flags[p.base:p.base + t.nr_regions] & REGION_NO_CLEAR) != 0
                short = (made < self._floor) & ~relieved
                if short.any():
                    short_any = True
                    need = max(need, self._floor - int(made[short].min()))
                    f = flags[p.base:p.base + t.nr_regions]
                    f[short] = (f[short] & REGION_KIND) | (1 << REGION_PERIOD_SHIFT)
            if not short_any:
                break
            need = min(need, steps - waited)
            now = ctx.clock.now_ns()
            self.ahead = False  # draw afresh for the steps to come
            self._run(ctx, self._live(ctx), now + interval, interval, now + need * interval)
            waited += need
            if self.ahead:  # interrupted (a signal): count what was checked
                break
        self.ahead = False
        if waited:
            self._done_at = max(self._done_at or 0, ctx.clock.now_ns())
        self._note_wait(ctx, waited, begun)

    def _note_wait(self, ctx: Context, steps: int, begun_ns: int) -> None:
        """An aggregation that waited `steps` intervals from `begun_ns` on: it ended that
        much later than its interval, which its record's ``"wait"`` message explains."""
        if steps:
            ns = ctx.clock.now_ns() - begun_ns
            self.makeup_steps += steps
            self.nr_waits += 1
            self.waited_ns += ns
            self._waits.append((steps, ns))

    def take_waits(self) -> list[tuple[int, int]]:
        """(steps, ns) of each aggregation that waited since the last call."""
        out, self._waits = self._waits, []
        return out

    def _to_counts(self, ctx: Context) -> int:
        """Turn each region's young checks into its count for the aggregation; the highest.

        A count is in units of the aggregation's samples at the nominal
        attributes (its maximum their ratio, as in DAMON whatever the
        budget did): young checks times samples over checks made.  A region
        checked fewer than the floor's times gets its missing checks from its
        last count, never read as unaccessed for lack of checks.
        """
        n, floor, highest = self._samples, self._floor, 0
        all_checks = []
        self.last_checks = {}
        live = self._live(ctx)
        for t, p in live:
            checks, made = self.last_checks[t.id] = self._checks(p, t.nr_regions)
            counts = counts_from_checks(t.nr_accesses, checks,
                                        count_before(self._counts.get(t.id), t.start), n, floor)
            t.nr_accesses[:] = counts
            if len(counts):
                highest = max(highest, int(counts.max()))
            # Regions spared clearing (memory pressure) are checked once on purpose.
            spared = self.walker.regions.flags[p.base:p.base + t.nr_regions] & REGION_NO_CLEAR
            all_checks.append(made[spared == 0])
        self._counts_before = self._counts
        self._counts = {t.id: (t.start.copy(), t.nr_accesses.copy()) for t, _ in live}
        if self.budget is not None:
            self.budget.note_checks(np.concatenate(all_checks) if all_checks else np.zeros(0))
        return highest

    def _tick_samples(self, ctx: Context, deadline_ns: int) -> int:
        """Every sample up to `deadline_ns`, checked in the kernel (damo.sampler.tick).

        The event's period is the sampling interval in force (an intervals
        goal may have tuned it).  Each call's hits and checks add to the
        aggregation's, per region; at the aggregation the aggregation waits
        for the regions checked fewer than the floor's times (`_tick_make_up`),
        then the checks become counts (`_tick_counts`), as the native loop's do.
        """
        self.tick.set_interval(ctx.attrs.sample_interval)
        # No budget (--max-cpu 0): every page drawn young is cleared at the
        # next tick, as DAMON samples; else SEGMENTS clears per aggregation.
        self._tick_run(ctx, self._live(ctx), deadline_ns, 0.0 if self.max_cpu == 0 else None)
        if not ctx.aggregating:
            return 0
        self._tick_make_up(ctx)
        return self._tick_counts(ctx)

    def _tick_run(self, ctx: Context, live: list[tuple[Target, Process]], deadline_ns: int,
                  busy: float | None, only: dict[int, np.ndarray] | None = None) -> None:
        """run_until over `live` (`only`: target id -> the indices of its regions to
        sample), its hits, checks and uncleared pages added to the aggregation's."""
        from damo.sampler.tick import run_until

        while True:
            if not live:
                time.sleep(max(0, deadline_ns - ctx.clock.now_ns()) / 1e9)
                return
            parts, picks = [], []
            for t, p in live:
                pick = slice(None) if only is None else only[t.id]
                start, end = t.start[pick], t.end[pick]
                # Under memory pressure file-backed regions are spared clearing (_relieve).
                file = overlaps(start, end, p.file_ranges)
                parts.append((p.sampler, start, end,
                              np.where(overlaps(start, end, p.shared_ranges), REGION_MAY_SHARE, 0)
                              | np.where(file, REGION_FILE, 0)
                              | np.where(file & p.relief, REGION_NO_CLEAR, 0)))
                picks.append(pick)
            got, _, gone = run_until(self.tick, parts, deadline_ns, ctx.attrs.sample_interval,
                                     ctx.attrs.aggr_interval, busy=busy,
                                     look=self._tick_look(ctx, live, parts))
            if not gone:
                break
            for k in gone:
                live[k][1].valid = False
            live = [tp for k, tp in enumerate(live) if k not in gone]
        # Nothing got (an arm's TargetGone, yet every target alive): nothing counted.
        for (t, _), pick, (hits, checks, uncleared) in zip(live, picks, got, strict=True) \
                if got else ():
            acc = self._tick_acc(t)
            acc[0, pick] += hits.astype(np.int64)
            acc[1, pick] += checks.astype(np.int64)
            acc[2, pick] += uncleared

    def _tick_look(self, ctx: Context, live: list[tuple[Target, Process]],
                   parts: list) -> Look | None:
        """The look at the reclaim count every WATCH_NS while the tick checks, for the
        targets whose cgroup may come under memory pressure (as `_run_watching`
        looks between the native loop's spans): their file-backed regions are
        spared clearing from the look that sees reclaim on.  None: no target watched."""
        from damo.sampler.tick import Look

        watched = watched_for_pressure(live)
        if not watched:
            return None

        def see() -> None:
            now = ctx.clock.now_ns()
            for k in watched:
                if relief_starts(live[k][1], now):
                    self.tick.spare(k, (parts[k][3] & REGION_FILE) != 0)

        return Look(see, WATCH_NS, time.clock_gettime_ns(time.CLOCK_MONOTONIC))

    def _tick_acc(self, t: Target) -> np.ndarray:
        """The target's (hits, checks, uncleared) per region so far in the aggregation.

        An update may change the regions between two calls: a region keeps the
        sums of the old one it overlaps first (`carried`), a new one has none.
        """
        old = self._tick_sums.get(t.id)
        if old is not None and len(old[0]) == t.nr_regions and \
                np.array_equal(old[0], t.start) and np.array_equal(old[1], t.end):
            return old[2]
        acc = np.zeros((3, t.nr_regions), dtype=np.int64)
        if old is not None:
            for k in range(3):
                acc[k] = carried(old[0], old[1], old[2][k], t.start, t.end)
        self._tick_sums[t.id] = (t.start.copy(), t.end.copy(), acc)
        return acc

    def _tick_make_up(self, ctx: Context) -> None:
        """Let the aggregation wait for the checks its regions miss under the floor.

        Regions checked fewer than the floor's times (clears a stalled damo did
        not make, late ticks, pages that stayed young) are sampled alone, a
        clear at every tick, until they have them, for at most one more
        aggregation's intervals.  A check made without evidence (a shared page
        left young) counts as made, as in the native loop: not waited for.
        """
        interval = ctx.attrs.sample_interval * 1000
        waited, begun = 0, ctx.clock.now_ns()
        while waited < self._samples and not ctx.stop_requested:
            short: dict[int, np.ndarray] = {}
            need = 0
            for t, _ in self._live(ctx):
                acc = self._tick_acc(t)
                made = acc[1] + acc[2]
                idx = np.flatnonzero(made < self._floor)
                if len(idx):
                    short[t.id] = idx
                    need = max(need, self._floor - int(made[idx].min()))
            if not short:
                break
            # One interval more than the checks missing: the first clear waits for a tick.
            need = min(need + 1, self._samples - waited)
            live = [(t, p) for t, p in self._live(ctx) if t.id in short]
            self._tick_run(ctx, live, ctx.clock.now_ns() + need * interval, 0.0, short)
            waited += need
        self._note_wait(ctx, waited, begun)

    def _tick_counts(self, ctx: Context) -> int:
        """The aggregation's counts from its checks made (`counts_from_checks`); the highest."""
        n, floor, highest = self._samples, self._floor, 0
        self.last_checks = {}
        for t, _ in self._live(ctx):
            hits, checks, uncleared = self._tick_acc(t)
            counts = counts_from_checks(hits, checks,
                                        count_before(self._counts.get(t.id), t.start), n, floor)
            t.nr_accesses[:] = counts
            self.last_checks[t.id] = (checks.copy(), checks + uncleared)
            if t.nr_regions:
                highest = max(highest, int(counts.max()))
        self._tick_sums = {}
        self._counts_before = self._counts
        self._counts = {t.id: (t.start.copy(), t.nr_accesses.copy()) for t, _ in self._live(ctx)}
        return highest

    def _finish_step(self, live: list[tuple[Target, Process]], index: int, reason: int,
                     mode: int, staged: int, nbytes: int, advised: int, walked: int) -> None:
        """Finish, with the per-sample code, the step the native loop handed back at `index`
        (its regions before `walked` had their pass)."""
        t, p = live[index]
        try:
            if reason == native.R_GONE:
                p.valid = False
            elif reason == native.R_FAIL:  # the per-sample path says why (or that it exited)
                self._sample(p, mode, t.nr_regions, walked)
            else:  # R_ADVISE: which ranges the kernel refused, the verify, the rest
                p.sampler.finish_advice(mode, p.base, t.nr_regions, staged, nbytes, advised,
                                        walked)
        except TargetGone:
            p.valid = False
        for t2, p2 in live[index + 1:]:
            self._sample(p2, mode, t2.nr_regions)

    @property
    def _config_addr(self) -> int:
        return np.frombuffer(self.walker._config, dtype=np.uint64).ctypes.data

    @property
    def _sample_fd(self) -> int:
        return self.walker._loaded.prog_fds["sample"]

    def _plan(self, ctx: Context) -> None:
        """Each region's period and phase (region_flags): the budget checks steady ones less."""
        b = self.budget
        if not self._replan:
            return
        self._replan = False
        flags = self.walker.regions.flags
        self._steps = max(ctx.attrs.aggr_interval // ctx.attrs.sample_interval, 1)
        for t, p in self._live(ctx):
            n = t.nr_regions
            f = flags[p.base:p.base + n]
            if b is None or b.current.steady_period <= 1:
                f[:] = f & REGION_KIND
            else:
                periods = b.periods(count_before(self._counts.get(t.id), t.start),
                                    count_before(self._counts_before.get(t.id), t.start))
                # Phases spread a period's checks over the steps (and so the clears).
                phases = np.arange(n) % periods
                f[:] = (f & REGION_KIND) | (periods << REGION_PERIOD_SHIFT) | \
                    (phases << REGION_PHASE_SHIFT)
            self._relieve(f, t.start, t.end, p)

    def take_budget(self) -> list[dict]:
        """The budget's level at the start and at each change since, for the sidecar."""
        return [] if self.budget is None else self.budget.take_log()
