"""`vaddr`: real processes' virtual address spaces, through the BPF page sampler.

The seed's `damon_va_*` primitives in user space.  Regions come from
`/proc/PID/maps` (three regions, at start and every update interval); per
sample each region's random page is checked and made old through
`damo.sampler.PageSampler`: the BPF sample program walks the pages, counts
and draws, `process_madvise(MADV_COLD)` clears the Accessed bit of the pages
that are young (an old page needs no clearing), whole huge-page leaves at
once.  The targets' region arrays are views of that program's arrays, each
target a slice (`_lay_out`, again whenever merge, split or an update made
new arrays).

One step, merged: the check of sample k and the preparation of sample k+1
are one pass of the program, which counts the previous pages and draws and
stages the next.  `prepare_access_checks` then has nothing to do; when the
regions changed in between (aggregation, update) it draws and clears
afresh.  A page whose bit could not be cleared (shared with another
process) is not counted on the next check: its bit is no evidence.

With the native loop (`damo/sampler/_loop.c`), `run_samples` runs every
sample up to the next aggregation or update as one call with the GIL
released; the steps it cannot finish itself (an advice the kernel stopped
short, a failed walk, an exit) it hands back, and this module finishes them
with the per-sample code above.  Unlike the per-sample path it does not
remember shared pages (their samples are not counted either way).  Its CPU
budget (`--max-cpu`, `damo.core.budget`) sets each region's period and the
step's length before each aggregation interval.

A process that execs gets a new address space; every update interval the
target's current `mm_struct` is compared with the one sampled, and on a
change the sampler and the regions start over.  A process that exits makes
its target invalid; monitoring ends when no target is valid.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from damo.core.clock import MonotonicClock
from damo.core.target import Target
from damo.errors import PlatformError, TargetError, UsageError
from damo.ops.children import Children
from damo.ops.common import (
    AddrRange,
    VaddrOperations,
    apply_three_regions,
    init_regions,
    three_regions,
)
from damo.sampler import TargetGone, native
from damo.sampler.walker import (
    CFG_SCALE,
    MAX_REGIONS,
    REGION_MAY_SHARE,
    REGION_PERIOD_SHIFT,
    REGION_PHASE_SHIFT,
    SAMPLE_AHEAD,
    SAMPLE_CHECK,
)

if TYPE_CHECKING:
    from damo.core.budget import CpuBudget
    from damo.core.context import Context
    from damo.linux.maps import Mapping
    from damo.sampler import PageSampler
    from damo.sampler.walker import Walker

# Not a VMA: the legacy vsyscall page sits far above user space and would
# otherwise make the gap below it the biggest one.
NOT_VMAS = ("[vsyscall]",)
# How long a started command's shell may take to exec it.
EXEC_WAIT_S = 2.0
# How long a command damo started gets to exit after SIGTERM.
TERM_WAIT_S = 5.0
# The largest -m/--maxr: the sample program's arrays hold every region; after
# a split there are at most max_nr_regions, and an update adds at most three.
MAX_NR_REGIONS = MAX_REGIONS - 3


def overlaps(start: np.ndarray, end: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Which regions [start, end) overlap any of `ranges` ((N, 2), sorted, disjoint)."""
    if not len(ranges):
        return np.zeros(len(start), dtype=bool)
    # The first range ending after each region's start must begin before its end.
    i = np.searchsorted(ranges[:, 1], start, side="right")
    hit = i < len(ranges)
    hit[hit] = ranges[i[hit], 0] < end[hit]
    return hit


class Process:
    """What the operations keep per target process."""

    def __init__(self, pid: int, walker: Walker):
        self.pid = pid
        self.walker = walker
        self.valid = True
        self.sampler = self._open()
        self.mm = self.sampler.mm()
        # The target's slice of the region arrays: its first index, and the
        # views (start, end, sampling_addr, nr_accesses) the target was given.
        self.base = 0
        self.views: tuple[np.ndarray, ...] = ()
        self.maps: list[Mapping] | None = None
        self.maps_text = ""  # as read, to tell a change without parsing
        # (start, end) of its MAP_SHARED mappings: pages there may be mapped by
        # other processes too, and keep their Accessed bit through MADV_COLD.
        self.shared_ranges = np.zeros((0, 2), dtype=np.int64)
        # (time_ns, maps) of every change not yet taken by the recorder
        self.maps_log: list[tuple[int, list[Mapping]]] = []

    def _open(self) -> PageSampler:
        from damo.sampler import PageSampler

        return PageSampler(self.pid, self.walker)

    def current_mm(self) -> int | None:
        """The mm_struct the process has now (None when it is gone)."""
        try:
            fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return self.walker.walk(fd, np.empty(0, dtype=np.uint64))[2]
        except Exception:  # noqa: BLE001 - a kernel thread now, or gone: no mm
            return None
        finally:
            os.close(fd)

    def reopen(self) -> None:
        self.sampler.close()
        self.sampler = self._open()
        self.mm = self.sampler.mm()

    def close(self) -> None:
        self.sampler.close()
        self.valid = False


class VaddrBpfOperations(VaddrOperations):
    name = "vaddr"

    def __init__(self, pids: Sequence[int], command: str | None = None):
        from damo.sampler.walker import walker

        self.walker = walker()
        self.pids = list(pids)
        self.command = command
        self.child: subprocess.Popen | None = None
        self.procs: dict[int, Process] = {}
        from damo.sampler.colocate import CpuFollower

        self.cpu = CpuFollower()
        # The last check drew the next sample of every target and cleared it.
        self.ahead = False
        # `damo record --colocate`: sample from the CPU of the target's main
        # thread while there is one target (damo.sampler.colocate says why).
        self.colocate_requested = False
        self.colocate = False
        # Targets that end, and child processes that join (--include_child_tasks).
        self.children = Children(self)
        # The native loop (None: samples from Python, kdamond's per-sample path).
        self._native = native.loop()
        if self._native is None:
            self.run_samples = None  # type: ignore[assignment]
        # `damo record --max-cpu` (0: none): the budget, made by init().
        self.max_cpu = 0.0
        self.budget: CpuBudget | None = None
        self.budget_log: list[dict] = []  # its changes, for the sidecar
        self.step = 0  # the native loop's step within the aggregation interval
        self._done_at: int | None = None  # when the last deadline's check ran
        self._next_ns = 0  # the pending step's time, after an interrupted run
        self._counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (start, count)
        self._plan_counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._replan = True
        self._budget_started = False
        # Per-sample checks in the kernel (damo.sampler.tick), loaded by
        # use_kernel_checks() and attached by init(); None: the native loop samples.
        self.tick = None
        # Open the samplers of existing processes now: errors before any output.
        for pid in self.pids:
            self.procs[pid] = Process(pid, self.walker)

    # starting and ending

    def init(self, ctx: Context) -> None:
        if self.command is not None:
            self._start_command(ctx)
        self.children.start(ctx)
        # Pages a process faulted in just before (one started a moment ago,
        # or gone to sleep since) may wait in another CPU's LRU batch, where
        # MADV_COLD cannot clear them: until the first update's drain they
        # would read accessed on every sample.
        self._drain(ctx)
        for t in ctx.targets:
            self._refresh_maps(ctx, t)
        self._check_colocation()
        super().init(ctx)
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
        if self.tick is None and self._native is not None and self.max_cpu > 0:
            from damo.core.budget import CpuBudget

            self.budget = CpuBudget(self.max_cpu,
                                    ctx.attrs.aggr_interval // ctx.attrs.sample_interval,
                                    extra_ns=lambda: round(self.kernel_seconds() * 1e9))

    def use_kernel_checks(self, interval_us: int) -> None:
        """Check samples in the kernel (damo.sampler.tick): loaded now, before any
        command starts; where the kernel refuses, one line says the native loop samples."""
        from damo.sampler.tick import load_tick_checks

        self.tick, why = load_tick_checks(interval_us)
        if why is not None:
            print(f"damo: warning: {why}", file=sys.stderr)

    def _start_command(self, ctx: Context) -> None:
        """Run the command through /bin/sh and sample it from its exec on."""
        from damo.process_env import given_env

        try:
            self.child = subprocess.Popen(["/bin/sh", "-c", shell_command(self.command)],
                                          env=given_env())
        except OSError as e:
            raise TargetError(f"cannot start /bin/sh: {e.strerror}") from None
        pid = self.child.pid
        if is_simple_command(self.command):
            # The shell execs the command: sample the command's address space.
            shell = os.path.realpath("/bin/sh")
            deadline = time.monotonic() + EXEC_WAIT_S
            while time.monotonic() < deadline and self.child.poll() is None:
                try:
                    if os.readlink(f"/proc/{pid}/exe") != shell:
                        break
                except OSError:
                    break
                time.sleep(0.0005)
        self.pids = [pid]
        ctx.set_targets([pid])
        try:
            self.procs[pid] = Process(pid, self.walker)
        except TargetError:
            # Exited at once (a failing command): nothing to monitor, not an error of damo.
            self.procs.pop(pid, None)

    def cleanup(self, ctx: Context) -> None:
        if self.tick is not None:  # detached before the samplers let go of the targets' mm
            self.tick.close()
            self.tick = None
        self.cpu.release()
        if self.child is not None:
            # Stopped early: the command's monitored descendants end with it
            # (they would outlive the shell).
            for pid in self.children.parents:
                p = self.procs.get(pid)
                if p is not None and p.valid:
                    p.sampler.send_signal(signal.SIGTERM)
        # The walker outlives this run (one per process): leave no budget behind in it.
        self.walker._config[CFG_SCALE] = 1
        self.walker.regions.flags[:] = 0
        for p in self.procs.values():
            p.close()
        if self.child is not None and self.child.poll() is None:
            # Stopped early (duration, signal): damo started the command, damo ends it.
            self.child.terminate()
            try:
                self.child.wait(TERM_WAIT_S)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()

    @property
    def command_status(self) -> int | None:
        """The started command's exit status (negative: killed by that signal), if it ended."""
        return None if self.child is None else self.child.poll()

    def target_valid(self, target: Target) -> bool:
        p = self.procs.get(target.id)
        return p is not None and p.valid

    # targets joining and leaving (damo.ops.children decides which)

    def add_target(self, ctx: Context, pid: int) -> bool:
        """Monitor process `pid` too, from the next sample on; False when it has ended."""
        try:
            self.procs[pid] = Process(pid, self.walker)
        except TargetError:
            return False
        t = Target(pid)
        ctx.add_target(t)
        self._refresh_maps(ctx, t)
        ranges = self._three_regions(ctx, t)
        if ranges is not None:
            init_regions(t, ranges, ctx.attrs.min_nr_regions, ctx.min_region)
        return True

    def drop_target(self, pid: int) -> None:
        """Forget an ended target's process (its last record is written)."""
        p = self.procs.pop(pid, None)
        if p is not None:
            p.close()

    def check_exec(self, ctx: Context, pid: int) -> None:
        """The exec rule (`_check_exec`) for one target, by id, now."""
        for t in ctx.targets:
            if t.id == pid:
                self._check_exec(ctx, t)
                return

    # regions

    def mappings(self, target: Target) -> list[AddrRange] | None:
        p = self.procs.get(target.id)
        if p is None or not p.valid or p.maps is None:
            return None
        return [(m.start, m.end) for m in p.maps if m.path not in NOT_VMAS]

    def _refresh_maps(self, ctx: Context, t: Target) -> bool:
        """Read the target's maps; log them when they changed; whether they did."""
        from damo.linux.maps import parse_maps, read_maps_text

        p = self.procs.get(t.id)
        if p is None or not p.valid:
            return False
        try:
            text = read_maps_text(p.pid)
        except TargetError:
            p.valid = False
            return False
        if p.maps is not None and text == p.maps_text:
            return False
        p.maps, p.maps_text = parse_maps(text), text
        p.shared_ranges = np.array([(m.start, m.end) for m in p.maps if m.perms[3:4] == "s"],
                                   dtype=np.int64).reshape(-1, 2)
        # A shared page may have been unmapped or copied on write since: try it again.
        p.sampler.forget_shared()
        p.maps_log.append((ctx.clock.now_ns(), p.maps))
        return True

    def update(self, ctx: Context) -> None:
        for t in ctx.targets:
            self._check_exec(ctx, t)
            # Same maps, same three regions: fitting the regions to them changes nothing.
            if self._refresh_maps(ctx, t):
                ranges = self._three_regions(ctx, t)
                if ranges is not None:
                    apply_three_regions(t, ranges, ctx.min_region)
        self._drain(ctx)
        self._check_colocation()

    def _drain(self, ctx: Context) -> None:
        """Flush the per-CPU LRU batches, where MADV_COLD cannot clear pages faulted in moments ago.

        MADV_COLD itself drains its own CPU's batch; the others hold at most a
        few pages each, so once at the start and once per update interval is
        plenty.  The batches are the CPUs', not the processes': one drain,
        through any live target, serves them all (each interrupts every CPU).
        """
        for t in ctx.targets:
            p = self.procs.get(t.id)
            if p is None or not p.valid:
                continue
            try:
                p.sampler.drain()
            except TargetError:
                p.valid = False
                continue
            return

    def _check_colocation(self) -> None:
        self.colocate = self.colocate_requested and sum(p.valid for p in self.procs.values()) == 1
        if not self.colocate:
            self.cpu.release()

    def take_maps(self) -> list[tuple[int, int, list[Mapping]]]:
        """(target id, time_ns, maps) of each mappings change since the last call."""
        out = []
        for pid, p in self.procs.items():
            out.extend((pid, ns, maps) for ns, maps in p.maps_log)
            p.maps_log.clear()
        return out

    def _check_exec(self, ctx: Context, t: Target) -> None:
        """Start over on a new address space when the process has exec'ed."""
        p = self.procs.get(t.id)
        if p is None or not p.valid:
            return
        mm = p.current_mm()
        if mm is None:
            p.valid = p.sampler.alive()
            return
        if mm == p.mm:
            return
        try:
            p.reopen()
        except TargetError:
            p.valid = False
            return
        p.maps = None
        self._refresh_maps(ctx, t)
        t.clear()
        ranges = three_regions(self.mappings(t) or [], ctx.min_region)
        if ranges is not None:
            init_regions(t, ranges, ctx.attrs.min_nr_regions, ctx.min_region)

    # sampling

    def _laid_out(self, ctx: Context) -> bool:
        """Whether every sampled target's arrays are still the region arrays' views."""
        for t in ctx.targets:
            p = self.procs.get(t.id)
            if p is None or not p.valid or not t.nr_regions:
                continue
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
        live = [(t, self.procs[t.id]) for t in ctx.targets
                if self.procs.get(t.id) is not None and self.procs[t.id].valid and t.nr_regions]
        # Copies first: a slice may move over another target's old one.
        columns = [(t, p, np.array(t.start), np.array(t.end), np.array(t.nr_accesses))
                   for t, p in live]
        if sum(t.nr_regions for t, _ in live) > len(self.walker.regions.start):
            raise PlatformError(f"more than {len(self.walker.regions.start)} regions to sample")
        arrays, base = self.walker.regions, 0
        for t, p, start, end, nr_accesses in columns:
            n = len(start)
            views = tuple(a[base:base + n] for a in (arrays.start, arrays.end,
                                                     arrays.sampling_addr, arrays.nr_accesses))
            views[0][:] = start
            views[1][:] = end
            views[3][:] = nr_accesses
            arrays.flags[base:base + n] = np.where(
                overlaps(start, end, p.shared_ranges), REGION_MAY_SHARE, 0)
            t.start, t.end, t.sampling_addr, t.nr_accesses = views
            p.views, p.base = views, base
            base += n

    def _sample(self, p: Process, mode: int, n: int) -> int:
        """One sample-program pass over the process's regions, then the clearing it staged."""
        try:
            staged, staged_bytes, max_nr_accesses = p.sampler.sample(mode, p.base, n)
            if self.colocate:
                self.cpu.follow(self.walker.owner_cpu)
            if staged:
                p.sampler.clear_staged(staged, staged_bytes)
        except TargetGone:
            p.valid = False
            return 0
        return max_nr_accesses

    def prepare_access_checks(self, ctx: Context) -> None:
        if self.ahead:  # the last check drew and cleared every target's sample
            self.ahead = False
            return
        if not self._laid_out(ctx):
            self._lay_out(ctx)
        for t in ctx.targets:
            p = self.procs.get(t.id)
            if p is None or not p.valid or not t.nr_regions:
                continue
            self._sample(p, SAMPLE_AHEAD, t.nr_regions)

    def check_accesses(self, ctx: Context) -> int:
        """Count the last sample and prepare the next one, in one BPF pass per target.

        Unless merge/split or an update follows (`ctx.regions_change_next`): then
        the next sample is drawn by `prepare_access_checks` on the new regions.
        """
        ahead = not ctx.regions_change_next
        mode = SAMPLE_CHECK | SAMPLE_AHEAD if ahead else SAMPLE_CHECK
        max_nr_accesses = 0
        for t in ctx.targets:
            p = self.procs.get(t.id)
            if p is None or not p.valid or not t.nr_regions:
                continue
            max_nr_accesses = max(max_nr_accesses, self._sample(p, mode, t.nr_regions))
        # Nothing changes the regions before the next prepare_access_checks
        # unless an aggregation or update comes first, and then ahead is false.
        self.ahead = ahead
        return max_nr_accesses

    # the native loop

    def _live(self, ctx: Context) -> list[tuple[Target, Process]]:
        return [(t, p) for t in ctx.targets
                if (p := self.procs.get(t.id)) is not None and p.valid and t.nr_regions]

    def run_samples(self, ctx: Context, deadline_ns: int) -> int:
        """Every sample up to `deadline_ns`, whose check runs alone, through the native loop."""
        if not self.ahead:  # a deadline passed: the regions may be new
            if not self._laid_out(ctx):
                self._lay_out(ctx)
            self._plan(ctx)
        scale = self.budget.current.scale if self.budget is not None else 1
        ctx.sample_scale = scale
        interval = ctx.attrs.sample_interval * 1000 * scale
        now = ctx.clock.now_ns()
        next_ns = self._next_ns if self.ahead else \
            (self._done_at if self._done_at is not None else now) + interval
        w = self.walker
        live = self._live(ctx)
        if not live:  # nothing to sample (yet): the deadline's update may find regions
            time.sleep(max(0, deadline_ns - now) / 1e9)
            return 0
        while live:
            reason, index, mode, self.step, next_ns, ahead, staged, nbytes, _ = \
                self._native.run(self._config_addr, self._sample_fd, w.iovecs_addr,
                                 [p.sampler.loop_target(p.base, t.nr_regions) for t, p in live],
                                 self.ahead, self.step, next_ns, interval, deadline_ns)
            self.ahead = bool(ahead)
            if reason in (native.R_DONE, native.R_INTR):
                break
            self._finish_step(live, index, reason, mode, staged, nbytes)
            self.ahead = bool(mode & SAMPLE_AHEAD)
            if not self.ahead:
                break
            live = self._live(ctx)
        self._next_ns = next_ns
        if self.colocate:
            self.cpu.follow(w.owner_cpu)
        if self.ahead:  # interrupted: kdamond calls again
            return 0
        self._done_at = deadline_ns
        self._counts = {t.id: (t.start.copy(), t.nr_accesses.copy()) for t, _ in live}
        return max((int(t.nr_accesses.max()) for t, _ in self._live(ctx)), default=0)

    def _tick_samples(self, ctx: Context, deadline_ns: int) -> int:
        """Every sample up to `deadline_ns`, checked in the kernel (damo.sampler.tick)."""
        from damo.sampler.tick import run_until

        while True:
            live = self._live(ctx)
            if not live:
                time.sleep(max(0, deadline_ns - ctx.clock.now_ns()) / 1e9)
                return 0
            ctx.sample_scale = 1
            parts = [(p.sampler, t.start, t.end, overlaps(t.start, t.end, p.shared_ranges),
                      t.nr_accesses) for t, p in live]
            # No budget (--max-cpu 0): every page drawn young is cleared at the
            # next tick, as DAMON samples; else SEGMENTS clears per aggregation.
            top, gone = run_until(self.tick, parts, deadline_ns, ctx.attrs.sample_interval,
                                  ctx.attrs.aggr_interval,
                                  busy=0.0 if self.max_cpu == 0 else None)
            if not gone:
                return top
            for k in gone:
                live[k][1].valid = False

    def kernel_seconds(self) -> float:
        """Kernel-side time of damo's attached BPF programs so far (beyond its threads' CPU)."""
        return self.tick.kernel_ns() / 1e9 if self.tick is not None else 0.0

    def _finish_step(self, live: list[tuple[Target, Process]], index: int, reason: int,
                     mode: int, staged: int, nbytes: int) -> None:
        """Finish, with the per-sample code, the step the native loop handed back at `index`."""
        t, p = live[index]
        try:
            if reason == native.R_GONE:
                p.valid = False
            elif reason == native.R_FAIL:  # the per-sample path says why (or that it exited)
                self._sample(p, mode, t.nr_regions)
            else:  # R_ADVISE: which ranges the kernel refused, and the verify
                p.sampler.clear_staged(staged, nbytes, advised=False)
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

    def reset_aggregated(self, ctx: Context) -> None:
        self.step = 0
        self._plan_counts, self._replan = self._counts, True
        if self.budget is not None and self.budget.after_aggregation():
            self.budget_log.append({"time_ns": ctx.clock.now_ns(), **self.budget.describe()})
        # Targets that ended leave and new children join between two windows.
        self.children.step(ctx)

    def _plan(self, ctx: Context) -> None:
        """Each region's period and phase (region_flags), and the step's length, for the budget."""
        b = self.budget
        if b is None or not self._replan:
            return
        self._replan = False
        self.walker._config[CFG_SCALE] = b.current.scale
        flags = self.walker.regions.flags
        all_periods = []
        for t, p in self._live(ctx):
            n = t.nr_regions
            old = self._plan_counts.get(t.id)
            if old is None or not len(old[0]):
                counts = np.zeros(n, dtype=np.int64)
            else:
                idx = np.searchsorted(old[0], t.start, side="right") - 1
                counts = old[1][np.clip(idx, 0, len(old[0]) - 1)]
            periods = b.periods(counts)
            phases = np.arange(n) % periods
            f = flags[p.base:p.base + n]
            f[:] = (f & REGION_MAY_SHARE) | (periods << REGION_PERIOD_SHIFT) | \
                (phases << REGION_PHASE_SHIFT)
            all_periods.append(periods)
        b.note_checks(np.concatenate(all_periods) if all_periods else np.zeros(0))
        if not self._budget_started:  # the sidecar gets the starting level too
            self._budget_started = True
            self.budget_log.append({"time_ns": ctx.clock.now_ns(), **b.describe()})

    def take_budget(self) -> list[dict]:
        """The budget's changes since the last call, for the sidecar."""
        out, self.budget_log = self.budget_log, []
        return out

    # for the live status

    def rss_bytes(self, target_id: int) -> int | None:
        from damo.linux.footprint import read_footprint

        footprint = read_footprint(target_id)
        return None if footprint is None else footprint[1]


# Words that make a shell command more than one simple command.
_SHELL_OPERATORS = {";", "&", "&&", "|", "||", "(", ")", ";;", "|&", "\n"}
_SHELL_KEYWORDS = {
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done",
    "{", "}", "!", "function", "select",
}
# Builtins that take no program to find (and `exec`, `command`, which take one).
_SHELL_BUILTINS = {
    ".", ":", "alias", "bg", "cd", "command", "echo", "eval", "exec", "exit", "export", "false",
    "fg", "getopts", "hash", "jobs", "kill", "printf", "pwd", "read", "readonly", "return", "set",
    "shift", "test", "[", "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset",
    "wait",
}


def _words(command: str) -> list[str] | None:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: let the shell say so
        return None


def is_simple_command(command: str) -> bool:
    """One command, possibly with assignments and redirections: the shell can exec it."""
    words = _words(command)
    if not words or "\n" in command:
        return False
    return not any(w in _SHELL_OPERATORS for w in words) and words[0] not in _SHELL_KEYWORDS


def shell_command(command: str) -> str:
    """What /bin/sh runs: a simple command is exec'ed, so the pid damo samples is the command's."""
    words = _words(command) or []
    if not is_simple_command(command) or "exec" in words[:1]:
        return command
    return f"exec {command}"


def check_command(command: str) -> None:
    """TargetError when the command's program cannot be found (a simple or compound command)."""
    words = _words(command)
    if words is None:
        raise TargetError(f"cannot parse the command {command!r}: unbalanced quotes")
    if not words or not command.strip():
        raise UsageError("the command to record is empty")
    # Skip leading assignments (`VAR=value cmd`); the program is the first other word.
    program = next((w for w in words if not _is_assignment(w)), None)
    if program is None or program in _SHELL_KEYWORDS or program in _SHELL_BUILTINS \
            or program in _SHELL_OPERATORS or program[0] in "<>$`":
        return
    if "/" in program:
        if not os.path.isfile(program):
            raise TargetError(f"command not found: {program}")
        if not os.access(program, os.X_OK):
            raise TargetError(f"command not executable: {program}")
    elif shutil.which(program) is None:
        raise TargetError(f"command not found: {program} (not in PATH)")


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.isidentifier()


class Setup(NamedTuple):
    ops: VaddrBpfOperations
    target_ids: list[int]
    clock: MonotonicClock


def parse_targets(args: list[str]) -> tuple[list[int], str | None]:
    """Pids, or one command string."""
    if not args:
        raise UsageError("give the pids to record or one command string")
    if all(a.strip().isdigit() for a in args):
        pids = [int(a) for a in args]
        if len(set(pids)) != len(pids):
            raise UsageError("a pid is given twice")
        return pids, None
    if len(args) > 1:
        raise UsageError("give pids, or one command string in quotes (e.g. \"sleep 10\"), "
                         f"not {len(args)} words")
    return [], args[0]


def setup(args: list[str]) -> Setup:
    """`damo record PID...` or `damo record "COMMAND"`: check everything, start nothing yet."""
    from damo.linux import preflight

    pids, command = parse_targets(args)
    preflight.check_all()
    for pid in pids:
        preflight.check_pid(pid)
    if command is not None:
        check_command(command)
    ops = VaddrBpfOperations(pids, command)
    why = native.unavailable()
    if why is not None:
        print(f"damo: warning: {why}", file=sys.stderr)
    return Setup(ops, list(pids), MonotonicClock())

