"""Memory pressure on a target, and the relief damo gives it: file-backed regions not cleared.

Clearing an Accessed bit from user space (MADV_COLD) takes away what reclaim
judges a page by: a folio whose entries are old when reclaim scans it is
evicted, and damo keeps clearing the hot pages it samples.  Kernel DAMON sets
the folio's `young` flag as it clears, which reclaim counts as a reference;
user space cannot (docs/recording.md, "Memory pressure", measures it).  So
while memory is short (the cgroup uses `FULL` of its limit, or the machine
has less than `1 - FULL` of its memory available) and reclaim is at work on
the target's memory (its cgroup reclaimed at its limit since the last check:
v1 `memory.failcnt`, v2 `memory.events`' `max`; or it refaults file pages:
`memory.stat`'s `workingset_refault_file` rose by `MIN_RATE` pages a second
or more), and for `HOLD_NS` after, the regions that overlap its file mappings
are checked once per aggregation and their pages are never cleared: such a
check reads whether the page was accessed since anything last cleared it
(reclaim itself, under pressure).  A target whose cgroup is already short at
the start is relieved from the first aggregation, until the first check
(one aggregation) says whether reclaim is at work.  While a target's cgroup
has a limit and no relief, its reclaim count is also looked at every
`WATCH_NS` within an aggregation (one small file read), so that the relief
starts within WATCH_NS of the first reclaim, not at the next aggregation's
end (up to 400 ms later under the CPU budget, clearing hot pages all along).
Anonymous memory without swap cannot be reclaimed: its clearing goes on.

Reclaim at the limit is evidence enough: the pages reclaim then takes are the
inactive ones, and MADV_COLD makes a hot page inactive; waiting for refaults
(what the hot pages evicted so cost) let the first aggregations under pressure
clear as before.  A cgroup whose page cache just fills its limit, with nothing
charged to it since, is not relieved: nothing reclaims there.

`DAMO_PRESSURE_RELIEF=0` in the environment turns the relief off,
`DAMO_PRESSURE_RELIEF=refaults` lets only refaults start it, as it did first,
and `DAMO_PRESSURE_RELIEF=always` relieves a target with a memory cgroup
from the start to the end, pressure or not (for measuring them: bench/pressure's
`no_relief`, `refaults` and `always` arms).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

# How long the relief lasts after the last reclaim or refaults seen.
HOLD_NS = 10_000_000_000
# Refaults a second that mean pressure (1 MiB/s of 4 KiB pages).  This
# machine's own kdamond pages out cold memory, so a few refaults a second
# happen without any pressure (3 a second measured in an idle cgroup here;
# ~350,000 a second in bench/pressure's target).
MIN_RATE = 256
# Memory is short above this share used (refaults alone also come from the
# kdamond's pageout, and page cache grows to any limit: so both).
FULL = 0.9
# How often a target's cgroup with a limit, not relieved, is looked at within an
# aggregation (a Python wake-up and a read: ~0.1% of a CPU at 50 ms).
WATCH_NS = 50_000_000
CGROUP_ROOT = Path("/sys/fs/cgroup")
COUNTER = "workingset_refault_file"


def memory_stat_path(pid: int, root: Path = CGROUP_ROOT) -> Path | None:
    """The memory.stat of process `pid`'s memory cgroup (v1 or v2), or None."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # v1
            stat = root / "memory" / path.lstrip("/") / "memory.stat"
            return stat if stat.exists() else None
    for line in lines:
        if line.startswith("0::"):  # v2
            stat = root / line[3:].lstrip("/") / "memory.stat"
            return stat if stat.exists() else None
    return None


def read_stat(stat: Path) -> dict[str, int]:
    """The numbers of a memory.stat ({} when it cannot be read)."""
    out = {}
    try:
        for line in stat.read_text().splitlines():
            key, _, value = line.partition(" ")
            out[key] = int(value)
    except (OSError, ValueError):
        return {}
    return out


def limit_hits(stat: Path) -> int | None:
    """How often the cgroup of `stat` reached its limit and reclaimed (v1
    memory.failcnt, v2 memory.events' max), or None."""
    try:
        return int((stat.parent / "memory.failcnt").read_text())
    except (OSError, ValueError):
        pass
    try:
        for line in (stat.parent / "memory.events").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "max":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def read_counter(stat: Path) -> int | None:
    """The cgroup's own (not its descendants') file refaults, or None."""
    return read_stat(stat).get(COUNTER)


def short_of_memory(stat: Path, values: dict[str, int],
                    meminfo: Path = Path("/proc/meminfo")) -> bool:
    """Whether the cgroup uses FULL of its limit (v1: memory.stat's hierarchical
    limit and usage; v2: memory.max and memory.current), or the machine has less
    than 1 - FULL of its memory available."""
    limit = values.get("hierarchical_memory_limit")
    used = values.get("total_cache", 0) + values.get("total_rss", 0)
    if limit is None:  # v2
        try:
            text = (stat.parent / "memory.max").read_text().strip()
            limit = None if text == "max" else int(text)
            used = int((stat.parent / "memory.current").read_text())
        except (OSError, ValueError):
            limit = None
    if limit and used >= FULL * limit:
        return True
    try:
        info = dict(line.split(":", 1) for line in meminfo.read_text().splitlines())
        total = int(info["MemTotal"].split()[0])
        available = int(info["MemAvailable"].split()[0])
    except (OSError, KeyError, ValueError):
        return False
    return available < (1 - FULL) * total


class Pressure:
    """Whether reclaim is at work on a target's memory, asked once per aggregation."""

    def __init__(self, pid: int, root: Path = CGROUP_ROOT,
                 meminfo: Path = Path("/proc/meminfo"), now_ns: int | None = None):
        mode = os.environ.get("DAMO_PRESSURE_RELIEF")
        self.enabled = mode != "0"
        self.refaults_only = mode == "refaults"
        self.always = mode == "always"
        self.meminfo = meminfo
        self.stat = memory_stat_path(pid, root) if self.enabled else None
        self.last = read_counter(self.stat) if self.stat is not None else None
        self.last_hits = limit_hits(self.stat) if self.stat is not None else None
        # The clock of ctx.clock (vaddr's), unless given.
        self.last_ns = time.monotonic_ns() if now_ns is None else now_ns
        self.rose_at: int | None = None
        self.relieved_ns = 0  # time spent under relief, for the summary
        self._since: int | None = None
        # The relief's starts and ends not yet taken (time_ns, on): the sidecar's
        # "relief" messages, which say when counts of file-backed regions came
        # from checks without clears.
        self.changes: list[tuple[int, bool]] = []
        values = read_stat(self.stat) if self.stat is not None else {}
        # Short of memory at the start: relieved until the first check.
        self.at_start = self.stat is not None and not self.refaults_only and \
            (self.always or short_of_memory(self.stat, values, self.meminfo))
        # A limit of its own or an ancestor's (v1: below "no limit"; v2: memory.max).
        limit = values.get("hierarchical_memory_limit")
        if limit is None and self.stat is not None:
            try:
                limit = 0 if (self.stat.parent / "memory.max").read_text().strip() == "max" \
                    else 1
            except OSError:
                limit = 0
        self.limited = self.last_hits is not None and bool(limit) and limit < 1 << 60
        if self.at_start:
            self._start(self.last_ns)

    def check(self, now_ns: int) -> bool:
        """Whether to relieve the target now: short of memory and reclaimed at its
        cgroup's limit or refaulted fast, within HOLD_NS."""
        if self.stat is None:
            return False
        values = read_stat(self.stat)
        count = values.get(COUNTER)
        hits = None if self.refaults_only else limit_hits(self.stat)
        refaulting = count is not None and self.last is not None and \
            self.last_ns is not None and now_ns > self.last_ns and \
            (count - self.last) * 1e9 >= MIN_RATE * (now_ns - self.last_ns)
        reclaiming = hits is not None and self.last_hits is not None and hits > self.last_hits
        if self.always or (
                (refaulting or reclaiming) and short_of_memory(self.stat, values, self.meminfo)):
            self.rose_at = now_ns
        if count is not None:
            self.last, self.last_ns = count, now_ns
        if hits is not None:
            self.last_hits = hits
        self.at_start = False
        on = self.rose_at is not None and now_ns - self.rose_at < HOLD_NS
        if on:
            self._start(now_ns)
        elif self._since is not None:
            self.relieved_ns += now_ns - self._since
            self._since = None
            self.changes.append((now_ns, False))
        return on

    def watching(self, on: bool) -> bool:
        """Whether to look at the reclaim count within aggregations: a limit, the relief
        (`on`) not started, only refaults not asked for."""
        return self.limited and not on and not self.refaults_only

    def reclaimed(self, now_ns: int) -> bool:
        """Within an aggregation: whether the cgroup reclaimed at its limit since the
        last look, memory short (the relief then starts now, held as check() holds it)."""
        hits = limit_hits(self.stat)
        if hits is None or self.last_hits is None or hits <= self.last_hits:
            return False
        self.last_hits = hits
        if not short_of_memory(self.stat, read_stat(self.stat), self.meminfo):
            return False
        self.rose_at = now_ns
        self._start(now_ns)
        return True

    def _start(self, now_ns: int) -> None:
        """The relief on from `now_ns`, unless it already is (a "relief" message when it starts)."""
        if self._since is None:
            self._since = now_ns
            self.changes.append((now_ns, True))

    def relieved(self, now_ns: int) -> float:
        """Seconds under relief so far."""
        open_ns = now_ns - self._since if self._since is not None else 0
        return (self.relieved_ns + open_ns) / 1e9
