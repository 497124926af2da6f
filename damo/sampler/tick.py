"""Per-sample checks in the kernel: a BPF program on a periodic perf event (bpf/tick_check.bpf.c).

The native loop wakes damo every sampling interval (30-90 us on-CPU here per
wake-up, whatever the step does).  Here the check runs in the kernel on a
cpu-clock perf event with the sampling interval as its period, and damo wakes
only to choose and clear new sample pages (`arm`) and to read the counts:

    tc = TickChecks(interval_us=5000)            # PlatformError: the kernel refuses it
    tc.set_targets([(sampler, starts, ends, flags), ...])  # REGION_MAY_SHARE, _NO_CLEAR, _FILE
    tc.start()                                   # attach: ticks begin
    while ...:
        tc.arm()          # per region: a fresh uniform page, walked, cleared if young
        sleep(segment)    # the kernel checks every interval, damo sleeps
        hits, checks = tc.read()[t]              # per region of target t, since the arm
    tc.stats()            # ticks, late ticks, checks, kernel-side time (bpf_stats)
    tc.close()            # detach; also on any exit of the process (fds)

A region's sample page is checked at every tick until found young (a young
bit stays set until cleared, so later checks would say nothing new); the
choice of the page never depends on its state.  So per segment a region
yields either `checks` old readings, or `checks - 1` old ones and a hit.
Scaled to nominal intervals, a region's count over an aggregation is
hits / checks * intervals, from the checks actually made.  Hot regions need
one clear per segment (not per interval); cold ones none.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from damo.errors import PlatformError, UsageError
from damo.linux import bpf_stats, bpf_syscall, btf, perf_event, syscalls
from damo.sampler import program
from damo.sampler import walker as walker_mod
from damo.sampler.page_sampler import PageSampler, TargetGone

SOURCE = Path(__file__).resolve().parents[2] / "bpf" / "tick_check.bpf.c"
MAX_TARGETS = 64
MAX_REGIONS = 1 << 16

PROGRAMS = ("damo_arm", "damo_tick")  # distinct names: `bpftool prog` shows whose they are
MAPS = ("tcfg", "t_mm", "t_base", "t_nr", "t_gen", "r_start", "r_end", "r_addr", "r_state",
        "r_hits", "r_checks", "r_file", "r_leafp", "r_upp", "r_upv", "r_seq", "iovecs",
        "iov_region", "iov_verify")
PROG_TYPES = {"damo_tick": 7}  # BPF_PROG_TYPE_PERF_EVENT; arm: a raw tracepoint program, test-run

# Slots of tcfg (see the C source).
TC_MEM_FD, TC_PAGE_OFFSET, TC_LEVELS, TC_TARGET, TC_MODE, TC_STATUS = 0, 1, 2, 3, 4, 5
TC_NR_IOV, TC_IOV_BYTES, TC_MM_USERS, TC_NR_TARGETS, TC_PERIOD_NS, TC_TICKS = 6, 7, 8, 9, 10, 11
TC_LATE, TC_LAST_NS, TC_CHECKS, TC_WALKS, TC_SELF_NS, TC_NR_STILL, TC_CPU = (
    12, 13, 14, 15, 16, 17, 18)
TC_IN_TICK, TC_REDRAW, TC_DRAWS, TC_VMEMMAP = 19, 20, 21, 22
ARM_DRAW, ARM_GIVEN, ARM_COMMIT, ARM_PENDING, ARM_HOLD, ARM_RELEASE = 1, 2, 4, 8, 16, 32
R_OFF, R_ARMED, R_YOUNG, R_PENDING, R_UNCLEARED, R_LATE = range(6)
ST_OK, ST_BUSY = 0, 3
# Tries of a run that finds the tick running on its target (a tick takes microseconds).
BUSY_TRIES = 10000
# A segment begins this long after a tick: past it, with the arm done well before the next.
ALIGN_NS = 200_000

# The sample program's, but for --colocate's; the large folios' may be missing (-1):
# young pages are then advised alone, as the sample program does.
OFFSETS: btf.Wanted = {
    **{k: v for k, v in walker_mod.OFFSETS.items()
       if k not in walker_mod.OPTIONAL or k in walker_mod.FOLIO_OFFSETS},
    "OFF_MM_LOCK_SEQ": (("mm_struct", "mm_lock_seq"),),
}


@dataclass(frozen=True)
class TickStats:
    ticks: int  # runs of the tick program
    late: int  # runs that came more than 1.5 intervals after the previous one
    checks: int  # Accessed-bit checks made, all regions
    draws: int  # sample pages the tick drew (redraw mode)
    walks: int  # checks whose cached walk no longer held (a walk from the top)
    self_ns: int  # time inside the tick program, by its own clock
    run_time_ns: int  # the kernel's bpf_stats for it (0 when statistics are refused)
    run_cnt: int
    cpu: int  # the CPU the event fires on


@dataclass(frozen=True)
class ArmResult:
    armed: int  # regions whose page is being checked
    cleared: int  # young pages cleared for it
    uncleared: int  # young pages whose clear did not take: no evidence this segment


class TickChecks:
    """Sample pages of any number of targets, checked every interval by a BPF perf-event program."""

    def __init__(self, interval_us: int, cpu: int = 0, use_cache: bool = True,
                 redraw: bool = True):
        self.interval_ns = int(interval_us) * 1000
        self.cpu = cpu
        # A new page after every check (DAMON's sampling: a fresh page each
        # interval), or one page checked until found young (one walk and one
        # clear per region per segment: cheaper, fewer independent pages).
        self.redraw = redraw
        self._event_fd = -1
        self._stats_fd = -1
        self._moved_ns = 0  # when an arm last moved the ticks (`grid_ns`)
        self._targets: list[tuple[PageSampler, int, int, np.ndarray | None]] = []
        offsets, func_ids = btf.kernel_answers(OFFSETS, sorted(program.KFUNCS.values()))
        missing = [name for name, off in offsets.items()
                   if off < 0 and name not in walker_mod.FOLIO_OFFSETS]
        if missing:
            raise PlatformError(f"the kernel's BTF lacks what the tick checks read ({missing[0]})")
        kfunc_flags, kfunc_ids = program.kfuncs(func_ids)
        if not kfunc_ids:
            raise PlatformError("the kernel has no BPF number iterators (Linux 6.4)")
        cflags = [f"-D{m}={o}" for m, o in offsets.items()] + kfunc_flags
        cflags += [f"-DMAX_TARGETS={MAX_TARGETS}", f"-DMAX_REGIONS={MAX_REGIONS}"]
        self._loaded, self.from_cache = program.compile_and_load(
            program.program_text(SOURCE), cflags, kfunc_ids, use_cache, programs=PROGRAMS,
            maps=MAPS,
            prog_types=PROG_TYPES)
        try:
            views = self._loaded.map_views
            self._cfg = memoryview(views["tcfg"]).cast("Q")[:32]

            def arr(name: str, n: int, dtype=np.uint64) -> np.ndarray:
                return np.frombuffer(views[name], dtype=dtype, count=n)

            self._t = {k: arr(k, MAX_TARGETS) for k in ("t_mm", "t_base", "t_nr", "t_gen")}
            self._r = {k: arr(k, MAX_REGIONS) for k in (
                "r_start", "r_end", "r_addr", "r_state", "r_hits", "r_checks", "r_file",
                "r_leafp")}
            self._iovecs = arr("iovecs", 2 * MAX_REGIONS).reshape(MAX_REGIONS, 2)
            self._iov_region = arr("iov_region", MAX_REGIONS)
            self._iov_verify = arr("iov_verify", MAX_REGIONS)
            # Per region since set_targets: sample pages whose clear did not take
            # (shared): checks made without evidence, as the native loop counts them.
            self._uncleared = np.zeros(MAX_REGIONS, dtype=np.int64)
            self._run_arm = bpf_syscall.TestRun(self._loaded.prog_fds["damo_arm"])
            w = walker_mod.walker()  # the direct map's base and the paging depth, checked
            self._cfg[TC_PAGE_OFFSET] = w.page_offset
            self._cfg[TC_LEVELS] = w.levels
            self._cfg[TC_VMEMMAP] = w.vmemmap
            self._cfg[TC_PERIOD_NS] = self.interval_ns
            self._cfg[TC_REDRAW] = int(redraw)
            self._cfg[TC_NR_TARGETS] = 0
            try:
                self._stats_fd = bpf_stats.enable_run_time()
            except OSError:
                self._stats_fd = -1  # the kernel-side time is then the program's own clock
        except BaseException:
            self.close()
            raise

    # --- set-up -------------------------------------------------------------------------

    def spare(self, k: int, regions: np.ndarray) -> None:
        """From the next arm, the `k`-th target's `regions` (a bool array) are not cleared:
        REGION_NO_CLEAR added to its flags (memory pressure seen within a call)."""
        sampler, base, n, flags = self._targets[k]
        flags = np.zeros(n, dtype=np.uint8) if flags is None else flags
        flags[regions] |= walker_mod.REGION_NO_CLEAR
        self._targets[k] = (sampler, base, n, flags)

    def set_targets(self, targets: list[tuple[PageSampler, np.ndarray, np.ndarray,
                                              np.ndarray | None]]) -> None:
        """Lay out every target's regions (start, end arrays; optional flags per region:
        REGION_MAY_SHARE, REGION_NO_CLEAR, REGION_FILE).

        Their checks stop until the next `arm`.
        """
        if len(targets) > MAX_TARGETS:
            raise PlatformError(f"the tick checks hold at most {MAX_TARGETS} targets")
        total = sum(len(s) for _, s, _, _ in targets)
        if total > MAX_REGIONS:
            raise PlatformError(f"the tick checks hold at most {MAX_REGIONS} regions")
        t, r = self._t, self._r
        cfg = self._cfg
        slots = range(max(len(targets), cfg[TC_NR_TARGETS]))
        for slot in slots:  # the tick leaves held slots alone
            self._run(slot, None, ARM_HOLD)
        try:
            self._targets = []
            base = 0
            for slot, (sampler, starts, ends, flags) in enumerate(targets):
                n = len(starts)
                r["r_state"][base:base + n] = R_OFF
                r["r_start"][base:base + n] = starts
                r["r_end"][base:base + n] = ends
                self._uncleared[base:base + n] = 0
                t["t_base"][slot] = base
                t["t_nr"][slot] = n
                # Per region REGION_MAY_SHARE, REGION_NO_CLEAR and REGION_FILE (a bool
                # array: the first); the program reads the last.
                kinds = None if flags is None else np.asarray(flags, dtype=np.uint8)
                r["r_file"][base:base + n] = 0 if kinds is None else \
                    (kinds & walker_mod.REGION_FILE) != 0
                self._targets.append((sampler, base, n, kinds))
                base += n
            cfg[TC_NR_TARGETS] = len(targets)
        finally:
            for slot in slots:
                self._run(slot, None, ARM_RELEASE)

    def start(self) -> None:
        """Attach the tick program to a cpu-clock event on `cpu`: checks begin."""
        if self._event_fd >= 0:
            return
        self._event_fd = perf_event.open_cpu_clock(self.interval_ns, self.cpu)
        try:
            perf_event.attach_bpf(self._event_fd, self._loaded.prog_fds["damo_tick"])
        except BaseException:
            os.close(self._event_fd)
            self._event_fd = -1
            raise

    def set_interval(self, interval_us: int) -> None:
        """A new sampling interval: the perf event's period (and the late-tick rule's).

        An intervals goal tunes the sampling interval between aggregations; the
        event fires at the new period from now (PERF_EVENT_IOC_PERIOD).
        """
        interval_ns = int(interval_us) * 1000
        if interval_ns == self.interval_ns:
            return
        self.interval_ns = interval_ns
        self._cfg[TC_PERIOD_NS] = interval_ns
        if self._event_fd >= 0:
            perf_event.set_period(self._event_fd, interval_ns)
            self._moved_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)

    def close(self) -> None:
        """Detach first (the program reads the mm that the targets' files hold), then unload."""
        if self._event_fd >= 0:
            os.close(self._event_fd)
            self._event_fd = -1
        if self._stats_fd >= 0:
            os.close(self._stats_fd)
            self._stats_fd = -1
        if hasattr(self, "_cfg"):
            self._cfg.release()
        if hasattr(self, "_loaded"):
            self._loaded.close()

    def __enter__(self) -> TickChecks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- per segment ----------------------------------------------------------------------

    def sample_addrs(self, slot: int) -> np.ndarray:
        """Target `slot`'s sample addresses (a view; write it before `arm(draw=False)`)."""
        _, base, n, _ = self._targets[slot]
        return self._r["r_addr"][base:base + n]

    def arm(self, draw: bool = True, pending: bool = False) -> ArmResult:
        """Every region of every target: a new sample page (uniform, `draw`; else the
        address in `sample_addrs`), checked from the next tick; young ones cleared first.
        Zeroes the regions' hits and checks.

        `pending`: only clear and arm the pages the tick drew young (redraw
        mode), and draw afresh for the regions whose page stayed uncleared; the
        rest and the counts are left as they are.
        Raises TargetGone for a target that exited.
        """
        mode = ARM_PENDING if pending else ARM_DRAW if draw else ARM_GIVEN
        armed = cleared = uncleared = 0
        for slot, (sampler, base, n, flags) in enumerate(self._targets):
            a = self._arm_target(slot, sampler, base, n, flags, mode)
            armed += a.armed
            cleared += a.cleared
            uncleared += a.uncleared
        if cleared and self._event_fd >= 0:
            # The ticks restart one interval from now: a page cleared here is
            # checked a whole interval after its clear, and the ticks' phase
            # moves by this arm's delay after its tick.  With ticks on a fixed
            # grid, the moments between a tick and the arm's clear stayed at one
            # phase of a workload's own timer of the same period: an access that
            # always fell there was cleared before every check of its page, and
            # its page never read accessed (docs/sampler.md, "A clear restarts the ticks").
            # The late-tick rule then counts from the restart: the next tick comes
            # an interval after it, however long after the last tick the arm ran.
            perf_event.set_period(self._event_fd, self.interval_ns)
            self._moved_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            self._cfg[TC_LAST_NS] = max(self._cfg[TC_LAST_NS], self._moved_ns)
        return ArmResult(armed, cleared, uncleared)

    def _run(self, slot: int, sampler: PageSampler | None, mode: int) -> None:
        """One run of damo_arm on target `slot` (ARM_HOLD / ARM_RELEASE: no sampler)."""
        cfg = self._cfg
        cfg[TC_MEM_FD] = sampler.loop_target(0, 0)[0] if sampler is not None else 0
        cfg[TC_TARGET] = slot
        cfg[TC_MODE] = mode
        for _ in range(BUSY_TRIES):
            cfg[TC_STATUS] = 1
            self._run_arm()
            if cfg[TC_STATUS] != ST_BUSY:
                break
        else:
            raise PlatformError("the tick program never let go of a target")
        if sampler is None:
            return
        if cfg[TC_STATUS] != ST_OK or (cfg[TC_MM_USERS] == 0 and not sampler.alive()):
            if not sampler.alive():
                raise TargetGone(f"process {sampler.pid} exited")
            raise PlatformError(f"the tick checks' arm cannot resolve process {sampler.pid} "
                                f"(status {cfg[TC_STATUS]})")

    def _arm_target(self, slot: int, sampler: PageSampler, base: int, n: int,
                    flags: np.ndarray | None, mode: int) -> ArmResult:
        cfg = self._cfg
        cfg[TC_NR_IOV] = 0
        cfg[TC_IOV_BYTES] = 0
        self._run(slot, sampler, mode)
        staged, nbytes = cfg[TC_NR_IOV], cfg[TC_IOV_BYTES]
        state = self._r["r_state"]
        if not staged:
            return ArmResult(n, 0, 0)
        owners = self._iov_region[:staged].astype(np.int64)
        kept = None  # the staged pages to clear, when some are spared
        if flags is not None:
            kinds = flags[owners - base]
            self._iov_verify[:staged] |= (kinds & walker_mod.REGION_MAY_SHARE).astype(np.uint64)
            # Memory pressure (REGION_NO_CLEAR, as in the sample program): a spared
            # region's young page is armed uncleared, so the tick counts its bit as it is.
            spare = (kinds & walker_mod.REGION_NO_CLEAR) != 0
            if spare.any():
                self._iov_verify[:staged][spare] = 0
                kept = np.flatnonzero(~spare)
        iovecs = self._iovecs[:staged] if kept is None else self._iovecs[kept]
        if kept is not None:
            nbytes = int(iovecs[:, 1].sum())
        pidfd = sampler.loop_target(0, 0)[1]
        done = not len(iovecs)
        if not done and len(iovecs) <= syscalls.IOV_MAX:
            try:
                done = syscalls.process_madvise_at(pidfd, iovecs.ctypes.data,
                                                   len(iovecs)) == nbytes
            except OSError:
                done = False
        refused = 0
        if not done:
            failed = sampler.advise(iovecs)
            state[owners[failed if kept is None else kept[failed]]] = R_UNCLEARED  # no evidence
            refused = int(failed.sum())
        cfg[TC_NR_STILL] = 0
        self._run(slot, sampler, ARM_COMMIT)
        still = cfg[TC_NR_STILL]
        if refused or still:
            self._uncleared[owners[state[owners] == R_UNCLEARED]] += 1
        return ArmResult(n - refused - still, len(iovecs) - refused - still, refused + still)

    def read(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per target: (hits, checks) per region since its last arm (copies)."""
        r = self._r
        return [(r["r_hits"][b:b + n].copy(), r["r_checks"][b:b + n].copy())
                for _, b, n, _ in self._targets]

    def uncleared(self) -> list[np.ndarray]:
        """Per target: per region, its sample pages whose clear did not take since
        `set_targets` (checks made without evidence; copies)."""
        return [self._uncleared[b:b + n].copy() for _, b, n, _ in self._targets]

    def states(self, slot: int) -> np.ndarray:
        """Target `slot`'s regions' states (R_*), a copy."""
        _, base, n, _ = self._targets[slot]
        return self._r["r_state"][base:base + n].copy()

    # --- cost -----------------------------------------------------------------------------

    def stats(self) -> TickStats:
        cfg = self._cfg
        run_ns = run_cnt = 0
        if self._stats_fd >= 0:
            run_ns, run_cnt = bpf_stats.run_time(self._loaded.prog_fds["damo_tick"])
        return TickStats(cfg[TC_TICKS], cfg[TC_LATE], cfg[TC_CHECKS], cfg[TC_DRAWS], cfg[TC_WALKS],
                         cfg[TC_SELF_NS], run_ns, run_cnt, self.cpu)

    def prog_ids(self) -> list[int]:
        """The kernel's ids of the loaded programs (what `bpftool prog show` lists)."""
        return [bpf_stats.prog_id(fd) for fd in self._loaded.prog_fds.values()]

    def grid_ns(self) -> int:
        """A CLOCK_MONOTONIC time on the ticks' grid (0 before the first tick): the
        last tick, or the moment an arm or a new interval restarted them, if later."""
        return max(self._cfg[TC_LAST_NS], self._moved_ns)

    def kernel_ns(self) -> int:
        """Kernel-side time of the attached program so far: what damo costs beyond its threads.

        The kernel's statistics when they could be enabled, else the program's own clock.
        """
        s = self.stats()
        return s.run_time_ns if self._stats_fd >= 0 else s.self_ns


def default_cpu() -> int:
    """The CPU the tick fires on: $DAMO_TICK_CPU, else 0 (docs/sampler.md, "Which CPU")."""
    value = os.environ.get("DAMO_TICK_CPU", "0")
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"DAMO_TICK_CPU must be a CPU number, not {value!r}") from None


def refusal(e: Exception) -> str:
    """The one line saying why the native loop samples instead."""
    why = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"kernel-side sampling checks unavailable ({why}): using the native loop"


def load_tick_checks(interval_us: int, cpu: int | None = None
                     ) -> tuple[TickChecks | None, str | None]:
    """Loaded (not yet started) tick checks, or None and `refusal`'s line.

    `cpu`: where the tick fires (default: `default_cpu()`).
    """
    try:
        return TickChecks(interval_us, default_cpu() if cpu is None else cpu), None
    except (PlatformError, OSError) as e:
        return None, refusal(e)


def open_tick_checks(interval_us: int, cpu: int | None = None
                     ) -> tuple[TickChecks | None, str | None]:
    """Started tick checks, or None and `refusal`'s line."""
    tc, why = load_tick_checks(interval_us, cpu)
    if tc is None:
        return None, why
    try:
        tc.start()
    except (PlatformError, OSError) as e:
        tc.close()
        return None, refusal(e)
    return tc, None


@dataclass
class Look:
    """What a call looks at while the ticks check (a target's memory pressure):
    `see` every `every_ns` at most, from damo's sleeps (which wake for it)."""

    see: Callable[[], None]
    every_ns: int
    last_ns: int


def _sleep_until(when_ns: int, look: Look | None) -> None:
    """Sleep to `when_ns` (CLOCK_MONOTONIC), waking for `look` whenever it is due."""
    while True:
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if look is not None and now - look.last_ns >= look.every_ns:
            look.last_ns = now
            look.see()
        if now >= when_ns:
            return
        due = when_ns if look is None else min(when_ns, look.last_ns + look.every_ns)
        time.sleep((due - now) / 1e9)


def sample_until(tc: TickChecks, deadline_ns: int, segments: int, busy: float | None = None,
                 look: Look | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """One aggregation's sampling: `segments` arms until `deadline_ns` (CLOCK_MONOTONIC).

    Returns per target (hits, checks) per region, summed over the segments.
    Redraw mode: a new page after every check, the young ones cleared at the
    segments' ends, and (`busy`) at the next tick after a wake that cleared
    more than that share of the regions.  Otherwise each segment a fresh uniform page per region,
    checked at every tick until found young: a region gets `segments`
    independent pages.  A segment starts just after a tick (the program's
    clock is CLOCK_MONOTONIC), so the first check's window is nearly a whole
    interval.  `look`: seen while damo sleeps (it may `spare` regions from the
    next arm).  Raises TargetGone as `arm`.
    """
    if tc.redraw:
        return _sample_until_redraw(tc, deadline_ns, segments, busy, look)
    total: list[tuple[np.ndarray, np.ndarray]] = []

    def add(part: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if not total:
            total.extend(part)
        else:
            total[:] = [(h0 + h, c0 + c) for (h0, c0), (h, c) in zip(total, part, strict=True)]

    for k in range(segments):
        if k:
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            # This segment's share of what is left, on the tick grid.
            end = _on_grid(tc, now + (deadline_ns - now) // (segments - k + 1))
            _sleep_until(end, look)
            add(tc.read())
        tc.arm()
    _sleep_until(deadline_ns, look)
    add(tc.read())
    return total


def _on_grid(tc: TickChecks, when: int) -> int:
    """`when` moved to just after the nearest tick (the tick's clock is CLOCK_MONOTONIC)."""
    last = tc.grid_ns()
    if not last:
        return when
    return last + max(1, round((when - last) / tc.interval_ns)) * tc.interval_ns + ALIGN_NS


def _sample_until_redraw(tc: TickChecks, deadline_ns: int, segments: int,
                         busy: float | None, look: Look | None
                         ) -> list[tuple[np.ndarray, np.ndarray]]:
    """sample_until in redraw mode: the tick draws a page after every check; damo
    clears the young ones at `segments` - 1 points, the last an interval before the
    deadline, so that every page drawn young by then is checked within the call;
    and, with `busy`, an interval after any wake that cleared more than that share
    of the regions (clears are due: DAMON's exact sampling when 0)."""
    tc.arm()
    nr = max(1, sum(n for _, _, n, _ in tc._targets))
    interval = tc.interval_ns
    start = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    last = deadline_ns - interval
    points = [start + (last - start) * k // (segments - 1) for k in range(1, segments)]
    cleared = 0
    while True:
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        # Points a stall (a stopped or descheduled damo) passed: one clear now for them.
        late = bool(points) and points[0] <= now
        points = [t for t in points if t > now]
        nxt = now if late else points[0] if points else None
        if busy is not None and cleared > busy * nr:
            nxt = now + interval if nxt is None else min(nxt, now + interval)
        if nxt is None or nxt > last + ALIGN_NS:
            break
        when = _on_grid(tc, nxt)
        _sleep_until(when, look)
        cleared = tc.arm(pending=True).cleared
    _sleep_until(deadline_ns, look)
    return tc.read()


def counts(hits: np.ndarray, checks: np.ndarray, intervals: int) -> np.ndarray:
    """Counts in nominal sampling intervals from the checks made: hits / checks * intervals.

    A region with no check made has no evidence: -1 (the caller must not read it as cold).
    """
    checks = np.asarray(checks, dtype=np.float64)
    out = np.full(len(checks), -1, dtype=np.int64)
    made = checks > 0
    out[made] = np.rint(np.asarray(hits, dtype=np.float64)[made] / checks[made] * intervals)
    return out


# Segments (fresh sample pages) per aggregation interval: every region gets at
# least this many independent samples, a hot one one check and one clear each.
SEGMENTS = 4

Part = tuple[PageSampler, np.ndarray, np.ndarray, "np.ndarray | None"]


def run_until(tc: TickChecks, parts: list[Part], deadline_ns: int, sample_us: int,
              aggr_us: int, segments_per_aggr: int = SEGMENTS, busy: float | None = None,
              look: Look | None = None
              ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int, list[int]]:
    """A sampling driver's call: every sample of `parts` up to `deadline_ns`, checked in the kernel.

    `parts`: per target (sampler, start, end, flags or None: per region
    REGION_MAY_SHARE, REGION_NO_CLEAR, or a bool array for the first).  `busy`:
    see `sample_until` (0: clear whenever anything is due, DAMON's exact
    sampling); `look`: see `sample_until`.  Returns (per target (hits, checks,
    uncleared: checks made without evidence) per region, the nominal sampling intervals the call
    spanned, the indices of targets found gone:
    then nothing was counted, the caller drops them and calls again).  The
    caller turns hits and checks into counts from the checks made
    (`counts`, or its own rule for regions without a check).
    """
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    interval_ns = sample_us * 1000
    intervals = max(1, round((deadline_ns - now) / interval_ns))
    segments = max(1, min(intervals, round(segments_per_aggr * intervals * sample_us
                                           / max(aggr_us, sample_us))))
    tc.set_targets(list(parts))
    try:
        got = sample_until(tc, deadline_ns, segments, busy, look)
    except TargetGone:
        return [], intervals, [k for k, p in enumerate(parts) if not p[0].alive()]
    return [(h, c, u) for (h, c), u in zip(got, tc.uncleared(), strict=True)], intervals, []
