"""What a recording shows and how it hears a stop: the status line, signals, damo's own cost.

`StatusLine` is one line at the bottom of a terminal; `StopOnSignals` turns
SIGINT and SIGTERM into a call while a run is active; the three functions
measure damo itself (CPU from the scheduler's exact runtime, not sampled
ticks; peak memory).
"""

import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from typing import TextIO


class StatusLine:
    """One line at the bottom of a terminal, redrawn in place and erased at the end.

    Carriage return and erase-to-end-of-line, cut to the terminal's width so
    it never wraps: all a status line needs (rich's Live costs ~50 ms of CPU
    and several MiB to import at every start).
    """

    BOLD, PLAIN = "\x1b[1m", "\x1b[0m"
    ERASE = "\r\x1b[K"

    def __init__(self, stream: TextIO):
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


class StopOnSignals:
    """While active, SIGINT and SIGTERM call `on_signal` instead of killing the process."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_signal: Callable[[], None]):
        self.on_signal = on_signal
        self.saved: dict[int, object] = {}

    def _handler(self, signum: int, frame: object) -> None:
        self.on_signal()

    def __enter__(self) -> "StopOnSignals":
        # Signal handlers can only be set from the main thread (tests may run elsewhere).
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.saved[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def cpu_seconds() -> float:
    """damo's CPU time so far, all threads: the scheduler's exact runtime, not sampled ticks."""
    return time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)


def startup_cpu_seconds() -> float:
    """damo's CPU from its exec until now (CLOCK_PROCESS_CPUTIME_ID), and its helpers'.

    The helpers are the children reaped by now (a cold start compiles with bcc
    in one); a command damo runs to record is still running at the start.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def peak_rss_bytes() -> int:
    """The most memory damo has held resident so far (the kernel's VmHWM)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
