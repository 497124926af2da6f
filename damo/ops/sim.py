"""`sim`: a synthetic process running a workload description, in virtual time.

The workload's regions are laid out as a process's mappings would be: a small
heap-like mapping at low addresses, a large gap, the workload's regions in
mmap-like addresses (in file order, `gap_before` left unmapped before each),
another large gap and a small stack-like mapping at the top.  A sampled page
is young when the phase running during the sampling interval accessed it:
with the phase's probability for the page's region, never outside the
workload's regions.  A phase change inside an interval counts the accesses
of both phases.  The target is valid until the phases have run once (forever
with `loop = true`), as a generator process would exit.

Time is the context's clock, which kdamond advances: a virtual clock makes a
minute of monitoring take about a second.
"""

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from damo.core.clock import VirtualClock
from damo.core.context import PAGE_SIZE
from damo.core.target import ADDR_DTYPE, Target
from damo.errors import WorkloadError
from damo.ops.common import VaddrOperations
from damo.ops.vaddr.budget import SAMPLE_FLOOR, CpuBudget, count_before, counts_from_checks
from damo.workload.model import Phase, Workload

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.workload.truth import TruthRun

SIM_TARGET_ID = 1


class Costs(NamedTuple):
    """What a real recording costs on the project's VMs (../shared/notes/kernel-facts.md)."""

    wakeup_ns: int = 60_000  # a sampling step's wake-up of the native loop
    check_ns: int = 700  # the sample program's walk of one region's page
    clear_ns: int = 7_500  # process_madvise(MADV_COLD) of a young page
    aggregation_ns: int = 700_000  # the per-aggregation Python (merge, split, record)
    region_ns: int = 2_000  # and per region


COSTS = Costs()
HEAP_START = 0x5555_5555_4000
HEAP_SIZE = 132 << 10
MMAP_BASE = 0x7F00_0000_0000
STACK_END = 0x7FFE_0000_0000
STACK_SIZE = 132 << 10


class Mapping(NamedTuple):
    name: str
    start: int
    end: int


class PhaseRun(NamedTuple):
    index: int  # in workload.phases
    phase: Phase
    start_ns: int
    end_ns: int


def layout(workload: Workload) -> list[Mapping]:
    """The sim process's mappings: heap, the workload's regions, stack."""
    maps = [Mapping("[heap]", HEAP_START, HEAP_START + HEAP_SIZE)]
    # MMAP_BASE is page aligned, so the offsets' page rounding holds for addresses too.
    addr = MMAP_BASE
    for region, start, end in workload.layout(PAGE_SIZE):
        maps.append(Mapping(region.name, MMAP_BASE + start, MMAP_BASE + end))
        addr = MMAP_BASE + end
    stack_start = STACK_END - STACK_SIZE
    if addr > stack_start - PAGE_SIZE:
        raise WorkloadError(
            f"{workload.path}: the regions and gaps ({addr - MMAP_BASE} bytes) do not fit "
            f"the simulated address space ({stack_start - PAGE_SIZE - MMAP_BASE} bytes)"
        )
    maps.append(Mapping("[stack]", stack_start, STACK_END))
    return maps


class SimOperations(VaddrOperations):
    name = "sim"

    def __init__(self, workload: Workload):
        self.workload = workload
        self.maps = layout(workload)
        self.map_starts = np.array([m.start for m in self.maps], dtype=ADDR_DTYPE)
        self.map_ends = np.array([m.end for m in self.maps], dtype=ADDR_DTYPE)
        index = {m.name: i for i, m in enumerate(self.maps)}
        # per phase: the probability of each mapping's pages being accessed
        self.phase_probs = []
        for phase in workload.phases:
            probs = np.zeros(len(self.maps))
            for name, p in phase.access.items():
                probs[index[name]] = p
            self.phase_probs.append(probs)
        ends = np.cumsum([p.duration_ms * 1_000_000 for p in workload.phases])
        self.phase_ends = ends  # relative to the start of a pass
        self.pass_ns = int(ends[-1])
        self.ctx: Context | None = None
        self.start_ns = 0
        self.sample_start_ns = 0
        # `damo record --max-cpu` (0: none): the vaddr operations' CPU budget,
        # applied the same way (steady regions checked less often down to the
        # floor, then both intervals longer; counts from the checks made), to
        # the CPU a real recording of this workload would use (`COSTS`).
        self.max_cpu = 0.0
        self.budget: CpuBudget | None = None
        self.cpu_ns = 0  # the modelled recorder's CPU so far
        self.step = 0  # within the aggregation
        self._periods: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (period, phase)
        self._checks: dict[int, np.ndarray] = {}  # id -> checks made of each region
        self._counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (start, count)
        self._counts_before: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._samples, self._floor = 1, 1

    @property
    def regions(self) -> list[Mapping]:
        """The workload's regions as laid out (no heap, no stack)."""
        return self.maps[1:-1]

    def _now(self) -> int:
        return self.ctx.clock.now_ns() if self.ctx is not None else self.start_ns

    def init(self, ctx: "Context") -> None:
        self.ctx = ctx
        self.start_ns = ctx.clock.now_ns()
        super().init(ctx)
        self._samples = max(ctx.attrs.aggr_interval // ctx.attrs.sample_interval, 1)
        self._floor = min(SAMPLE_FLOOR, self._samples)
        if self.max_cpu > 0:
            self.budget = CpuBudget(self.max_cpu, ctx.attrs, clock=self._budget_clock)

    def _budget_clock(self, clock_id: int) -> int:
        """The budget's clocks: the run's (virtual) time, and the modelled CPU time."""
        return self.cpu_ns if clock_id == time.CLOCK_PROCESS_CPUTIME_ID else self._now()

    def check_accesses(self, ctx: "Context") -> int:
        """Check the regions due this step (all, without a budget); count hits and checks.

        At the end of an aggregation the counts are those of the checks made
        (`counts_from_checks`), as the vaddr operations compute them.
        """
        cost = COSTS
        self.cpu_ns += cost.wakeup_ns
        for t in ctx.targets:
            if not t.nr_regions:
                continue
            young = self.young(t)
            plan = self._periods.get(t.id)
            if plan is not None and len(plan[0]) == t.nr_regions:
                due = (self.step + plan[1]) % plan[0] == 0
            else:
                due = np.ones(t.nr_regions, dtype=bool)
            checks = self._checks.get(t.id)
            if checks is None or len(checks) != t.nr_regions:
                # New regions (an update): as if checked at every step so far.
                checks = self._checks[t.id] = np.full(t.nr_regions, self.step, dtype=np.int64)
            hit = young & due
            t.nr_accesses += hit
            checks += due
            self.cpu_ns += cost.check_ns * int(due.sum()) + cost.clear_ns * int(hit.sum())
        self.step += 1
        if not ctx.aggregating:
            return max((int(t.nr_accesses.max()) for t in ctx.targets if t.nr_regions),
                       default=0)
        highest, made = 0, []
        for t in ctx.targets:
            if not t.nr_regions:
                continue
            checks = self._checks[t.id]
            t.nr_accesses[:] = counts_from_checks(
                t.nr_accesses, checks, count_before(self._counts.get(t.id), t.start),
                self._samples, self._floor)
            highest = max(highest, int(t.nr_accesses.max()))
            made.append(checks)
            self.cpu_ns += cost.aggregation_ns + cost.region_ns * t.nr_regions
        self._counts_before = self._counts
        self._counts = {t.id: (t.start.copy(), t.nr_accesses.copy())
                        for t in ctx.targets if t.nr_regions}
        if self.budget is not None:
            self.budget.note_checks(np.concatenate(made) if made else np.zeros(0))
        return highest

    def take_budget(self) -> list[dict]:
        """The budget's level at the start and at each change since, for the sidecar."""
        return [] if self.budget is None else self.budget.take_log()

    def reset_aggregated(self, ctx: "Context") -> None:
        """No checks yet; the budget's next level and each region's period (after the split)."""
        self.step = 0
        self._checks = {}
        b = self.budget
        if b is None:
            return
        b.after_aggregation()
        ctx.attrs = b.attrs(ctx.base_attrs)
        self._periods = {}
        if b.current.steady_period <= 1:
            return
        for t in ctx.targets:
            periods = b.periods(count_before(self._counts.get(t.id), t.start),
                                count_before(self._counts_before.get(t.id), t.start))
            self._periods[t.id] = (periods, np.arange(t.nr_regions) % periods)

    def mappings(self, target: Target) -> list[tuple[int, int]]:
        return [(m.start, m.end) for m in self.maps]

    def runs(self, start_ns: int, end_ns: int) -> Iterator[PhaseRun]:
        """Phase runs overlapping `[start_ns, end_ns)`, in the run's clock."""
        rel = max(start_ns - self.start_ns, 0)
        first_pass = rel // self.pass_ns
        if not self.workload.loop:
            if first_pass > 0:
                return
        k = int(np.searchsorted(self.phase_ends, rel - first_pass * self.pass_ns, side="right"))
        base = self.start_ns + first_pass * self.pass_ns
        while True:
            if k == len(self.workload.phases):
                if not self.workload.loop:
                    return
                k, base = 0, base + self.pass_ns
            run_start = base + (int(self.phase_ends[k - 1]) if k else 0)
            if run_start >= end_ns:
                return
            yield PhaseRun(k, self.workload.phases[k], run_start, base + int(self.phase_ends[k]))
            k += 1

    def _probabilities(self, start_ns: int, end_ns: int) -> np.ndarray:
        """Per mapping: chance a page was accessed during `[start_ns, end_ns)`."""
        idle = np.ones(len(self.maps))
        for run in self.runs(start_ns, end_ns):
            idle *= 1.0 - self.phase_probs[run.index]
        return 1.0 - idle

    def mkold(self, target: Target) -> None:
        # Nothing to clear: every check draws afresh.  Remember when the interval began.
        self.sample_start_ns = self._now()

    def young(self, target: Target) -> np.ndarray:
        probs = self._probabilities(self.sample_start_ns, self._now())
        addr = target.sampling_addr
        idx = np.searchsorted(self.map_starts, addr, side="right") - 1
        mapped = (idx >= 0) & (addr < self.map_ends[np.maximum(idx, 0)])
        p = np.where(mapped, probs[np.maximum(idx, 0)], 0.0)
        return self.ctx.rng.random(len(addr)) < p

    def truth_run(self, run: PhaseRun, end_ns: int | None = None) -> "TruthRun":
        """The ground-truth line of a phase run (cut short at `end_ns` if given)."""
        from damo.workload.truth import TruthRegion, TruthRun

        regions = tuple(
            TruthRegion(m.name, m.start, m.end, run.phase.access.get(m.name, 0.0))
            for m in self.regions
        )
        end = run.end_ns if end_ns is None else min(run.end_ns, end_ns)
        return TruthRun(run.phase.name, run.start_ns, end, regions)

    def target_valid(self, target: Target) -> bool:
        return self.workload.loop or self._now() - self.start_ns < self.pass_ns


class Setup(NamedTuple):
    ops: SimOperations
    target_ids: list[int]
    clock: VirtualClock


def setup(args: list[str]) -> Setup:
    """`damo record --ops sim WORKLOAD.toml`: one target running the workload."""
    from damo.errors import UsageError
    from damo.workload.load import load

    if len(args) != 1:
        raise UsageError(f"--ops sim takes one workload file, not {len(args)} arguments")
    return Setup(SimOperations(load(args[0])), [SIM_TARGET_ID], VirtualClock())
