"""What `damo record` records from: one protocol, two implementations.

A *source* produces the records of a run and knows what only it can tell;
`damo.recording.Recording` does what every run shares (the record file,
the sidecar, signals, write faults, the status line, the summary) and
names no source.  The two implementations:

- `damo.sources.engine.EngineSource`: damo's region engine (`damo.core`)
  driven by operations, `vaddr` (`damo.sources.process`, real processes
  through the BPF sampler) or `sim` (`damo.sources.sim`, a workload file in
  virtual time);
- `damo.sources.kernel.KernelDamonSource`: kernel DAMON's own results, from
  its tracepoint, of the kdamonds running or of one damo starts.

`open_source(options)` builds the source `--ops` names.  Each source class
says which of the options in `SOURCE_OPTIONS` it takes (`TAKES`) and
rejects the others given with one line (`UsageError`, exit status 2), before
it starts or opens anything; the options' own values are checked once, in
`RecordOptions.check`.  `damo.sources.choice` decides, when `--ops` is not
given, whether pids go through kernel DAMON.

A source hands what it produces to a `Sink` (the recording; a live view
could be another): `begin` once monitoring runs, `record` per aggregation
(all targets at once), `poll` between records when the source waits on
something else, `end` before the source lets go of its targets.  Sidecar
messages (mappings, footprints, budget, targets joining and leaving) come
through one call, `messages`, at each of those three moments.
"""

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

from damo.errors import UsageError

if TYPE_CHECKING:
    from damo.core.attrs import Attrs
    from damo.core.clock import Clock
    from damo.core.context import Context
    from damo.core.intervals import IntervalsGoal
    from damo.records.writer import TargetRegions

#: When `Source.messages` is called: monitoring began, a record was written, it ends.
START, RECORD, END = "start", "record", "end"

#: The options only some sources take, as `damo record` spells them.
SOURCE_OPTIONS = {
    "attach": "--attach",
    "seed": "--seed",
    "truth": "--truth",
    "max_cpu": "--max-cpu",
    "colocate": "--colocate",
    "include_child_tasks": "--include_child_tasks",
    "max_targets": "--max-targets",
    "adjust": "--adjust",
    "force": "--force",
    "intervals_goal": "--monitoring_intervals_goal",
    "checks": "--checks",
}

#: Who takes each of them, for the one-line refusal (`{flag} {home}, not {ops}`).
HOMES = {
    "attach": "goes with --ops kernel",
    "seed": "goes with damo's region engine (sim, vaddr)",
    "truth": "needs operations that know the truth (sim)",
    "max_cpu": "goes with the vaddr operations",
    "colocate": "goes with the vaddr operations",
    "include_child_tasks": "goes with the vaddr operations",
    "max_targets": "goes with the vaddr operations",
    "adjust": "goes with damo's region engine (sim, vaddr): kernel DAMON adjusts its own",
    "force": "goes with the vaddr operations (only damo's sampler clears Accessed bits)",
    "intervals_goal": "goes with damo's region engine (sim, vaddr): kernel DAMON's own "
                      "goal is set through its sysfs",
    "checks": "goes with the vaddr operations",
}


#: Where vaddr's per-sample checks run (`--checks`): auto is native, measured cheaper.
CHECKS = ("auto", "kernel", "native")


@dataclass
class RecordOptions:
    """`damo record`'s options as given: None (or False) is "not given"."""

    targets: list[str]
    attrs: "Attrs"
    out: str = "damon.data"
    ops: str | None = None
    duration: float | None = None
    attach: bool = False
    seed: int | None = None
    truth: str | None = None
    max_cpu: float | None = None
    colocate: bool = False
    include_child_tasks: bool = False
    max_targets: int | None = None
    adjust: str | None = None
    force: bool = False
    intervals_goal: "IntervalsGoal | None" = None
    checks: str | None = None

    def given(self) -> list[str]:
        """The names (in SOURCE_OPTIONS) of the source options given."""
        return [f.name for f in fields(self)
                if f.name in SOURCE_OPTIONS and getattr(self, f.name) not in (None, False)]

    def check(self) -> "RecordOptions":
        """Each option's own value (whichever source takes it); creates nothing."""
        import os

        self.attrs.validate()
        if self.duration is not None and not 0 < self.duration < float("inf"):
            raise UsageError(f"--duration must be a positive number of seconds, "
                             f"not {self.duration}")
        if self.seed is not None and self.seed < 0:
            raise UsageError(f"--seed must not be negative, not {self.seed}")
        if self.max_cpu is not None and not 0 <= self.max_cpu <= 100:
            raise UsageError(f"--max-cpu must be 0 (no budget) to 100 (% of one core), "
                             f"not {self.max_cpu:g}")
        if self.checks is not None and self.checks not in CHECKS:
            raise UsageError(f"--checks must be {', '.join(CHECKS[:-1])} or {CHECKS[-1]}, "
                             f"not {self.checks}")
        if self.max_targets is not None and self.max_targets < 1:
            raise UsageError(f"--max-targets must be at least 1, not {self.max_targets}")
        for path in (self.out, self.truth):
            if path is None:
                continue
            if os.path.isdir(path):
                raise UsageError(f"cannot write {path}: it is a directory")
            folder = os.path.dirname(path) or "."
            if not os.path.isdir(folder):
                raise UsageError(f"cannot write {path}: no directory {folder}")
        if self.truth is not None and os.path.abspath(self.truth) == os.path.abspath(self.out):
            raise UsageError("--truth and --out name the same file")
        return self


def attrs_fields(attrs: "Attrs") -> dict[str, int]:
    """The monitoring attributes as the sidecar's start message holds them."""
    return {"sample_us": attrs.sample_interval, "aggr_us": attrs.aggr_interval,
            "update_us": attrs.update_interval, "min_nr_regions": attrs.min_nr_regions,
            "max_nr_regions": attrs.max_nr_regions}


def refuse_others(options: RecordOptions, takes: frozenset[str], name: str) -> None:
    """One line for the first option given that source `name` does not take."""
    for option in options.given():
        if option not in takes:
            raise UsageError(f"{SOURCE_OPTIONS[option]} {HOMES[option]}, not {name}")


class Sink(Protocol):
    """Where a source's results go: the recording (`damo.recording.Recording`)."""

    def begin(self, now_ns: int) -> bool:
        """Monitoring runs; True: stop at once (a write failed)."""

    def record(self, now_ns: int, targets: "list[TargetRegions]") -> bool:
        """One aggregation's regions of every target; True: stop now."""

    def poll(self, now_ns: int) -> bool:
        """Between records: whether to stop now (a signal, the duration)."""

    def end(self, now_ns: int) -> None:
        """Monitoring ends; the source still holds its targets."""


class Source:
    """What a recording reads from; see the module docstring.

    A subclass implements `run`, `start_fields` and `what`; the rest have
    do-nothing defaults (nothing to add, nothing to release).
    """

    #: The names (in SOURCE_OPTIONS) of the options it takes.
    TAKES: frozenset[str] = frozenset()
    #: The sidecar's `ops`.
    name: str
    #: The run's clock (records are stamped with it).
    clock: "Clock"
    #: The region engine's context, when the source runs one (tests drive it).
    ctx: "Context | None" = None

    def run(self, sink: Sink) -> None:
        """Start, feed `sink` until it or the source ends, and let go (on errors too)."""
        raise NotImplementedError

    def start_fields(self) -> dict[str, Any]:
        """The sidecar start message's fields that only the source knows."""
        raise NotImplementedError

    def what(self) -> str:
        """What was recorded, for the summary ("process 42 ('make')")."""
        raise NotImplementedError

    def claim(self) -> None:
        """Take what the source must hold alone, before any output is created (a target's
        lock); raises a DamoError if another holds it."""

    def discard(self) -> None:
        """Let go of what building the source took; it will not run (no outputs)."""

    def interrupt(self) -> None:
        """Stop as soon as possible, not at the end of the aggregation (a second signal)."""

    def messages(self, now_ns: int, moment: str) -> list[tuple[str, dict[str, Any]]]:
        """Sidecar messages (type, fields) since the last call, at START, RECORD or END."""
        return []

    def notes(self) -> list[str]:
        """Lines for the user since the last call."""
        return []

    def status(self) -> str:
        """What the status line adds after the recording's own figures ("" for nothing)."""
        return ""

    def summary(self, cpu_share: float | None) -> str:
        """Clauses the summary adds ("; ..."), given damo's CPU share of the run (None: not
        worth saying, nothing was recorded)."""
        return ""

    def failure(self) -> str | None:
        """Why a run that recorded no region failed (the command damo started), or None."""
        return None

    def kernel_seconds(self) -> float:
        """CPU time of the source's attached programs in the kernel, charged to no thread of
        damo's (0 for none)."""
        return 0.0

    def end_fields(self) -> dict[str, Any]:
        """The sidecar end message's fields that only the source knows."""
        return {}

    def ended_by(self) -> str | None:
        """Why monitoring ended by itself (the targets exited), or None."""
        return None


#: `--ops` name -> (module, class).  Without --ops, `damo record` asks
#: `damo.sources.choice`; a caller in Python gets DEFAULT_OPS.
SOURCES = {
    "vaddr": ("damo.sources.process", "ProcessSource"),
    "sim": ("damo.sources.sim", "SimSource"),
    "kernel": ("damo.sources.kernel", "KernelDamonSource"),
}
DEFAULT_OPS = "vaddr"
#: The `--ops` names of damo's region engine.
ENGINE_OPS = ("vaddr", "sim")


def as_source(source: "Source | Context") -> Source:
    """`source`, or the region engine on a context built by hand (tests)."""
    from damo.core.context import Context

    if isinstance(source, Context):
        from damo.sources.engine import EngineSource

        return EngineSource(source)
    return source


def open_source(options: RecordOptions, names: tuple[str, ...] = tuple(SOURCES)) -> Source:
    """Check the options and build the source `options.ops` names (one of `names`).

    Checks everything it can before the source starts anything: the options'
    values, then whether the source takes them, then its targets.
    """
    import importlib

    name = options.ops or DEFAULT_OPS
    if name not in names:
        raise UsageError(f"unknown operations {name!r} (choices: {', '.join(names)})")
    options.check()
    module, cls = SOURCES[name]
    source_cls = getattr(importlib.import_module(module), cls)
    refuse_others(options, source_cls.TAKES, name)
    return source_cls(options)
