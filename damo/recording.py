"""One `damo record` run: outputs, signals, live status and summary around a monitor.

`Recording` is one run: it checks everything (attributes, the operations and
their targets, the output paths) before creating any file, then runs kdamond
with an after_aggregation callback that writes one record per aggregation
holding every target, time-stamped with the end of the aggregation window in
the run's clock.  SIGINT or SIGTERM ends the run when the current aggregation
window closes (its snapshot is written); a second one ends it after the
current sample.  Either way the file ends with a whole record.  Alongside,
the sidecar `<out>.meta` gets the attributes, targets and command line at the
start, each target's mappings whenever they change, and how the run ended.
While running, a status line on stderr (only when it is a terminal) shows
the progress; a summary paragraph follows at the end.  A write that fails
(`OutputError`: a full disk, an I/O error) ends the run as a signal would,
with the files cut back to their last whole message; `fault` then holds the
error, for the caller to report after the summary.  `KernelRecording`
shares all of that around kernel DAMON's own results (`--ops kernel`).
"""

import os
import resource
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

from damo.errors import OutputError

if TYPE_CHECKING:
    from damo.core.attrs import Attrs
    from damo.core.context import Context
    from damo.ops.kernel import KernelSource
    from damo.records.writer import TargetRegions


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
        self.reason = "stopped"
        self.status = False  # show the live status line
        self.argv = list(sys.argv)
        self._cpu0 = self._wall0 = 0.0
        self.cpu_share = 0.0  # damo's CPU over the run, as a share of one core
        self.kernel_share = 0.0  # of which its attached BPF programs, in the kernel
        self.min_regions: int | None = None
        self.max_regions = 0
        self._sum_regions = 0
        self._writer = None
        self._meta = None
        self._live = None
        self._status_next = 0.0
        self._truth = None
        self._truth_next_ns = 0
        self._stopping = False
        self.fault: OutputError | None = None  # the write that failed and ended the run
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
        colocate: bool = False,
        include_child_tasks: bool = False,
        max_targets: int | None = None,
        adjust: str = "narrow",
        max_cpu: float | None = None,
        checks: str = "auto",
    ) -> "Recording":
        """Check every input and build the run; creates no file."""
        import numpy as np

        from damo.core.context import ADJUST_MODES, Callbacks, Context
        from damo.errors import UsageError
        from damo.ops import BACKENDS, DEFAULT, backend

        choices = ", ".join([*BACKENDS, "kernel"])
        if ops_name is None:
            ops_name = DEFAULT
        if ops_name not in BACKENDS:
            raise UsageError(f"unknown operations {ops_name!r} (choices: {choices})")
        if seed is not None and seed < 0:
            raise UsageError(f"--seed must not be negative, not {seed}")
        _check_run_args(attrs, out, duration, truth)
        if adjust not in ADJUST_MODES:
            raise UsageError(f"unknown --adjust {adjust!r} (choices: {', '.join(ADJUST_MODES)})")
        if truth is not None and os.path.abspath(truth) == os.path.abspath(out):
            raise UsageError("--truth and --out name the same file")
        if truth is not None and ops_name != "sim":
            raise UsageError(f"--truth needs operations that know the truth (sim), not {ops_name}")
        if max_cpu is not None and not 0 <= max_cpu <= 100:
            raise UsageError(f"--max-cpu must be 0 (no budget) to 100 (% of one core), "
                             f"not {max_cpu:g}")
        if checks not in ("auto", "kernel", "native"):
            raise UsageError(f"--checks must be auto, kernel or native, not {checks}")
        if checks == "kernel" and colocate:
            raise UsageError("--colocate goes with --checks native (it moves damo's sampling "
                             "loop to the target's CPU)")
        if colocate and ops_name != "vaddr":
            raise UsageError(f"--colocate goes with the vaddr operations, not {ops_name}")
        if (include_child_tasks or max_targets is not None) and ops_name != "vaddr":
            option = "--include_child_tasks" if include_child_tasks else "--max-targets"
            raise UsageError(f"{option} goes with the vaddr operations, not {ops_name}")
        if max_targets is not None and max_targets < 1:
            raise UsageError(f"--max-targets must be at least 1, not {max_targets}")
        module = backend(ops_name)
        capacity = getattr(module, "MAX_NR_REGIONS", None)
        if capacity is not None and attrs.max_nr_regions > capacity:
            raise UsageError(f"-m/--maxr: the {ops_name} operations sample at most {capacity} "
                             f"regions, not {attrs.max_nr_regions}")
        if ops_name == "vaddr":
            from damo.ops.vaddr.children import DEFAULT_MAX_TARGETS

            max_targets = max_targets or DEFAULT_MAX_TARGETS
            pids, _ = module.parse_targets(targets)
            if len(pids) > max_targets:
                raise UsageError(f"{len(pids)} pids to monitor, more than --max-targets "
                                 f"({max_targets})")
        setup = module.setup(targets)
        if colocate:
            setup.ops.colocate_requested = True
        if ops_name == "vaddr":
            setup.ops.children.follow = include_child_tasks
            setup.ops.children.max_targets = max_targets
        if checks == "auto":
            # Measured on this project's hosts (docs/performance.md, "Checks in the
            # kernel"), kernel checks cost more than the native loop at every sample
            # (--max-cpu 0), and the budget's ladder and --colocate are the loop's.
            checks = "native"
        if checks == "kernel" and hasattr(setup.ops, "use_kernel_checks"):
            setup.ops.use_kernel_checks(attrs.sample_interval)
        if hasattr(setup.ops, "max_cpu") and max_cpu is not None:  # None: the backend's default
            setup.ops.max_cpu = max_cpu

        ctx = Context(attrs, setup.ops, Callbacks(), np.random.default_rng(seed), setup.clock,
                      adjust=adjust)
        ctx.set_targets(setup.target_ids)
        duration_ns = None if duration is None else round(duration * 1e9)
        return cls(ctx, out, duration_ns, truth)

    def run(self) -> None:
        """Create the outputs and monitor until the target ends, the duration, or a signal."""
        from damo.core.kdamond import kdamond_fn
        from damo.records.meta import MetaWriter
        from damo.records.writer import RecordWriter

        try:
            self._writer = RecordWriter(self.out)
            self._meta = MetaWriter(self.out)
            if self.truth_path is not None:
                from damo.workload.truth import TruthLog

                self._truth = TruthLog(self.truth_path)
            with _stop_on_signals(self):
                kdamond_fn(self.ctx)
        except BaseException:
            # Outputs failed or monitoring broke: a started command must not outlive us.
            if self.ctx.ops is not None:
                self.ctx.ops.cleanup(self.ctx)
            raise
        finally:
            self._stop_status()
            for f in (self._writer, self._meta, self._truth):
                if f is not None:
                    f.close()

    def request_stop(self) -> None:
        """Stop at the end of this aggregation window; if asked again, after this sample."""
        if self._stopping:
            self.ctx.request_stop()
        self._stopping = True
        self.reason = "signal"

    def _fail(self, err: OutputError) -> bool:
        """A record or sidecar write failed: stop monitoring, keep what is whole."""
        if self.fault is None:
            self.fault = err
            self.reason = "write error"
        return True

    # callbacks

    def _before_start(self, ctx: "Context") -> bool:
        from damo.core.clock import MonotonicClock

        self.start_ns = self._truth_next_ns = ctx.clock.now_ns()
        self._cpu0, self._wall0 = self._cpu(ctx), time.monotonic()
        fields = dict(
            time_ns=self.start_ns,
            clock="CLOCK_MONOTONIC" if isinstance(ctx.clock, MonotonicClock) else "virtual",
            damo_version=_damo_version(),
            kernel=os.uname().release,
            ops=_ops_name(ctx),
            attrs={
                "sample_us": ctx.attrs.sample_interval,
                "aggr_us": ctx.attrs.aggr_interval,
                "update_us": ctx.attrs.update_interval,
                "min_nr_regions": ctx.attrs.min_nr_regions,
                "max_nr_regions": ctx.attrs.max_nr_regions,
            },
            targets=[_target_info(ctx, t.id) for t in ctx.targets],
            command=getattr(ctx.ops, "command", None),
            argv=self.argv,
            startup_cpu_s=_startup_cpu_seconds(),
        )
        children = getattr(ctx.ops, "children", None)
        if children is not None:
            fields.update(include_child_tasks=children.follow, max_targets=children.max_targets)
        fields.update(self._start_extra())
        try:
            self._meta.write("start", **fields)
            self._write_maps(ctx)
        except OutputError as err:
            return self._fail(err)
        if self.status:
            self._start_status()
        return False

    def _after_aggregation(self, ctx: "Context") -> bool:
        from damo.records.writer import TargetRegions

        now = ctx.clock.now_ns()
        self._write_truth(now, final=False)
        return self._record(
            now, [TargetRegions(t.id, t.start, t.end, t.nr_accesses) for t in ctx.targets]
        )

    def _record(self, now: int, targets: "list[TargetRegions]") -> bool:
        """Write one record; whether the run should stop now."""
        try:
            self._writer.write(now, targets)
        except OutputError as err:
            return self._fail(err)
        self.nr_records += 1
        nr_regions = sum(len(t.start) for t in targets)
        self._sum_regions += nr_regions
        self.max_regions = max(self.max_regions, nr_regions)
        self.min_regions = nr_regions if self.min_regions is None else \
            min(self.min_regions, nr_regions)
        self.elapsed_ns = now - self.start_ns
        try:
            self._write_targets(self.ctx)
            self._write_maps(self.ctx)
            self._write_footprints(now)
        except OutputError as err:
            return self._fail(err)
        self._show_notes(self.ctx)
        if self._live is not None:
            self._show_status(self.ctx, nr_regions)
        if self.duration_ns is not None and self.elapsed_ns >= self.duration_ns:
            self.reason = "duration"
            return True
        return self._stopping

    def _before_terminate(self, ctx: "Context") -> None:
        now = ctx.clock.now_ns()
        self.elapsed_ns = now - self.start_ns
        wall = time.monotonic() - self._wall0
        self.cpu_share = (self._cpu(ctx) - self._cpu0) / wall if wall > 0 else 0.0
        self.kernel_share = _kernel_seconds(ctx) / wall if wall > 0 else 0.0
        if self.reason == "stopped" and ctx.ops is not None \
                and not any(ctx.ops.target_valid(t) for t in ctx.targets):
            self.reason = "target exit"
        self._write_truth(now, final=True)
        self._stop_status()
        if self._meta.failed:
            return
        end = dict(time_ns=now, nr_records=self.nr_records, reason=self.reason,
                   cpu_s=time.process_time(), bpf_kernel_s=_kernel_seconds(ctx),
                   peak_rss_bytes=_peak_rss_bytes(),
                   **self._end_extra())
        if self.fault is not None:
            end["error"] = str(self.fault)
        try:
            budget = getattr(ctx.ops, "budget", None)
            if budget is not None:
                self._meta.write("budget", time_ns=now, **budget.describe(),
                                 run_checks_per_region_mean=budget.run_checks_mean)
            self._write_targets(ctx, final=True)
            self._write_maps(ctx)
            self._meta.write("end", **end)
        except OutputError as err:
            self._fail(err)

    def _start_extra(self) -> dict:
        """Source-specific fields of the sidecar's start message."""
        return {"adjust": self.ctx.adjust}

    def _end_extra(self) -> dict:
        """Source-specific fields of the sidecar's end message."""
        return {}

    def _write_targets(self, ctx: "Context", final: bool = False) -> None:
        """Sidecar messages for the targets that joined (child processes) or ended."""
        children = getattr(ctx.ops, "children", None)
        if children is None:
            return
        if final:
            children.finish(ctx)
        for event in children.take_events():
            if event["type"] == "target":
                event = {**event, **_target_info(ctx, event["id"])}
            self._meta.write(event.pop("type"), **event)

    def _show_notes(self, ctx: "Context") -> None:
        children = getattr(ctx.ops, "children", None)
        if children is None:
            return
        for note in children.take_notes():
            line = f"damo: {note}"
            if self._live is not None:
                self._live.note(line)
            else:
                print(line, file=sys.stderr)
    def _write_budget(self, ctx: "Context") -> None:
        take = getattr(ctx.ops, "take_budget", None)
        for change in take() if take is not None else ():
            self._meta.write("budget", **change)
        if ctx.intervals_tuner is not None:
            for change in ctx.intervals_tuner.take_log():
                self._meta.write("intervals", **change)

    def _write_maps(self, ctx: "Context") -> None:
        self._write_budget(ctx)
        take = getattr(ctx.ops, "take_maps", None)
        if take is None:
            return
        for target_id, time_ns, maps in take():
            self._meta.write(
                "maps",
                time_ns=time_ns,
                target_id=target_id,
                maps=[[m.start, m.end, m.perms, m.offset, m.path, m.dev, m.inode] for m in maps],
            )

    def _write_footprints(self, now: int) -> None:
        """Each process target's VSZ and RSS, once per aggregation (`report footprints`)."""
        if _ops_name(self.ctx) != "vaddr":
            return
        from damo.linux.footprint import read_footprint

        rows = [[t.id, *fp] for t in self.ctx.targets if (fp := read_footprint(t.id)) is not None]
        if rows:
            self._meta.write("footprints", time_ns=now, targets=rows)

    # the live status line and the summary

    def _start_status(self) -> None:
        # No refresh thread: the line is redrawn from the aggregation callback.
        self._live = _StatusLine(sys.stderr)

    @staticmethod
    def _cpu(ctx: "Context") -> float:
        """damo's CPU seconds: its threads, and the kernel-side time of its attached programs."""
        return _cpu_seconds() + _kernel_seconds(ctx)

    def _show_status(self, ctx: "Context", nr_regions: int) -> None:
        now = time.monotonic()
        if now < self._status_next:
            return
        self._status_next = now + 0.5
        wall = now - self._wall0
        cpu = (self._cpu(ctx) - self._cpu0) / wall * 100 if wall > 0 else 0.0
        line = (
            f"recording {self.elapsed_ns / 1e9:7.1f} s   {self.nr_records} snapshots   "
            f"{nr_regions} regions   damo CPU {cpu:.1f}%"
        )
        budget = getattr(ctx.ops, "budget", None)
        if budget is not None:
            line += budget.status()
        rss = getattr(ctx.ops, "rss_bytes", None)
        if rss is not None:
            sizes = [rss(t.id) for t in ctx.targets]
            total = sum(s for s in sizes if s is not None)
            line += f"   target RSS {total / 2**20:.1f} MiB"
        self._live.update(line)

    def _stop_status(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def summary(self) -> str:
        """One paragraph on what was recorded, for the end of the run."""
        ctx = self.ctx
        ops = ctx.ops
        what = self._what()
        size = os.path.getsize(self.out) if os.path.exists(self.out) else 0
        text = (
            f"damo: recorded {what} for {self.elapsed_ns / 1e9:.1f} s: "
            f"{self.nr_records} records ({size / 2**10:.0f} KiB) "
            f"{'kept in' if self.fault else 'written to'} {self.out}, metadata to {self.out}.meta"
        )
        if self.nr_records:
            text += (
                f"; {self.min_regions}-{self.max_regions} regions "
                f"(mean {self._sum_regions / self.nr_records:.0f})"
            )
        text += f"; ended by {self.reason}"
        if _ops_name(ctx) == "vaddr":
            text += f"; damo used {self.cpu_share:.1%} of one CPU"
            if self.kernel_share:
                text += f" ({self.kernel_share:.2%} of it in its kernel-side checks)"
            text += _budget_summary(getattr(ops, "budget", None))
        text += self._summary_extra()
        status = getattr(ops, "command_status", None)
        if status is not None:
            text += (
                f"; the command was killed by signal {-status}" if status < 0
                else f"; the command exited with status {status}"
            )
        return text + "."

    def _what(self) -> str:
        ctx = self.ctx
        workload = getattr(ctx.ops, "workload", None)
        if workload is not None:
            return f"the simulated workload {workload.path}"
        if _ops_name(ctx) != "vaddr":
            return f"{_ops_name(ctx)} targets " + ", ".join(str(t.id) for t in ctx.targets)
        pids = ctx.ops.pids  # the targets given (or started), whether or not they still run
        if not pids:
            return "nothing"
        what = "process " + ", ".join(str(pid) for pid in pids)
        command = getattr(ctx.ops, "command", None)
        if command is not None:
            what += f" ({command!r})"
        children = ctx.ops.children
        if children.follow:
            what += f" and {children.nr_children} child process" + \
                ("" if children.nr_children == 1 else "es")
            if children.unmonitored:
                what += (f" ({len(children.unmonitored)} more not monitored: "
                         f"--max-targets {children.max_targets})")
        return what

    def _summary_extra(self) -> str:
        return ""

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


class KernelRecording(Recording):
    """`--ops kernel`: kernel DAMON's own aggregations, passed through to the file.

    Shares the outputs, signals, status line and summary of `Recording`; the
    records come from `damo.ops.kernel.KernelSource` instead of kdamond_fn.
    A signal ends the run at once (the snapshots already complete are written);
    so does every recorded kdamond stopping.
    """

    def __init__(self, source: "KernelSource", attrs: "Attrs", out: str,
                 duration_ns: int | None):
        from damo.core.clock import MonotonicClock
        from damo.core.context import Context

        super().__init__(Context(attrs, None, clock=MonotonicClock()), out, duration_ns, None)
        self.source = source
        self._done = False

    @classmethod
    def prepare(cls, targets: list[str], attach: bool, attrs: "Attrs", out: str,  # type: ignore[override]
                duration: float | None = None) -> "KernelRecording":
        """Check every input (and that damo may start or attach); creates nothing."""
        from damo.ops.kernel import KernelSource

        _check_run_args(attrs, out, duration, None)
        source = KernelSource(targets, attach, attrs)
        return cls(source, attrs, out, None if duration is None else round(duration * 1e9))

    def run(self) -> None:
        from damo.records.meta import MetaWriter
        from damo.records.writer import RecordWriter

        try:
            self._writer = RecordWriter(self.out)
            self._meta = MetaWriter(self.out)
            with _stop_on_signals(self):
                self.source.start()
                if not self._before_start(self.ctx):
                    self.source.follow(self._sink, lambda: self._stopping or self._done
                                       or self._duration_over())
                if self.source.kdamonds_stopped and self.reason == "stopped":
                    self.reason = "kdamond stop"
                self._before_terminate(self.ctx)
        finally:
            self._stop_status()
            self.source.stop()
            for f in (self._writer, self._meta):
                if f is not None:
                    f.close()

    def _duration_over(self) -> bool:
        """--duration has passed, records or not (a kdamond aggregates as slowly as it likes)."""
        if self.duration_ns is None or self.ctx.clock.now_ns() - self.start_ns < self.duration_ns:
            return False
        self.reason = "duration"
        return True

    def _sink(self, record: "tuple[int, list[TargetRegions]]") -> None:
        if self._record(*record):
            self._done = True

    def _start_extra(self) -> dict:
        kdamonds = self.source.describe()
        extra: dict = {"ops": "kernel", "kdamonds": kdamonds, "attach": self.source.attach}
        if self.source.attach and kdamonds and kdamonds[0]["contexts"]:
            ctx = kdamonds[0]["contexts"][0]
            extra["attrs"] = {k: ctx[k] for k in (
                "sample_us", "aggr_us", "update_us", "min_nr_regions", "max_nr_regions")}
        return extra

    def _end_extra(self) -> dict:
        stats = self.source.stats
        return {
            "events": stats.nr_events,
            "lost_events": stats.lost_events,
            "dropped_snapshots": self.source.assembler.dropped_snapshots,
        }

    def _what(self) -> str:
        names = [f"kdamond {kd['index']} (pid {kd['pid']}, "
                 + "/".join(c["operations"] for c in kd["contexts"]) + ")"
                 for kd in self.source.describe()]
        return "kernel DAMON's " + ", ".join(names)

    def _summary_extra(self) -> str:
        extra = self._end_extra()
        return (f"; {extra['events']} events, {extra['lost_events']} lost, "
                f"{extra['dropped_snapshots']} incomplete snapshots dropped")


def _check_run_args(attrs: "Attrs", out: str, duration: float | None, truth: str | None) -> None:
    """What every kind of recording checks before creating any file."""
    from damo.errors import UsageError

    attrs.validate()
    if duration is not None and not 0 < duration < float("inf"):
        raise UsageError(f"--duration must be a positive number of seconds, not {duration}")
    for path in (out, truth):
        if path is None:
            continue
        if os.path.isdir(path):
            raise UsageError(f"cannot write {path}: it is a directory")
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            raise UsageError(f"cannot write {path}: no directory {folder}")


def _budget_summary(budget: object) -> str:
    """What the CPU budget did, for the summary ("" without one)."""
    return "" if budget is None else budget.summary()


def _ops_name(ctx: "Context") -> str:
    return "none" if ctx.ops is None else ctx.ops.name


def _cpu_seconds() -> float:
    """damo's CPU time so far, all threads: the scheduler's exact runtime, not sampled ticks."""
    return time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)


def _kernel_seconds(ctx: "Context") -> float:
    """Kernel-side seconds of the operations' attached BPF programs (not in any thread's time)."""
    kernel = getattr(ctx.ops, "kernel_seconds", None)
    return kernel() if kernel is not None else 0.0


def _startup_cpu_seconds() -> float:
    """damo's CPU from its exec until now (CLOCK_PROCESS_CPUTIME_ID), and its helpers'.

    The helpers are the children reaped by now (a cold start compiles with bcc
    in one); a command damo runs to record is still running at the start.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _peak_rss_bytes() -> int:
    """The most memory damo has held resident so far (the kernel's VmHWM)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _damo_version() -> str:
    from damo import __version__

    return __version__


def _target_info(ctx: "Context", target_id: int) -> dict:
    """What the sidecar says of one target: its id and, for a process, its command line."""
    info: dict = {"id": target_id}
    if _ops_name(ctx) != "vaddr":
        return info
    info["pid"] = target_id
    try:
        with open(f"/proc/{target_id}/cmdline", "rb") as f:
            info["cmdline"] = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        pass
    return info


class _StatusLine:
    """One line at the bottom of a terminal, redrawn in place and erased at the end.

    Carriage return and erase-to-end-of-line, cut to the terminal's width so
    it never wraps: all a status line needs (rich's Live costs ~50 ms of CPU
    and several MiB to import at every start).
    """

    BOLD, PLAIN = "\x1b[1m", "\x1b[0m"
    ERASE = "\r\x1b[K"

    def __init__(self, stream):
        self.stream = stream

    def update(self, line: str) -> None:
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            width = 0
        line = line[:(width or 80) - 1]  # 0 columns: a terminal that does not say
        head, _, tail = line.partition(" ")  # the first word in bold
        self._write(f"{self.ERASE}{self.BOLD}{head}{self.PLAIN} {tail}" if tail else
                    f"{self.ERASE}{self.BOLD}{head}{self.PLAIN}")

    def note(self, line: str) -> None:
        """A message line above the status (which the next update redraws)."""
        self._write(f"{self.ERASE}{line}\n")

    def stop(self) -> None:
        self._write(self.ERASE)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # the terminal went away: the status is not worth an error


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
