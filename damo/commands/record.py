"""`damo record`: monitor a target and write what it does to a record file.

TARGET is one or more pids, or one command string that damo runs through
/bin/sh and records until it exits (`vaddr` operations, the default), a
workload file for `--ops sim`, or for `--ops kernel` 'paddr', pids, or
nothing with `--attach`.  Without --ops, `damo.sources.choice` decides:
pids go through kernel DAMON where the kernel has its vaddr operations, its
sysfs interface is free and no option kernel DAMON does not take is given
(as `--ops kernel PID`); else damo's BPF sampler (`--ops vaddr`).  The
source checks the options it takes and refuses the others
(`damo.sources`); the run itself is `damo.recording`.
"""

import sys
from typing import Annotated

import typer

NAME = "record"
GROUP = None


def run(
    target: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TARGET...",
            help="Pids to monitor, or one command string (quoted) to run and monitor "
            "until it exits; for --ops sim, a workload file (TOML); for --ops kernel, "
            "'paddr' or pids.",
            show_default=False,
        ),
    ] = None,
    ops: Annotated[
        str | None,
        typer.Option(
            "--ops",
            help="Operations to monitor with: vaddr (damo's BPF sampler), sim, or kernel "
            "(record kernel DAMON's own results). Default: kernel for pids where the kernel's "
            "DAMON has vaddr and is free and no option it does not take is given, else vaddr "
            "(docs/recording.md).",
            show_default=False,
        ),
    ] = None,
    attach: Annotated[
        bool,
        typer.Option(
            "--attach",
            help="With --ops kernel: record the kdamonds already running, read-only.",
        ),
    ] = False,
    sample: Annotated[int, typer.Option("-s", "--sample", help="Sampling interval (us).")] = 5000,
    aggr: Annotated[int, typer.Option("-a", "--aggr", help="Aggregation interval (us).")] = 100000,
    updr: Annotated[
        int, typer.Option("-u", "--updr", help="Regions update interval (us).")
    ] = 1000000,
    minr: Annotated[int, typer.Option("-n", "--minr", help="Minimum number of regions.")] = 10,
    maxr: Annotated[int, typer.Option("-m", "--maxr", help="Maximum number of regions.")] = 1000,
    out: Annotated[str, typer.Option("-o", "--out", help="Record file to write.")] = "damon.data",
    format: Annotated[
        str,
        typer.Option(
            "--format", "--output_type", metavar="recfmt|json_compressed|json",
            help="Record file format: DAMON's recfmt v2, or upstream damo's json_compressed "
            "(zlib) or json (rewritten whole every few seconds and at the end).",
        ),
    ] = "recfmt",
    snapshot: Annotated[
        tuple[float, int] | None,
        typer.Option(
            "--snapshot", metavar="DELAY COUNT",
            help="Keep only COUNT snapshots, DELAY seconds apart (the first DELAY after the "
            "start; 0: consecutive aggregations), then stop: a quick look at a running process.",
            show_default=False,
        ),
    ] = None,
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
    max_cpu: Annotated[
        float | None,
        typer.Option(
            "--max-cpu",
            help="CPU budget: keep damo within this % of one core by checking steady "
            "regions less often (never under 3 times an aggregation), then lengthening "
            "the sampling and aggregation intervals together (counts keep their meaning); "
            "0: no budget, every sample.  Default 1 for processes; for --ops sim 0 (sim "
            "applies a budget given to the CPU a real recording would use) "
            "(docs/recording.md).",
            show_default=False,
        ),
    ] = None,
    colocate: Annotated[
        bool,
        typer.Option(
            "--colocate",
            help="Sample from the CPU the target runs on (one target): clearing Accessed bits "
            "then needs no TLB-shootdown interrupts, so damo uses less CPU, but its steps "
            "preempt the target, which may slow more (docs/performance.md).",
        ),
    ] = False,
    include_child_tasks: Annotated[
        bool,
        typer.Option(
            "--include_child_tasks", "--include-child-tasks",
            help="Also monitor the processes the targets fork while recorded (recursively), "
            "each as a target of its own; threads are not children.",
        ),
    ] = False,
    max_targets: Annotated[
        int | None,
        typer.Option(
            "--max-targets", metavar="N",
            help="Monitor at most N processes at once (with --include_child_tasks, children "
            "beyond it wait until a target ends). [default: 64]",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Record pids another damo record is recording (both then read low counts: "
            "each clears the Accessed bits the other is about to read).",
        ),
    ] = False,
    checks: Annotated[
        str | None,
        typer.Option(
            "--checks",
            help="Where vaddr's per-sample checks run: kernel (a BPF program on a periodic "
            "perf event; damo wakes only when pages need clearing) or native (damo's sampling "
            "loop wakes every sample; the only one --max-cpu budgets and --colocate moves); "
            "auto: native (measured cheaper here, docs/performance.md). kernel falls back to "
            "native where the kernel refuses it (docs/sampler.md). [default: auto]",
            show_default=False,
        ),
    ] = None,
    adjust: Annotated[
        str | None,
        typer.Option(
            "--adjust",
            help="Region adjustment (sim, vaddr): narrow (keeps the evidence of sparse hits "
            "until it isolates a small hot object) or seed (the seed's exact merge and split). "
            "[default: narrow]",
            show_default=False,
        ),
    ] = None,
    intervals_goal: Annotated[
        tuple[str, str, str, str] | None,
        typer.Option(
            "--monitoring_intervals_goal", "--monitoring-intervals-goal",
            metavar="ACCESS_BP AGGRS MIN_SAMPLE MAX_SAMPLE",
            help="Tune the sampling and aggregation intervals together (ratio kept) so that "
            "ACCESS_BP basis points (or N%) of the possible access events are observed, every "
            "AGGRS aggregations, the sampling interval within MIN_SAMPLE-MAX_SAMPLE (e.g. 5ms "
            "10s): DAMON's intervals auto-tuning.  The CPU budget scales what it chooses.",
            show_default=False,
        ),
    ] = None,
    intervals_autotune: Annotated[
        bool,
        typer.Option(
            "--monitoring_intervals_autotune", "--monitoring-intervals-autotune",
            help="--monitoring_intervals_goal 4% 3 5ms 10s.",
        ),
    ] = False,
) -> None:
    """Record the data access pattern of TARGET to a DAMON record file."""
    from damo.core.attrs import Attrs
    from damo.core.intervals import AUTOTUNE, parse_goal
    from damo.recording import Recording
    from damo.sources import RecordOptions
    from damo.sources.choice import why_not_kernel

    attrs = Attrs(sample, aggr, updr, minr, maxr)
    goal = parse_goal(intervals_goal) if intervals_goal else AUTOTUNE if intervals_autotune \
        else None
    make_writer = _writer_opener(format, snapshot, attrs)
    if snapshot is not None and duration is None:
        # A bound for the run; the last snapshot normally ends it first.
        duration = snapshot[1] * max(snapshot[0], aggr / 1e6) + 10 * aggr / 1e6
    options = RecordOptions(
        target or [], attrs, out=out, ops=ops,
        duration=duration, attach=attach, seed=seed, truth=truth, max_cpu=max_cpu,
        colocate=colocate, include_child_tasks=include_child_tasks, max_targets=max_targets,
        adjust=adjust, force=force, intervals_goal=goal,
        checks=checks)
    if ops is None:
        options.ops = "kernel" if why_not_kernel(options) is None else "vaddr"
        if options.ops == "kernel":
            print("damo: recording through kernel DAMON (this kernel has its vaddr operations "
                  "and its sysfs interface is free); --ops vaddr uses damo's BPF sampler",
                  file=sys.stderr)
    rec = Recording.open(options)
    rec.status = sys.stderr.isatty()
    rec.make_writer = make_writer
    rec.run()
    print(rec.summary(), file=sys.stderr)
    if rec.fault is not None:
        raise rec.fault  # after the summary: the error is the last line, exit status 1
    failed = rec.source.failure() if not rec.max_regions else None
    if failed is not None:
        from damo.errors import TargetError

        raise TargetError(failed)


def _writer_opener(fmt: str, snapshot: "tuple[float, int] | None", attrs):
    """What opens the record file: its format, and the --snapshot filter."""
    import math

    from damo.errors import UsageError
    from damo.records.convert import check_format, open_record_writer
    from damo.records.writer import SnapshotWriter

    check_format(fmt)
    if snapshot is None:
        return lambda path: open_record_writer(path, fmt, attrs)
    delay, count = snapshot
    if not (0 <= delay < math.inf) or count < 1:
        raise UsageError(f"--snapshot: DELAY must be >= 0 seconds and COUNT >= 1, "
                         f"not {delay:g} {count}")
    return lambda path: SnapshotWriter(open_record_writer(path, fmt, attrs),
                                       round(delay * 1e9), count, attrs.aggr_interval * 1000)
