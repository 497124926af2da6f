"""`damo monitor`: watch a process's memory access pattern live in the terminal.

TARGET is one or more pids or one command string, as for `damo record`
(damo's own sampler: `--ops vaddr`; `--ops sim` runs a workload file in
virtual time).  The view (`damo.live`) refreshes every `--refresh` seconds
of the run (0: every aggregation); q or Ctrl-C ends it.  With `-o` the run
is also recorded, exactly as `damo record` would.
"""

from typing import Annotated

import typer

NAME = "monitor"
GROUP = None


def run(
    target: Annotated[list[str], typer.Argument(
        metavar="PID...|COMMAND",
        help="Pids to watch, or one command string (quoted) to run and watch until it exits; "
             "for --ops sim, a workload file.", show_default=False)],
    out: Annotated[str | None, typer.Option(
        "-o", "--out", help="Also record to this file (as damo record does).",
        show_default=False)] = None,
    format: Annotated[str, typer.Option(
        "--format", metavar="recfmt|json_compressed|json", help="Format of the -o record.")
    ] = "recfmt",
    refresh: Annotated[float, typer.Option(
        "--refresh", help="Seconds between two frames (0: every aggregation).")] = 1.0,
    top: Annotated[int, typer.Option("--top", help="Ranges per list.")] = 5,
    ops: Annotated[str, typer.Option(
        "--ops", help="Operations: vaddr (damo's BPF sampler) or sim.")] = "vaddr",
    sample: Annotated[int, typer.Option("-s", "--sample", help="Sampling interval (us).")] = 5000,
    aggr: Annotated[int, typer.Option("-a", "--aggr", help="Aggregation interval (us).")] = 100000,
    updr: Annotated[
        int, typer.Option("-u", "--updr", help="Regions update interval (us).")] = 1000000,
    minr: Annotated[int, typer.Option("-n", "--minr", help="Minimum number of regions.")] = 10,
    maxr: Annotated[int, typer.Option("-m", "--maxr", help="Maximum number of regions.")] = 1000,
    max_cpu: Annotated[float | None, typer.Option(
        "--max-cpu", help="CPU budget of damo, drawing included (% of one core; vaddr; see "
                          "damo record).", show_default=False)] = None,
    duration: Annotated[float | None, typer.Option(
        "--duration", help="Stop after this many seconds.", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the random source.", show_default=False)] = None,
) -> None:
    """Watch TARGET live: hottest and longest-idle ranges, WSS, RSS, a heat strip."""
    import shutil
    import sys
    import tempfile

    from damo.core.attrs import Attrs
    from damo.errors import UsageError
    from damo.live import LiveView, Terminal
    from damo.recording import Recording
    from damo.records.convert import check_format, open_record_writer

    if ops not in ("vaddr", "sim"):
        raise UsageError(f"--ops: expected vaddr or sim, not {ops!r}")
    check_format(format)
    if not 0 <= refresh < 3600:
        raise UsageError(f"--refresh must be 0 to 3600 seconds, not {refresh:g}")
    if top < 1:
        raise UsageError(f"--top must be at least 1, not {top}")
    attrs = Attrs(sample, aggr, updr, minr, maxr)
    scratch = None
    if out is None:
        # The recording keeps its sidecar somewhere; without -o, nowhere the user sees.
        scratch = tempfile.mkdtemp(prefix="damo-monitor-")
        path = f"{scratch}/monitor.data"
    else:
        path = out
    try:
        rec = Recording.prepare(target, ops, attrs, path, duration, seed, max_cpu=max_cpu)
        terminal = Terminal()
        header = _Header(rec)

        def opener(file: str) -> LiveView:
            inner = open_record_writer(file, format, attrs) if out is not None else None
            return LiveView(inner, terminal, attrs, round(refresh * 1e9), top,
                            processes=ops == "vaddr", header=header)

        rec.make_writer = opener
        rec.status = False
        with terminal:
            rec.run()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if out is not None:
        print(rec.summary(), file=sys.stderr)
    else:
        print(f"damo: monitored {header} for {rec.elapsed_ns / 1e9:.1f} s; ended by "
              f"{rec.reason}" + (f"; damo used {rec.cpu_share:.1%} of one CPU"
                                 if ops == "vaddr" else "") + ".", file=sys.stderr)
    if rec.fault is not None:
        raise rec.fault


class _Header:
    """What is watched, found once the targets run (a command starts with the run)."""

    def __init__(self, rec):
        self.rec = rec
        self.text = None

    def __call__(self) -> str:
        if self.text is None:
            self.text = _describe(self.rec)
        return self.text

    def __str__(self) -> str:
        return self()


def _describe(rec) -> str:
    ops = rec.ctx.ops
    if getattr(ops, "workload", None) is not None:
        return f"simulated {ops.workload.path}"
    command = getattr(ops, "command", None)
    pids = ", ".join(str(t.id) for t in rec.ctx.targets)
    if command is not None:
        return f"pid {pids} ({command})"
    names = []
    for t in rec.ctx.targets:
        try:
            with open(f"/proc/{t.id}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return f"pid {pids}" + (f" ({', '.join(names)})" if names else "")
