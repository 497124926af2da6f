"""`damo record`: monitor a target and write what kdamond saw to a record file.

`Recording` is one run: it checks everything (attributes, the operations and
their targets, the output paths) before creating any file, then runs kdamond
with an after_aggregation callback that writes one record per aggregation
holding every target, time-stamped with the end of the aggregation window in
the run's clock.  SIGINT or SIGTERM ends the run when the current aggregation
window closes (its snapshot is written); a second one ends it after the
current sample.  Either way the file ends with a whole record.
"""

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import typer

NAME = "record"
GROUP = None


def run(
    target: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET...",
            help="What to monitor; for --ops sim, a workload file (TOML).",
            show_default=False,
        ),
    ],
    ops: Annotated[
        str | None,
        typer.Option("--ops", help="Operations to monitor with: sim.", show_default=False),
    ] = None,
    sample: Annotated[int, typer.Option("-s", "--sample", help="Sampling interval (us).")] = 5000,
    aggr: Annotated[int, typer.Option("-a", "--aggr", help="Aggregation interval (us).")] = 100000,
    updr: Annotated[
        int, typer.Option("-u", "--updr", help="Regions update interval (us).")
    ] = 1000000,
    minr: Annotated[int, typer.Option("-n", "--minr", help="Minimum number of regions.")] = 10,
    maxr: Annotated[int, typer.Option("-m", "--maxr", help="Maximum number of regions.")] = 1000,
    out: Annotated[str, typer.Option("-o", "--out", help="Record file to write.")] = "damon.data",
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after this many seconds.", show_default=False),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed of the random source, for a repeatable run.", show_default=False
        ),
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            help="Also write the ground truth here (JSON lines; sim only).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Record the data access pattern of TARGET to a DAMON record file."""
    from damo.core.attrs import Attrs

    attrs = Attrs(sample, aggr, updr, minr, maxr)
    rec = Recording.prepare(target, ops, attrs, out, duration, seed, truth)
    rec.run()
    print(
        f"damo: {rec.nr_records} records ({rec.elapsed_ns / 1e9:.1f} s) written to {out}",
        file=sys.stderr,
    )


if TYPE_CHECKING:
    from damo.core.attrs import Attrs
    from damo.core.context import Context


class Recording:
    """One `damo record` run over a prepared context; see the module docstring."""

    def __init__(self, ctx: "Context", out: str, duration_ns: int | None, truth: str | None):
        self.ctx = ctx
        self.out = out
        self.duration_ns = duration_ns
        self.truth_path = truth
        self.nr_records = 0
        self.start_ns = 0
        self.elapsed_ns = 0
        self._writer = None
        self._truth = None
        self._truth_next_ns = 0
        self._stopping = False
        ctx.callbacks.before_start = self._before_start
        ctx.callbacks.after_aggregation = self._after_aggregation
        ctx.callbacks.before_terminate = self._before_terminate

    @classmethod
    def prepare(
        cls,
        targets: list[str],
        ops_name: str | None,
        attrs: "Attrs",
        out: str,
        duration: float | None = None,
        seed: int | None = None,
        truth: str | None = None,
    ) -> "Recording":
        """Check every input and build the run; creates no file."""
        import numpy as np

        from damo.core.context import Callbacks, Context
        from damo.errors import UsageError
        from damo.ops import BACKENDS, backend

        choices = ", ".join(BACKENDS)
        if ops_name is None:
            raise UsageError(f"--ops is required for now (choices: {choices})")
        if ops_name not in BACKENDS:
            raise UsageError(f"unknown operations {ops_name!r} (choices: {choices})")
        attrs.validate()
        if duration is not None and not 0 < duration < float("inf"):
            raise UsageError(f"--duration must be a positive number of seconds, not {duration}")
        if seed is not None and seed < 0:
            raise UsageError(f"--seed must not be negative, not {seed}")
        for path in (out, truth):
            if path is None:
                continue
            if os.path.isdir(path):
                raise UsageError(f"cannot write {path}: it is a directory")
            folder = os.path.dirname(path) or "."
            if not os.path.isdir(folder):
                raise UsageError(f"cannot write {path}: no directory {folder}")
        if truth is not None and os.path.abspath(truth) == os.path.abspath(out):
            raise UsageError("--truth and --out name the same file")
        setup = backend(ops_name).setup(targets)
        if truth is not None and not hasattr(setup.ops, "truth_run"):
            raise UsageError(f"--truth needs operations that know the truth (sim), not {ops_name}")

        ctx = Context(attrs, setup.ops, Callbacks(), np.random.default_rng(seed), setup.clock)
        ctx.set_targets(setup.target_ids)
        duration_ns = None if duration is None else round(duration * 1e9)
        return cls(ctx, out, duration_ns, truth)

    def run(self) -> None:
        """Create the outputs and monitor until the target ends, the duration, or a signal."""
        from damo.core.kdamond import kdamond_fn
        from damo.records.writer import RecordWriter

        self._writer = RecordWriter(self.out)
        try:
            if self.truth_path is not None:
                from damo.workload.truth import TruthLog

                self._truth = TruthLog(self.truth_path)
            with _stop_on_signals(self):
                kdamond_fn(self.ctx)
        finally:
            self._writer.close()
            if self._truth is not None:
                self._truth.close()

    def request_stop(self) -> None:
        """Stop at the end of this aggregation window; if asked again, after this sample."""
        if self._stopping:
            self.ctx.request_stop()
        self._stopping = True

    # callbacks

    def _before_start(self, ctx: "Context") -> None:
        self.start_ns = self._truth_next_ns = ctx.clock.now_ns()

    def _after_aggregation(self, ctx: "Context") -> bool:
        from damo.records.writer import TargetRegions

        now = ctx.clock.now_ns()
        self._writer.write(
            now,
            [TargetRegions(t.id, t.start, t.end, t.nr_accesses) for t in ctx.targets],
        )
        self.nr_records += 1
        self.elapsed_ns = now - self.start_ns
        self._write_truth(now, final=False)
        return self._stopping or (
            self.duration_ns is not None and self.elapsed_ns >= self.duration_ns
        )

    def _before_terminate(self, ctx: "Context") -> None:
        now = ctx.clock.now_ns()
        self.elapsed_ns = now - self.start_ns
        self._write_truth(now, final=True)

    def _write_truth(self, now: int, final: bool) -> None:
        """Log the phase runs finished by `now`; when `final`, the unfinished one cut at `now`."""
        if self._truth is None:
            return
        ops = self.ctx.ops
        for run in list(ops.runs(self._truth_next_ns, now)):
            if run.end_ns <= now:
                self._truth.write(ops.truth_run(run))
                self._truth_next_ns = run.end_ns
            elif final and run.start_ns < now:
                self._truth.write(ops.truth_run(run, end_ns=now))
                self._truth_next_ns = now


class _stop_on_signals:
    """While active, SIGINT and SIGTERM ask the recording to stop instead of killing it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, rec: Recording):
        self.rec = rec
        self.saved: dict[int, object] = {}

    def _handler(self, signum: int, frame: object) -> None:
        self.rec.request_stop()

    def __enter__(self) -> "_stop_on_signals":
        # Signal handlers can only be set from the main thread (tests may run elsewhere).
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.saved[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
