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

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from damo.core.clock import VirtualClock
from damo.core.context import PAGE_SIZE
from damo.core.target import ADDR_DTYPE, Target
from damo.errors import WorkloadError
from damo.ops.common import VaddrOperations
from damo.workload.model import Phase, Workload

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.workload.truth import TruthRun

SIM_TARGET_ID = 1
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
