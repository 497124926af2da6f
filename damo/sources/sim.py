"""Records of a simulated workload from damo's region engine (`--ops sim`).

The operations (`damo.ops.sim.SimOperations`) know what the workload did,
so this source also writes the ground truth (`--truth`): each phase run as
it finishes, and at the end the unfinished one, cut where monitoring ended.
"""

from typing import TYPE_CHECKING, Any

from damo.sources.engine import EngineSource

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.ops.sim import SimOperations
    from damo.sources import RecordOptions, Sink
    from damo.workload.truth import TruthLog


class SimSource(EngineSource):
    TAKES = EngineSource.TAKES | {"truth", "max_cpu"}

    def __init__(self, options: "RecordOptions"):
        from damo.ops import sim

        self.check_adjust(options)
        setup = sim.setup(options.targets)
        self.ops: SimOperations = setup.ops
        if options.max_cpu is not None:  # a budget on the CPU a real recording would use
            self.ops.max_cpu = options.max_cpu
        self.truth_path = options.truth
        self._truth: TruthLog | None = None
        self._truth_next_ns = 0
        super().__init__(self.context(options, setup.ops, setup.target_ids, setup.clock))

    def run(self, sink: "Sink") -> None:
        if self.truth_path is not None:
            from damo.workload.truth import TruthLog

            self._truth = TruthLog(self.truth_path)
        try:
            super().run(sink)
        finally:
            if self._truth is not None:
                self._truth.close()

    def _before_start(self, ctx: "Context") -> bool:
        self._truth_next_ns = ctx.clock.now_ns()
        return super()._before_start(ctx)

    def _after_aggregation(self, ctx: "Context") -> bool:
        self._write_truth(ctx.clock.now_ns(), final=False)
        return super()._after_aggregation(ctx)

    def _before_terminate(self, ctx: "Context") -> None:
        self._write_truth(ctx.clock.now_ns(), final=True)
        super()._before_terminate(ctx)

    def _write_truth(self, now: int, final: bool) -> None:
        """Log the phase runs finished by `now`; when `final`, the unfinished one cut at `now`."""
        if self._truth is None:
            return
        for run in list(self.ops.runs(self._truth_next_ns, now)):
            if run.end_ns <= now:
                self._truth.write(self.ops.truth_run(run))
                self._truth_next_ns = run.end_ns
            elif final and run.start_ns < now:
                self._truth.write(self.ops.truth_run(run, end_ns=now))
                self._truth_next_ns = now

    def messages(self, now_ns: int, moment: str) -> list[tuple[str, dict[str, Any]]]:
        return super().messages(now_ns, moment) + \
            self.budget_messages(self.ops.budget, now_ns, moment)

    def status(self) -> str:
        return "" if self.ops.budget is None else self.ops.budget.status()

    def summary(self, cpu_share: float | None) -> str:
        return "" if self.ops.budget is None else self.ops.budget.summary()

    def what(self) -> str:
        return f"the simulated workload {self.ops.workload.path}"
