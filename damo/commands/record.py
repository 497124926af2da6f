"""`damo record`: monitor a target and write what it does to a record file.

TARGET is one or more pids, or one command string that damo runs through
/bin/sh and records until it exits (`vaddr` operations, the default), a
workload file for `--ops sim`, or for `--ops kernel` 'paddr', pids, or
nothing with `--attach`.  Pids without --ops go through kernel DAMON where
the kernel has its vaddr operations and its sysfs interface is free (as
`--ops kernel PID`); `--ops vaddr` keeps damo's BPF sampler.  The run itself
is `damo.recording`.
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
            "DAMON has vaddr and is free, else vaddr.",
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
    checks: Annotated[
        str,
        typer.Option(
            "--checks",
            help="Where vaddr's per-sample checks run: kernel (a BPF program on a periodic "
            "perf event; damo wakes only when pages need clearing) or native (damo's sampling "
            "loop wakes every sample; the only one --max-cpu budgets and --colocate moves); "
            "auto: native (measured cheaper here, docs/performance.md). kernel falls back to "
            "native where the kernel refuses it (docs/sampler.md).",
        ),
    ] = "auto",
    adjust: Annotated[
        str,
        typer.Option(
            "--adjust",
            help="Region adjustment: narrow (keeps the evidence of sparse hits until it "
            "isolates a small hot object) or seed (the seed's exact merge and split).",
        ),
    ] = "narrow",
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
    from damo.core.intervals import AUTOTUNE, IntervalsTuner, parse_goal
    from damo.recording import KernelRecording, Recording

    attrs = Attrs(sample, aggr, updr, minr, maxr)
    goal = parse_goal(intervals_goal) if intervals_goal else AUTOTUNE if intervals_autotune \
        else None
    target = target or []
    if ops is None and not attach and not colocate and seed is None and truth is None \
            and adjust == "narrow" and not include_child_tasks and goal is None:
        from damo.ops.kernel import why_not_for_processes

        if why_not_for_processes(target) is None:
            ops = "kernel"
            print("damo: recording through kernel DAMON (this kernel has its vaddr operations "
                  "and its sysfs interface is free); --ops vaddr uses damo's BPF sampler",
                  file=sys.stderr)
    if ops == "kernel":
        if adjust != "narrow":
            from damo.errors import UsageError

            raise UsageError("--adjust goes with sim and vaddr: kernel DAMON adjusts its own")
        if goal is not None:
            from damo.errors import UsageError

            raise UsageError("--monitoring_intervals_goal goes with sim and vaddr")
        rec: Recording = KernelRecording.prepare(target, attach, attrs, out, duration)
    elif attach:
        from damo.errors import UsageError

        raise UsageError("--attach goes with --ops kernel")
    else:
        rec = Recording.prepare(target, ops, attrs, out, duration, seed, truth, colocate,
                                include_child_tasks=include_child_tasks,
                                max_targets=max_targets, adjust=adjust, max_cpu=max_cpu,
                                checks=checks)
        if goal is not None:
            rec.ctx.intervals_tuner = IntervalsTuner(goal)
    rec.status = sys.stderr.isatty()
    rec.run()
    print(rec.summary(), file=sys.stderr)
    if rec.fault is not None:
        raise rec.fault  # after the summary: the error is the last line, exit status 1


