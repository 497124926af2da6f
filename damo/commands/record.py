"""`damo record`: monitor a target and write what it does to a record file.

TARGET is one or more pids, or one command string that damo runs through
/bin/sh and records until it exits (`vaddr` operations, the default), a
workload file for `--ops sim`, or for `--ops kernel` 'paddr', pids, or
nothing with `--attach`.  The run itself is `damo.recording`.
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
            help="Operations to monitor with: vaddr (default), sim, or kernel (record kernel "
            "DAMON's own results).",
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
        float,
        typer.Option(
            "--max-cpu",
            help="CPU budget: keep damo within this % of one core by checking saturated "
            "regions, then every region, less often (never under once per aggregation; "
            "counts keep their meaning); 0: no budget, every sample (docs/recording.md).",
        ),
    ] = 2.0,
    colocate: Annotated[
        bool,
        typer.Option(
            "--colocate",
            help="Sample from the CPU the target runs on (one target): clearing Accessed bits "
            "then needs no TLB-shootdown interrupts, so damo uses less CPU, but its steps "
            "preempt the target, which may slow more (docs/performance.md).",
        ),
    ] = False,
) -> None:
    """Record the data access pattern of TARGET to a DAMON record file."""
    from damo.core.attrs import Attrs
    from damo.recording import KernelRecording, Recording

    attrs = Attrs(sample, aggr, updr, minr, maxr)
    target = target or []
    if ops == "kernel":
        rec: Recording = KernelRecording.prepare(target, attach, attrs, out, duration)
    elif attach:
        from damo.errors import UsageError

        raise UsageError("--attach goes with --ops kernel")
    else:
        rec = Recording.prepare(target, ops, attrs, out, duration, seed, truth, colocate,
                                max_cpu)
    rec.status = sys.stderr.isatty()
    rec.run()
    print(rec.summary(), file=sys.stderr)


