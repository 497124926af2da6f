"""`damo monitor`: a recording whose records are also drawn, live, in the terminal.

The monitor is a `damo.recording.Recording` like `damo record`'s (same
operations, CPU budget, signals, sidecar); only its record writer differs:
`LiveView` has `RecordWriter`'s interface, passes every record on to the
real writer when there is an output (``-o``), and hands a copy of the
snapshot to the view's thread every refresh interval of the run's clock.
Per aggregation the recording only keeps the accessed ranges for the idle
tracker; the frame (hottest and longest-idle ranges named like `report hot`,
WSS, RSS, heat strip) is computed and drawn by the thread, which also
watches the keys, so drawing (a first frame parses ELF files: tens of ms)
never delays an aggregation: the thread runs while the sampling loop
sleeps with the GIL released.  Under the default CPU budget the drawing counts
against the same budget as sampling, since the budget measures the whole
process.

``q`` (or Ctrl-C, SIGINT, SIGTERM) ends the run at the end of the current
aggregation: the output, when there is one, ends with a whole record.
"""

import os
import queue
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from damo.reports import live_view

HEAT_ROWS = 6


class Terminal:
    """The alternate screen of a terminal, with keys read without Enter; plain text otherwise."""

    def __init__(self, out=None, keys=None):
        self.out = out or sys.stdout
        self.keys = keys if keys is not None else sys.stdin
        self.tty = self.out.isatty()
        self._saved = None
        self._key_fd = None
        self.last_frame: list[str] = []

    def __enter__(self) -> "Terminal":
        if self.tty:
            self._write("\x1b[?1049h\x1b[?25l")  # alternate screen, no cursor
        try:
            fd = self.keys.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd is not None and os.isatty(fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)  # keys without Enter; Ctrl-C still signals
            self._key_fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self._key_fd, termios.TCSADRAIN, self._saved)
        if self.tty:
            self._write("\x1b[?25h\x1b[?1049l")
            # The last frame stays on the normal screen.
            self._write("".join(line + "\n" for line in self.last_frame))

    def size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.out.fileno())
            return size.columns, size.lines
        except (OSError, ValueError, AttributeError):
            return 100, 40

    def wait(self, fds: list[int]) -> list[int]:
        """Sleep until one of `fds` or the keys can be read; the readable fds."""
        watched = fds + ([self._key_fd] if self._key_fd is not None else [])
        try:
            ready, _, _ = select.select(watched, [], [])
        except InterruptedError:
            return []
        return ready

    def quit_pressed(self) -> bool:
        """Whether q was typed since the last look (never blocks)."""
        if self._key_fd is None:
            return False
        try:
            ready, _, _ = select.select([self._key_fd], [], [], 0)
            return bool(ready) and any(c in b"qQ" for c in os.read(self._key_fd, 64))
        except OSError:
            return False

    def draw(self, lines: list[str]) -> None:
        self.last_frame = lines
        if self.tty:
            self._write("\x1b[H" + "".join(line + "\x1b[K\n" for line in lines) + "\x1b[J")
        else:
            self._write("".join(line + "\n" for line in lines) + "\n")

    def _write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            pass  # the terminal went away: the recording goes on


class _Names:
    """Range names of one process from its current /proc/PID/maps (`report hot`'s annotation).

    Regions change little from one refresh to the next: what a range is cut
    into and each piece's name are kept until the mappings change.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self._text = None
        self._annotator = None
        self._parts: dict[tuple[int, int], list] = {}
        self._labels: dict[tuple[int, int], str] = {}

    def refresh(self) -> None:
        from damo.errors import TargetError
        from damo.linux.maps import parse_maps, read_maps_text
        from damo.reports.annotate import Annotator

        try:
            text = read_maps_text(self.pid)
        except TargetError:
            return
        if text == self._text:
            return  # most refreshes: the ELF files parsed stay cached
        self._text = text
        self._parts.clear()
        self._labels.clear()
        maps = [[m.start, m.end, m.perms, m.offset, m.path, m.dev, m.inode]
                for m in parse_maps(text)]
        self._annotator = Annotator([{"type": "maps", "target_id": self.pid, "time_ns": 0,
                                      "maps": maps}])

    def name(self, start: int, end: int) -> str:
        if self._annotator is None:
            return ""
        key = (start, end)
        if key not in self._labels:
            ann = self._annotator.annotate(self.pid, start, end, 0)
            self._labels[key] = "" if ann is None else ann.label()
        return self._labels[key]

    def mapped(self, ranges: list[live_view.Range], top: int) -> list[live_view.Range]:
        """`ranges` (most idle first) cut at mappings, unmapped space left out, named.

        Only as many ranges are cut as give 3 x `top` pieces, and only the
        `top` pieces kept are named: naming (ELF symbols) is what costs.
        """
        if self._annotator is None:
            return ranges
        out: list[live_view.Range] = []
        for r in ranges:
            for start, end, part in self._cut(r.start, r.end):
                out.append(live_view.Range(start, end, 0, r.idle_ns, r.never, part))
            if len(out) >= 3 * top:
                break
        kept = live_view.longest_idle(out, top)
        for r in kept:
            key = (r.start, r.end)
            if key not in self._labels:
                self._labels[key] = r.name.label()
            r.name = self._labels[key]
        return kept

    def _cut(self, start: int, end: int) -> list:
        key = (start, end)
        if key not in self._parts:
            from damo.reports.annotate import UNMAPPED

            ann = self._annotator.annotate(self.pid, start, end, 0)
            self._parts[key] = [(p.start, p.end, p) for p in (ann.parts if ann else [])
                                if p.mapping != UNMAPPED and p.end - p.start >= 4096]
        return self._parts[key]


class LiveView:
    """The monitor's record writer: draws the records, passes them on to `inner` (or not)."""

    def __init__(self, inner: Any, terminal: Terminal, attrs: Any, refresh_ns: int, top: int,
                 processes: bool, header: Any):
        self.inner = inner
        self.terminal = terminal
        self.attrs = attrs
        self.refresh_ns = refresh_ns
        self.top = top
        self.processes = processes
        self.header = header
        self.max_nr = max(attrs.aggr_interval // attrs.sample_interval, 1)
        if processes:
            # Imported with the rest of the start-up, not in the first frame.
            import damo.linux.footprint  # noqa: F401
            import damo.linux.maps  # noqa: F401
            import damo.reports.annotate  # noqa: F401
        self.nr_records = 0
        self.nr_frames = 0
        self.done = ""
        self.failed = False
        self.path = getattr(inner, "path", None)
        self._trackers: dict[int, live_view.IdleTracker] = {}
        self._names: dict[int, _Names] = {}
        self._history: deque = deque(maxlen=200)
        self._start_ns: int | None = None
        self._next_ns = 0
        self._lock = threading.Lock()  # the trackers: fed by the recording, read by the view
        self._frames: queue.Queue = queue.Queue()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._cpu0 = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
        self._wall0 = time.monotonic()

    def write(self, time_ns: int, targets: Sequence[Any]) -> None:
        if self.inner is not None:
            self.inner.write(time_ns, targets)
            self.failed = self.inner.failed
        self.nr_records += 1
        if self._start_ns is None:
            self._start_ns = time_ns - self.attrs.aggr_interval * 1000
            self._next_ns = time_ns
            self._thread = threading.Thread(target=self._draw_loop, name="damo-view",
                                            daemon=True)
            self._thread.start()
        with self._lock:
            for t in targets:
                tracker = self._trackers.get(t.target_id)
                if tracker is None:
                    tracker = self._trackers[t.target_id] = live_view.IdleTracker(self._start_ns)
                tracker.saw(t.start, t.end, t.nr_accesses)
        if time_ns >= self._next_ns:
            self._next_ns = time_ns + self.refresh_ns
            # The engine reuses its arrays: the frame gets copies (a few hundred regions).
            self._queue((time_ns, [_Snapshot(t.target_id, t.start.copy(), t.end.copy(),
                                                  t.nr_accesses.copy()) for t in targets]))

    def _draw_loop(self) -> None:
        """The view's thread: frames as the records come, keys as they are typed.

        It sleeps in select() on the keys and a pipe the recording writes a
        byte to with each frame queued: no wake-up of its own between frames.
        """
        try:
            while True:
                ready = self.terminal.wait([self._wake_r])
                if self._wake_r in ready:
                    os.read(self._wake_r, 4096)
                while True:
                    try:
                        item = self._frames.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        return
                    self.terminal.draw(self.frame(*item))
                    self.nr_frames += 1
                if not self.done and self.terminal.quit_pressed():
                    self.done = "quit"  # the recording ends at its next aggregation
        except BaseException as err:  # noqa: BLE001 - handed to the main thread at close
            self._error = err
            self.done = "an error of the view"

    def _queue(self, item: Any) -> None:
        self._frames.put(item)
        try:
            os.write(self._wake_w, b"f")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already

    def frame(self, now_ns: int, targets: Sequence[Any]) -> list[str]:
        """The lines of one frame for the snapshot of `targets` at `now_ns`."""
        width, height = self.terminal.size()
        width = max(width, 40)
        many = len(targets) > 1
        hot: list[live_view.Range] = []
        idle: list[live_view.Range] = []
        wss = rss = 0
        nr_regions = 0
        column = [0.0] * HEAT_ROWS
        for t in targets:
            tracker = self._trackers[t.target_id]
            with self._lock:
                tracker.paint(now_ns)
            nr_regions += len(t.start)
            wss += live_view.wss_bytes(t.start, t.end, t.nr_accesses)
            found = live_view.hottest(t.start, t.end, t.nr_accesses, self.top)
            gone = live_view.longest_idle(tracker.idle(t.start, t.end, t.nr_accesses, now_ns),
                                          self.top)
            names = self._names_of(t.target_id)
            if names is not None:
                for r in found:
                    r.name = names.name(r.start, r.end)
                gone = names.mapped(gone, self.top)
            for r in found + gone:
                r.name = (f"[{t.target_id}] " if many else "") + r.name
            hot += found
            idle += gone
            if self.processes:
                from damo.linux.footprint import read_footprint

                fp = read_footprint(t.target_id)
                rss += fp[1] if fp is not None else 0
            cells = live_view.heat_column(t.start, t.end, t.nr_accesses, HEAT_ROWS, self.max_nr)
            column = [max(a, b) for a, b in zip(column, cells, strict=True)]
        self._history.append([live_view.heat_char(c) for c in column])
        hot.sort(key=lambda r: (-r.nr_accesses, -r.size))
        idle.sort(key=lambda r: (-r.idle_ns, -r.size))
        elapsed = (now_ns - (now_ns if self._start_ns is None else self._start_ns)) / 1e9
        wall = time.monotonic() - self._wall0
        cpu = (time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) - self._cpu0) / wall * 100 \
            if wall > 0 else 0.0
        size = live_view.format_size
        lines = [
            f"damo monitor  {self.header() if callable(self.header) else self.header}"[:width],
            f"{elapsed:7.1f} s   {nr_regions} regions   aggregation "
            f"{self.attrs.aggr_interval / 1000:g} ms   damo CPU {cpu:.1f}%   q: quit"[:width],
            (f"WSS {size(wss)}" + (f"   RSS {size(rss)}" if self.processes else "")
             + (f"   recording to {self.path}" if self.path else ""))[:width],
            "",
            "hottest" + " " * 29 + "size   nr_accesses  name",
        ]
        lines += [live_view.range_line(r, f"{r.nr_accesses}/{self.max_nr}", width)
                  for r in hot[: self.top]] or ["  (nothing accessed in the last aggregation)"]
        lines += ["", "longest idle" + " " * 24 + "size     idle since  name"]
        lines += [live_view.range_line(r, live_view.format_idle(r.idle_ns, r.never), width)
                  for r in idle[: self.top]] or ["  (no idle region)"]
        strip = max(width - 4, 10)
        cols = list(self._history)[-strip:]
        seconds = self.refresh_ns / 1e9
        lines += ["", f"heat: address space (gaps left out) top to bottom, one column per "
                      f"{seconds:g} s, newest right (darker: more accesses)"[:width]]
        for row in range(HEAT_ROWS):
            lines.append("  |" + "".join([c[row] for c in cols]).rjust(strip - 1) + "|")
        return lines[: max(height - 1, 10)]

    def _names_of(self, target_id: int) -> _Names | None:
        if not self.processes:
            return None
        names = self._names.get(target_id)
        if names is None:
            names = self._names[target_id] = _Names(target_id)
        names.refresh()
        return names

    def close(self) -> None:
        if self._thread is not None:
            self._queue(_STOP)  # after the frames queued: each is drawn
            self._thread.join()
            self._thread = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self.inner is not None:
            self.inner.close()
        if self._error is not None:
            raise self._error


class _Snapshot:
    __slots__ = ("target_id", "start", "end", "nr_accesses")

    def __init__(self, target_id, start, end, nr_accesses):
        self.target_id, self.start, self.end, self.nr_accesses = target_id, start, end, \
            nr_accesses


_STOP = object()
