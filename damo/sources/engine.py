"""Records from damo's region engine: kdamond driven by operations (`vaddr`, `sim`).

kdamond (`damo.core.kdamond`) runs the context; its callbacks feed the sink:
before_start begins, after_aggregation hands over one record holding every
target (stamped with the end of the aggregation window, in the context's
clock), before_terminate ends, before the operations clean up.  A second
stop request ends the run after the current sample.  What only one kind of
operations knows (a process's command and children, sim's truth) is in the
subclasses, `damo.sources.process` and `damo.sources.sim`.
"""

from typing import TYPE_CHECKING, Any

from damo.sources import Source

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.core.operations import Operations
    from damo.ops.vaddr.budget import CpuBudget
    from damo.sources import RecordOptions, Sink


class EngineSource(Source):
    """The region engine on a prepared context (any operations, or none)."""

    #: The options of damo's region engine; the subclasses add their operations'.
    TAKES = frozenset({"seed", "adjust", "intervals_goal"})

    def __init__(self, ctx: "Context"):
        self.ctx = ctx
        self.clock = ctx.clock
        self.name = "none" if ctx.ops is None else ctx.ops.name
        self._sink: Sink | None = None

    @staticmethod
    def context(options: "RecordOptions", ops: "Operations", target_ids: list[int],
                clock: Any) -> "Context":
        """The context of a run: the options' attributes, seed and adjustment."""
        import numpy as np

        from damo.core.context import DEFAULT_ADJUST, Callbacks, Context

        ctx = Context(options.attrs, ops, Callbacks(), np.random.default_rng(options.seed), clock,
                      adjust=options.adjust or DEFAULT_ADJUST)
        ctx.set_targets(target_ids)
        if options.intervals_goal is not None:
            from damo.core.intervals import IntervalsTuner

            ctx.intervals_tuner = IntervalsTuner(options.intervals_goal)
        return ctx

    @staticmethod
    def check_adjust(options: "RecordOptions") -> None:
        from damo.core.context import check_adjust

        if options.adjust is not None:
            check_adjust(options.adjust, "--adjust")

    def run(self, sink: "Sink") -> None:
        from damo.core.kdamond import kdamond_fn

        ctx = self.ctx
        self._sink = sink
        ctx.callbacks.before_start = self._before_start
        ctx.callbacks.after_aggregation = self._after_aggregation
        ctx.callbacks.before_terminate = self._before_terminate
        try:
            kdamond_fn(ctx)
        except BaseException:
            # Monitoring broke: a command the operations started must not outlive us.
            self.discard()
            raise

    def discard(self) -> None:
        if self.ctx.ops is not None:
            self.ctx.ops.cleanup(self.ctx)

    def interrupt(self) -> None:
        self.ctx.request_stop()

    # kdamond's callbacks

    def _before_start(self, ctx: "Context") -> bool:
        return self._sink.begin(ctx.clock.now_ns())

    def _after_aggregation(self, ctx: "Context") -> bool:
        from damo.records.writer import TargetRegions

        return self._sink.record(
            ctx.clock.now_ns(),
            [TargetRegions(t.id, t.start, t.end, t.nr_accesses, t.age) for t in ctx.targets])

    def _before_terminate(self, ctx: "Context") -> None:
        self._sink.end(ctx.clock.now_ns())

    # what the recording shows

    def target_info(self, target_id: int) -> dict[str, Any]:
        """What the sidecar says of one target."""
        return {"id": target_id}

    def start_fields(self) -> dict[str, Any]:
        from damo.sources import attrs_fields

        return dict(ops=self.name, attrs=attrs_fields(self.ctx.attrs),
                    targets=[self.target_info(t.id) for t in self.ctx.targets], command=None,
                    adjust=self.ctx.adjust)

    def messages(self, now_ns: int, moment: str) -> list[tuple[str, dict[str, Any]]]:
        """The intervals an intervals goal chose (`--monitoring_intervals_goal`)."""
        tuner = self.ctx.intervals_tuner
        return [] if tuner is None else [("intervals", change) for change in tuner.take_log()]

    @staticmethod
    def budget_messages(budget: "CpuBudget | None", now_ns: int,
                        moment: str) -> list[tuple[str, dict[str, Any]]]:
        """The CPU budget's changes and, at the end, its run-long figures (vaddr; sim with
        --max-cpu)."""
        from damo.sources import END

        if budget is None:
            return []
        out: list[tuple[str, dict[str, Any]]] = [("budget", c) for c in budget.take_log()]
        if moment == END:
            out.append(("budget", dict(time_ns=now_ns, **budget.describe(),
                                       run_checks_per_region_mean=budget.run_checks_mean)))
        return out

    def what(self) -> str:
        return f"{self.name} targets " + ", ".join(str(t.id) for t in self.ctx.targets)

    def ended_by(self) -> str | None:
        ops = self.ctx.ops
        if ops is not None and not any(ops.target_valid(t) for t in self.ctx.targets):
            return "target exit"
        return None

