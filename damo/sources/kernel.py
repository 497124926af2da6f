"""Records of kernel DAMON's own aggregations (`--ops kernel`), passed through to the file.

`damo.ops.kernel.KernelSource` reads the `damon_aggregated` tracepoint of
the kdamonds running (`--attach`, read-only) or of one damo starts and
stops.  A signal ends the run at once (the snapshots already complete are
written), and so does every recorded kdamond stopping.  Kernel DAMON
samples and adjusts by itself: none of the region engine's options apply.
"""

from typing import TYPE_CHECKING, Any

from damo.core.clock import MonotonicClock
from damo.sources import Source

if TYPE_CHECKING:
    from damo.sources import RecordOptions, Sink


class KernelDamonSource(Source):
    TAKES = frozenset({"attach"})
    name = "kernel"
    ctx = None  # no region engine here

    def __init__(self, options: "RecordOptions"):
        from damo.ops.kernel import KernelSource

        self.clock = MonotonicClock()
        self.attrs = options.attrs
        # Checks root, tracefs, bcc, the sysfs interface and the targets; starts nothing.
        self.kernel = KernelSource(options.targets, options.attach, options.attrs)

    def run(self, sink: "Sink") -> None:
        def deliver(record: tuple) -> None:
            sink.record(*record)  # a true return reaches follow() through the next poll

        try:
            self.kernel.start()
            if not sink.begin(self.clock.now_ns()):
                self.kernel.follow(deliver, lambda: sink.poll(self.clock.now_ns()))
            sink.end(self.clock.now_ns())
        finally:
            self.kernel.stop()

    def discard(self) -> None:
        self.kernel.stop()

    # interrupt: nothing to do, the first request already ends the run at the next poll

    def start_fields(self) -> dict[str, Any]:
        from damo.sources import attrs_fields

        kdamonds = self.kernel.describe()
        attrs = attrs_fields(self.attrs)
        if self.kernel.attach and kdamonds and kdamonds[0]["contexts"]:
            ctx = kdamonds[0]["contexts"][0]  # the kdamond's own, not the options'
            attrs = {k: ctx[k] for k in attrs}
        return dict(ops="kernel", attrs=attrs, targets=[], command=None, kdamonds=kdamonds,
                    attach=self.kernel.attach)

    def what(self) -> str:
        names = [f"kdamond {kd['index']} (pid {kd['pid']}, "
                 + "/".join(c["operations"] for c in kd["contexts"]) + ")"
                 for kd in self.kernel.describe()]
        return "kernel DAMON's " + ", ".join(names)

    def summary(self, cpu_share: float | None) -> str:
        extra = self.end_fields()
        return (f"; {extra['events']} events, {extra['lost_events']} lost, "
                f"{extra['dropped_snapshots']} incomplete snapshots dropped")

    def end_fields(self) -> dict[str, Any]:
        stats = self.kernel.stats
        assembler = self.kernel.assembler
        return {
            "events": stats.nr_events,
            "lost_events": stats.lost_events,
            "dropped_snapshots": 0 if assembler is None else assembler.dropped_snapshots,
        }

    def ended_by(self) -> str | None:
        return "kdamond stop" if self.kernel.kdamonds_stopped else None
