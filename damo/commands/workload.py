"""`damo workload FILE.toml`: run a workload file for real, as a process to monitor.

The file is checked and the regions mapped before the truth file is created,
so bad input leaves no file.  SIGINT and SIGTERM end the run cleanly: the
phase running is cut at that moment, its truth line written, exit status 0,
so a monitor that sees the process exit finds a complete truth file.
"""

import os
import signal
import sys
from typing import Annotated

import typer

NAME = "workload"
GROUP = None

DEFAULT_TICK_US = 5000  # DAMON's default sampling interval


def run(
    file: Annotated[
        str,
        typer.Argument(metavar="FILE.toml", help="The workload to run.", show_default=False),
    ],
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            help="Write the ground truth here: one JSON line per phase run, "
            "CLOCK_MONOTONIC times and the regions' real addresses.",
            show_default=False,
        ),
    ] = None,
    tick: Annotated[
        int,
        typer.Option(
            "--tick", help="Interval of the passes over the accessed regions (us)."
        ),
    ] = DEFAULT_TICK_US,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed of the per-page draws (probability < 1).",
                     show_default=False),
    ] = None,
    stats: Annotated[
        bool,
        typer.Option("--stats", help="At the end, print where the time went to stderr."),
    ] = False,
) -> None:
    """Map the regions of FILE.toml and access them phase by phase, for a monitor to watch."""
    import threading

    import numpy as np

    from damo.errors import UsageError
    from damo.workload.generator import Generator
    from damo.workload.load import load

    stop = threading.Event()
    saved = {sig: signal.signal(sig, lambda *_: stop.set())
             for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if tick <= 0:
            raise UsageError(f"--tick must be a positive number of microseconds, not {tick}")
        if seed is not None and seed < 0:
            raise UsageError(f"--seed must not be negative, not {seed}")
        if truth is not None:
            _check_writable(truth)
        workload = load(file)
        gen = Generator(workload, tick * 1000, np.random.default_rng(seed))
        log = _open_truth(truth) if truth is not None else None
        try:
            gen.fault_in()
            result = gen.run(stop, log)
        finally:
            if log is not None:
                log.close()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if stats:
        print(f"damo workload: {result.summary()}", file=sys.stderr)


def _check_writable(path: str) -> None:
    """Fail before anything runs when `path` cannot be created."""
    from damo.errors import UsageError

    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a directory")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: no directory {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {path}: {folder} is not writable")


def _open_truth(path: str):
    from damo.errors import DamoError
    from damo.workload.truth import TruthLog

    try:
        return TruthLog(path)
    except OSError as err:  # keeping an existing file as .old failed
        raise DamoError(f"cannot write {path}: {err.strerror}") from None
