"""The real access generator: this process runs a workload file on its own memory.

Layout: the regions are private anonymous mappings in file order at
increasing addresses, each after its `gap_before` of really unmapped space.
One PROT_NONE reservation spanning the layout (plus a spare hole above it,
see `Generator.__init__`) is taken first, the regions are mapped into it
with MAP_FIXED and the rest is unmapped, so no other mapping sits between
the regions when they are laid out.

Transparent huge pages are refused (MADV_NOHUGEPAGE): a monitor samples one
Accessed bit per leaf page, and a 2 MiB leaf would turn "each 4 KiB page
touched with probability p" into "the whole 2 MiB touched with probability
1 - (1 - p)^512", blurring the pattern the file describes.

Pages are faulted in by writing (not reading: a read would map the shared
zero page, whose Accessed bit a monitor cannot clear) before the first
phase, so no phase measures page faults.

Phases: every tick (DAMON's sampling interval by default) each region the
phase accesses gets one pass that writes one byte in each of its pages, or,
with probability p < 1, in each page independently with chance p per tick;
the other regions are not touched at all.  Ticks keep an absolute schedule,
so a late wake-up does not shift later passes; a pass longer than a tick
runs again at once.  Phase ends are scheduled from the start of the first
phase; the truth records the real switch times (CLOCK_MONOTONIC).
"""

import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from damo.errors import WorkloadError
from damo.workload import memory
from damo.workload.model import Phase, Workload
from damo.workload.truth import TruthLog, TruthRegion, TruthRun

TOUCH = 1  # the byte written; any store sets the page's Accessed and Dirty bits
SPARE_HOLE_MIN = 64 << 20


class PlacedRegion(NamedTuple):
    name: str
    start: int
    end: int
    pages: np.ndarray  # one byte per page, a view on the region's memory


class PhasePlan(NamedTuple):
    name: str
    duration_ns: int
    touches: tuple[tuple[np.ndarray, float], ...]  # (pages, probability > 0)
    truth: tuple[TruthRegion, ...]


@dataclass
class Stats:
    """Where the phases' wall time went (ns), and the process's CPU time over it."""

    ticks: int = 0
    touch_ns: int = 0
    sleep_ns: int = 0
    wall_ns: int = 0
    cpu_ns: int = 0

    def summary(self) -> str:
        wall = max(self.wall_ns, 1)
        other = self.wall_ns - self.touch_ns - self.sleep_ns
        per_tick = other / max(self.ticks, 1) / 1000
        return (
            f"{self.ticks} ticks in {self.wall_ns / 1e9:.2f} s: touching "
            f"{100 * self.touch_ns / wall:.1f}%, sleeping {100 * self.sleep_ns / wall:.1f}%, "
            f"other {100 * other / wall:.2f}% ({per_tick:.0f} us per tick); "
            f"CPU {100 * self.cpu_ns / wall:.1f}% of one core"
        )


def available_memory(meminfo: str = "/proc/meminfo") -> int | None:
    """MemAvailable in bytes, None when the kernel does not say."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class Generator:
    """A workload's regions mapped in this process, and the loop that accesses them."""

    def __init__(self, workload: Workload, tick_ns: int = 5_000_000,
                 rng: np.random.Generator | None = None):
        from damo.reports.numbers import format_size

        if tick_ns <= 0:
            raise WorkloadError(f"the tick must be a positive time, not {tick_ns} ns")
        self.workload = workload
        self.tick_ns = tick_ns
        self.rng = rng if rng is not None else np.random.default_rng()
        layout = workload.layout(memory.PAGE_SIZE)
        need = sum(end - start for _, start, end in layout)
        avail = available_memory()
        if avail is not None and need > avail:
            raise WorkloadError(
                f"{workload.path}: the regions need {format_size(need)} of memory, "
                f"but only {format_size(avail)} is available"
            )
        # A hole above the layout, at least as big as its biggest gap: the kernel
        # places new mappings (this interpreter's own allocations) top-down in
        # the highest hole that fits, so they land there, not in the gaps.
        biggest_gap = max(spec.gap_before for spec, _, _ in layout)
        spare = 0
        if biggest_gap:
            spare = max(-(-biggest_gap // memory.PAGE_SIZE) * memory.PAGE_SIZE, SPARE_HOLE_MIN)
        span = layout[-1][2]
        try:
            base = memory.reserve(span + spare)
            regions = []
            mapped_end = 0
            for spec, start, end in layout:
                memory.map_anonymous(base + start, end - start)
                memory.name_anonymous(base + start, end - start, f"damo workload {spec.name}")
                try:
                    memory.advise(base + start, end - start, memory.MADV_NOHUGEPAGE)
                except OSError:
                    pass  # a kernel without THP: nothing to refuse
                regions.append(
                    PlacedRegion(spec.name, base + start, base + end,
                                 memory.page_bytes(base + start, end - start))
                )
                if start > mapped_end:
                    memory.unmap(base + mapped_end, start - mapped_end)
                mapped_end = end
            if spare:
                memory.unmap(base + span, spare)
        except OSError as err:
            raise WorkloadError(
                f"{workload.path}: cannot map the regions ({format_size(need)} in "
                f"{format_size(span)} of address space): {err.strerror}"
            ) from None
        self.regions = tuple(regions)
        self.plans = tuple(self._plan(phase) for phase in workload.phases)
        # Scratch arrays for the per-tick draws, allocated once: a pass allocates nothing.
        drawn = [len(pages) for plan in self.plans for pages, p in plan.touches if p < 1.0]
        self._draw = np.empty(max(drawn, default=0), dtype=np.float32)
        self._mask = np.empty(max(drawn, default=0), dtype=bool)

    def _plan(self, phase: Phase) -> PhasePlan:
        touches = tuple(
            (r.pages, phase.access[r.name])
            for r in self.regions
            if phase.access.get(r.name, 0.0) > 0.0
        )
        truth = tuple(
            TruthRegion(r.name, r.start, r.end, phase.access.get(r.name, 0.0))
            for r in self.regions
        )
        return PhasePlan(phase.name, phase.duration_ms * 1_000_000, touches, truth)

    def fault_in(self) -> None:
        """Write every page of every region once, so the phases run without page faults."""
        for region in self.regions:
            region.pages.fill(TOUCH)

    def touch(self, touches: tuple[tuple[np.ndarray, float], ...]) -> None:
        """One pass: each page of each region written, or with its probability."""
        for pages, p in touches:
            if p >= 1.0:
                pages.fill(TOUCH)
                continue
            n = len(pages)
            draw, mask = self._draw[:n], self._mask[:n]
            self.rng.random(out=draw, dtype=np.float32)
            np.less(draw, p, out=mask)
            # copyto(where=) writes the chosen pages only and reads none of them
            np.copyto(pages, TOUCH, where=mask)

    def run(self, stop: threading.Event, truth: TruthLog | None = None) -> Stats:
        """Run the phases (until `stop` with `loop`), logging each phase run to `truth`.

        When `stop` is set, the phase running is cut there and logged too.
        """
        stats = Stats()
        cpu0 = time.process_time_ns()
        now = scheduled = first = time.monotonic_ns()
        while not stop.is_set():
            for plan in self.plans:
                start = now
                if start - scheduled > self.tick_ns:
                    scheduled = start  # far behind (stopped, overloaded): keep whole phases
                scheduled += plan.duration_ns
                now = self._run_phase(plan, scheduled, stop, stats)
                if truth is not None and now > start:
                    truth.write(TruthRun(plan.name, start, now, plan.truth))
                if stop.is_set():
                    break
            if not self.workload.loop:
                break
        stats.wall_ns = now - first
        stats.cpu_ns = time.process_time_ns() - cpu0
        return stats

    def _run_phase(self, plan: PhasePlan, deadline: int, stop: threading.Event,
                   stats: Stats) -> int:
        """Touch `plan`'s regions every tick until `deadline` or `stop`; the time it ended."""
        now = next_tick = time.monotonic_ns()
        while now < deadline and not stop.is_set():
            if now >= next_tick:
                if plan.touches:
                    self.touch(plan.touches)
                    done = time.monotonic_ns()
                    stats.touch_ns += done - now
                    stats.ticks += 1
                    now = done
                # keep the schedule; after a pass longer than a tick, go again at once
                next_tick = max(next_tick + self.tick_ns, now)
            before = time.monotonic_ns()
            if before < min(next_tick, deadline):
                time.sleep((min(next_tick, deadline) - before) / 1e9)
            now = time.monotonic_ns()
            stats.sleep_ns += now - before
        return now
