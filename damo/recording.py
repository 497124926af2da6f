"""One `damo record` run: outputs, signals, live status and summary around a source.

`Recording` is what every run shares, whatever it records from (a source,
`damo.sources`): it creates the record file and its sidecar `<out>.meta`
only once the source is built (every input checked), then lets the source
run, as its sink.  Each aggregation's record is written whole, stamped by
the source's clock; the sidecar gets the attributes, targets and command
line at the start, the source's messages (mappings, footprints, budget,
targets joining and leaving) as they come, and how the run ended.

SIGINT or SIGTERM ends the run when the current aggregation window closes
(its snapshot is written); a second one asks the source to stop at once.
Either way the file ends with a whole record.  A write that fails
(`OutputError`: a full disk, an I/O error) ends the run as a signal would,
with the files cut back to their last whole message; `fault` then holds the
error, for the caller to report after the summary.  While running, a status
line on stderr (only when it is a terminal) shows the progress; a summary
paragraph follows at the end.

The record writer is a held object made by `make_writer(out)` (recfmt v2 by
default): anything with `write(time_ns, targets)`, `close()`, `nr_records` and
`done` (`damo.records.writer.RecordFileWriter`), raising `OutputError` on
failure, can stand in for it.
"""

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from damo.errors import OutputError
from damo.record_status import (
    StatusLine,
    StopOnSignals,
    cpu_seconds,
    peak_rss_bytes,
    startup_cpu_seconds,
)

if TYPE_CHECKING:
    from damo.core.attrs import Attrs
    from damo.core.context import Context
    from damo.records.writer import RecordFileWriter, TargetRegions
    from damo.sources import RecordOptions, Source


class Recording:
    """One `damo record` run from a source; see the module docstring (a `damo.sources.Sink`)."""

    def __init__(self, source: "Source | Context", out: str, duration_ns: int | None = None,
                 truth: None = None,
                 make_writer: "Callable[[str], RecordFileWriter] | None" = None):
        from damo.sources import as_source

        if truth is not None:  # kept in the signature for callers that pass truth=None
            raise TypeError("the truth log is the sim source's: RecordOptions.truth")
        self.source = as_source(source)
        self.out = out
        self.duration_ns = duration_ns
        self.make_writer = make_writer
        self.nr_records = 0
        self.start_ns = self.elapsed_ns = 0
        self.reason = "stopped"
        self.status = False  # show the live status line
        self.argv = list(sys.argv)
        self._cpu0 = self._wall0 = 0.0
        self.cpu_share = 0.0  # damo's CPU over the run, as a share of one core
        self.min_regions: int | None = None
        self.max_regions = self._sum_regions = 0
        self._writer: RecordFileWriter | None = None
        self._meta: Any = None
        self._live: StatusLine | None = None
        self._status_next = 0.0
        self._stopping = self._done = False
        self.fault: OutputError | None = None  # the write that failed and ended the run

    @property
    def ctx(self) -> "Context | None":
        """The region engine's context, when the source runs one (tests and benchmarks drive it)."""
        return self.source.ctx

    @classmethod
    def prepare(cls, targets: list[str], ops_name: str | None, attrs: "Attrs", out: str,
                duration: float | None = None, seed: int | None = None,
                truth: str | None = None, colocate: bool = False,
                include_child_tasks: bool = False, max_targets: int | None = None,
                adjust: str | None = None, max_cpu: float | None = None) -> "Recording":
        """A run of the region engine (its default operations if no `ops_name`); no file yet."""
        from damo.sources import ENGINE_OPS, RecordOptions

        options = RecordOptions(targets, attrs, out, ops_name, duration, seed=seed, truth=truth,
                                colocate=colocate, include_child_tasks=include_child_tasks,
                                max_targets=max_targets, adjust=adjust, max_cpu=max_cpu)
        return cls.open(options, names=ENGINE_OPS)

    @classmethod
    def open(cls, options: "RecordOptions", names: tuple[str, ...] | None = None) -> "Recording":
        """The run `damo record` asks for (`damo.sources.RecordOptions`); creates no file."""
        from damo.sources import SOURCES, open_source

        source = open_source(options, names or tuple(SOURCES))
        duration = options.duration
        return cls(source, options.out, None if duration is None else round(duration * 1e9))

    def run(self) -> None:
        """Create the outputs and record until the source ends, the duration, or a signal."""
        from damo.records.meta import MetaWriter
        from damo.records.writer import RecordWriter

        try:
            try:
                self.source.claim()
                self._writer = (self.make_writer or RecordWriter)(self.out)
                self._meta = MetaWriter(self.out)
            except BaseException:
                self.source.discard()
                raise
            with StopOnSignals(self.request_stop):
                self.source.run(self)
        finally:
            self._stop_status()
            for f in (self._writer, self._meta):
                if f is not None:
                    f.close()

    def request_stop(self) -> None:
        """Stop at the end of this aggregation window; if asked again, at once."""
        if self._stopping:
            self.source.interrupt()
        self._stopping = True
        self.reason = "signal"

    def _fail(self, err: OutputError) -> bool:
        """A record or sidecar write failed: stop monitoring, keep what is whole."""
        if self.fault is None:
            self.fault = err
            self.reason = "write error"
        self._done = True
        return True

    def _write_messages(self, now: int, moment: str) -> None:
        for kind, fields in self.source.messages(now, moment):
            self._meta.write(kind, **fields)

    # the sink

    def begin(self, now: int) -> bool:
        from damo.core.clock import MonotonicClock

        self.start_ns = now
        self._cpu0, self._wall0 = self._cpu(), time.monotonic()
        fields = dict(
            time_ns=now,
            clock="CLOCK_MONOTONIC" if isinstance(self.source.clock, MonotonicClock)
            else "virtual",
            damo_version=_damo_version(),
            kernel=os.uname().release,
            argv=self.argv,
            startup_cpu_s=startup_cpu_seconds(),
            **self.source.start_fields(),
        )
        try:
            self._meta.write("start", **fields)
            self._write_messages(now, "start")
        except OutputError as err:
            return self._fail(err)
        if self.status:
            # No refresh thread: the line is redrawn at each record.
            self._live = StatusLine(sys.stderr)
        return False

    def record(self, now: int, targets: "list[TargetRegions]") -> bool:
        """Write one record; whether the run should stop now."""
        try:
            self._writer.write(now, targets)
        except OutputError as err:
            return self._fail(err)
        written = self._writer.nr_records > self.nr_records  # --snapshot keeps only some
        self.nr_records = self._writer.nr_records
        nr_regions = sum(len(t.start) for t in targets)
        if written:
            self._sum_regions += nr_regions
            self.max_regions = max(self.max_regions, nr_regions)
            self.min_regions = nr_regions if self.min_regions is None else \
                min(self.min_regions, nr_regions)
        self.elapsed_ns = now - self.start_ns
        try:
            if written and targets and all(t.age is not None for t in targets):
                from damo.records import ages

                self._meta.write("ages", time_ns=now, **ages.encode([t.age for t in targets]))
            self._write_messages(now, "record")
        except OutputError as err:
            return self._fail(err)
        for note in self.source.notes():
            if self._live is not None:
                self._live.note(f"damo: {note}")
            else:
                print(f"damo: {note}", file=sys.stderr)
        if self._live is not None:
            self._show_status(nr_regions)
        done = self._writer.done  # why a writer ends the run (--snapshot, monitor)
        if done and not self._done:
            self.reason = done
            self._done = True
        self._done = self._done or self._duration_over(self.elapsed_ns) or self._stopping
        return self._done

    def poll(self, now: int) -> bool:
        return self._done or self._stopping or self._duration_over(now - self.start_ns)

    def _duration_over(self, elapsed_ns: int) -> bool:
        if self.duration_ns is None or elapsed_ns < self.duration_ns:
            return False
        self.reason = "duration"
        return True

    def end(self, now: int) -> None:
        self.elapsed_ns = now - self.start_ns
        wall = time.monotonic() - self._wall0
        self.cpu_share = (self._cpu() - self._cpu0) / wall if wall > 0 else 0.0
        if self.reason == "stopped":
            self.reason = self.source.ended_by() or self.reason
        self._stop_status()
        if self._meta.failed:
            return
        end = dict(time_ns=now, nr_records=self.nr_records, reason=self.reason,
                   cpu_s=time.process_time(), peak_rss_bytes=peak_rss_bytes(),
                   **self.source.end_fields())
        if self.fault is not None:
            end["error"] = str(self.fault)
        try:
            self._write_messages(now, "end")
            self._meta.write("end", **end)
        except OutputError as err:
            self._fail(err)

    # the live status line and the summary

    def _cpu(self) -> float:
        """damo's CPU seconds: its threads, and the kernel-side time of the source's programs."""
        return cpu_seconds() + self.source.kernel_seconds()

    def _show_status(self, nr_regions: int) -> None:
        now = time.monotonic()
        if now < self._status_next:
            return
        self._status_next = now + 0.5
        wall = now - self._wall0
        cpu = (self._cpu() - self._cpu0) / wall * 100 if wall > 0 else 0.0
        self._live.update(
            f"recording {self.elapsed_ns / 1e9:7.1f} s   {self.nr_records} snapshots   "
            f"{nr_regions} regions   damo CPU {cpu:.1f}%" + self.source.status())

    def _stop_status(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def summary(self) -> str:
        """One paragraph on what was recorded, for the end of the run."""
        size = os.path.getsize(self.out) if os.path.exists(self.out) else 0
        text = (
            f"damo: recorded {self.source.what()} for {self.elapsed_ns / 1e9:.1f} s: "
            f"{self.nr_records} records ({size / 2**10:.0f} KiB) "
            f"{'kept in' if self.fault else 'written to'} {self.out}, metadata to {self.out}.meta"
        )
        if self.nr_records:
            text += (f"; {self.min_regions}-{self.max_regions} regions "
                     f"(mean {self._sum_regions / self.nr_records:.0f})")
        # No CPU share over nothing recorded (a command that failed at once).
        cpu_share = self.cpu_share if self.max_regions else None
        return text + f"; ended by {self.reason}" + self.source.summary(cpu_share) + "."


def _damo_version() -> str:
    from damo import __version__

    return __version__
