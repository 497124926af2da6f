"""`vaddr`: real processes' virtual address spaces, through the BPF page sampler.

The seed's `damon_va_*` primitives in user space.  Regions come from
`/proc/PID/maps` (the monitored ranges, at start and every update interval);
sampling is sampling.py's (the BPF sample program, the native loop, the CPU
budget).  This module starts and ends the targets: a command it runs, the
processes given, the children that join (children.py).

A process that execs gets a new address space; every update interval the
target's current `mm_struct` is compared with the one sampled, and on a
change the sampler and the regions start over.  A process that exits makes
its target invalid; monitoring ends when no target is valid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from damo.core.clock import MonotonicClock
from damo.core.target import Target
from damo.errors import TargetError
from damo.ops.common import (
    AddrRange,
    VaddrOperations,
    apply_three_regions,
    init_regions,
)
from damo.ops.vaddr.children import Children
from damo.ops.vaddr.command import check_command, is_simple_command, parse_targets, shell_command
from damo.ops.vaddr.process import Process
from damo.ops.vaddr.sampling import Sampling
from damo.sampler.walker import MAX_REGIONS

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.linux.maps import Mapping

# Not a VMA: the legacy vsyscall page sits far above user space and would
# otherwise make the gap below it the biggest one.
NOT_VMAS = ("[vsyscall]",)
# How long a started command's shell may take to exec it.
EXEC_WAIT_S = 2.0
# How long a command damo started gets to exit after SIGTERM.
TERM_WAIT_S = 5.0
# The largest -m/--maxr: the sample program's arrays hold every region; after
# a split there are at most max_nr_regions, and an update adds at most three.
MAX_NR_REGIONS = MAX_REGIONS - 3


class VaddrBpfOperations(Sampling, VaddrOperations):
    name = "vaddr"

    def __init__(self, pids: Sequence[int], command: str | None = None):
        from damo.sampler.walker import walker

        self.walker = walker()
        self.pids = list(pids)
        self.command = command
        self.child: subprocess.Popen | None = None
        self.procs: dict[int, Process] = {}
        from damo.sampler.colocate import CpuFollower

        self.cpu = CpuFollower()
        # `damo record --colocate`: sample from the CPU of the target's main
        # thread while there is one target (damo.sampler.colocate says why).
        self.colocate_requested = False
        self.colocate = False
        # Targets that end, and child processes that join (--include_child_tasks).
        self.children = Children(self)
        self._relieved_s = 0.0  # the longest relief of a target that has left
        self._init_sampling()
        # Open the samplers of existing processes now: errors before any output.
        for pid in self.pids:
            self.procs[pid] = Process(pid, self.walker)

    # starting and ending

    def init(self, ctx: Context) -> None:
        if self.command is not None:
            self._start_command(ctx)
        self.children.start(ctx)
        # Pages a process faulted in just before (one started a moment ago,
        # or gone to sleep since) may wait in another CPU's LRU batch, where
        # MADV_COLD cannot clear them: until the first update's drain they
        # would read accessed on every sample.
        self._drain(ctx)
        for t in ctx.targets:
            self._refresh_maps(ctx, t)
        self._check_colocation()
        super().init(ctx)
        self._start_sampling(ctx)

    def _start_command(self, ctx: Context) -> None:
        """Run the command through /bin/sh and sample it from its exec on."""
        from damo.process_env import given_env

        try:
            self.child = subprocess.Popen(["/bin/sh", "-c", shell_command(self.command)],
                                          env=given_env())
        except OSError as e:
            raise TargetError(f"cannot start /bin/sh: {e.strerror}") from None
        pid = self.child.pid
        if is_simple_command(self.command):
            # The shell execs the command: sample the command's address space.
            shell = os.path.realpath("/bin/sh")
            deadline = time.monotonic() + EXEC_WAIT_S
            while time.monotonic() < deadline and self.child.poll() is None:
                try:
                    if os.readlink(f"/proc/{pid}/exe") != shell:
                        break
                except OSError:
                    break
                time.sleep(0.0005)
        self.pids = [pid]
        ctx.set_targets([pid])
        try:
            self.procs[pid] = Process(pid, self.walker)
        except TargetError:
            # Exited at once (a failing command): nothing to monitor, not an error of damo.
            self.procs.pop(pid, None)

    def cleanup(self, ctx: Context) -> None:
        self._stop_kernel_checks()  # detached before the samplers let go of the targets' mm
        self.cpu.release()
        running = self.child is not None and self.child.poll() is None
        if running:
            # Stopped early (duration, signal): damo started the command, damo ends it,
            # before its descendants (a shell that saw its child end first would go on).
            self.child.terminate()
        if self.child is not None:
            # Stopped early: the command's monitored descendants end with it
            # (they would outlive the shell).
            for pid in self.children.parents:
                p = self.procs.get(pid)
                if p is not None and p.valid:
                    p.sampler.send_signal(signal.SIGTERM)
        # The walker outlives this run (one per process): leave no budget behind in it.
        self.walker.regions.flags[:] = 0
        for p in self.procs.values():
            p.close()
        if running:
            try:
                self.child.wait(TERM_WAIT_S)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()

    @property
    def command_status(self) -> int | None:
        """The started command's exit status (negative: killed by that signal), if it ended."""
        return None if self.child is None else self.child.poll()

    def target_valid(self, target: Target) -> bool:
        return self._proc(target) is not None

    # targets joining and leaving (children.py decides which)

    def add_target(self, ctx: Context, pid: int) -> bool:
        """Monitor process `pid` too, from the next sample on; False when it has ended."""
        try:
            self.procs[pid] = Process(pid, self.walker)
        except TargetError:
            return False
        t = Target(pid)
        ctx.add_target(t)
        self._refresh_maps(ctx, t)
        ranges = self._monitored_ranges(ctx, t)
        if ranges is not None:
            init_regions(t, ranges, ctx.attrs.min_nr_regions, ctx.min_region)
        return True

    def drop_target(self, pid: int) -> None:
        """Forget an ended target's process (its last record is written)."""
        p = self.procs.pop(pid, None)
        if p is not None:
            self._relieved_s = max(self._relieved_s, p.pressure.relieved(time.monotonic_ns()))
            p.close()

    def check_exec(self, ctx: Context, pid: int) -> None:
        """The exec rule (`_check_exec`) for one target, by id, now."""
        for t in ctx.targets:
            if t.id == pid:
                self._check_exec(ctx, t)
                return

    # regions

    def mappings(self, target: Target) -> list[AddrRange] | None:
        p = self._proc(target)
        if p is None or p.maps is None:
            return None
        return [(m.start, m.end) for m in p.maps if m.path not in NOT_VMAS]

    def _refresh_maps(self, ctx: Context, t: Target) -> bool:
        """Read the target's maps; log them when they changed; whether they did."""
        from damo.linux.maps import parse_maps, read_maps_text

        p = self._proc(t)
        if p is None:
            return False
        try:
            text = read_maps_text(p.pid)
        except TargetError:
            p.valid = False
            return False
        if p.maps is not None and text == p.maps_text:
            return False
        p.maps, p.maps_text = parse_maps(text), text
        p.shared_ranges = np.array([(m.start, m.end) for m in p.maps if m.perms[3:4] == "s"],
                                   dtype=np.int64).reshape(-1, 2)
        p.file_ranges = np.array([(m.start, m.end) for m in p.maps
                                  if m.inode and m.path.startswith("/")],
                                 dtype=np.int64).reshape(-1, 2)
        # A shared page may have been unmapped or copied on write since: try it again.
        p.sampler.forget_shared()
        p.maps_log.append((ctx.clock.now_ns(), p.maps))
        return True

    def update(self, ctx: Context) -> None:
        for t in ctx.targets:
            self._check_exec(ctx, t)
            # Same maps, same ranges: fitting the regions to them changes nothing.
            if self._refresh_maps(ctx, t):
                ranges = self._monitored_ranges(ctx, t)
                if ranges is not None:
                    apply_three_regions(t, ranges, ctx.min_region)
        self._drain(ctx)
        self._check_colocation()

    def relieved_seconds(self) -> float:
        """Seconds the targets spent spared clearing of their file-backed regions (the most)."""
        now = time.monotonic_ns()
        return max([self._relieved_s, *(p.pressure.relieved(now) for p in self.procs.values())])

    def _drain(self, ctx: Context) -> None:
        """Flush the per-CPU LRU batches, where MADV_COLD cannot clear pages faulted in moments ago.

        MADV_COLD itself drains its own CPU's batch; the others hold at most a
        few pages each, so once at the start and once per update interval is
        plenty.  The batches are the CPUs', not the processes': one drain,
        through any live target, serves them all (each interrupts every CPU).
        """
        for p in filter(None, map(self._proc, ctx.targets)):
            try:
                p.sampler.drain()
            except TargetError:
                p.valid = False
                continue
            return

    def _check_colocation(self) -> None:
        self.colocate = self.colocate_requested and sum(p.valid for p in self.procs.values()) == 1
        if not self.colocate:
            self.cpu.release()

    def take_maps(self) -> list[tuple[int, int, list[Mapping]]]:
        """(target id, time_ns, maps) of each mappings change since the last call."""
        out = []
        for pid, p in self.procs.items():
            out.extend((pid, ns, maps) for ns, maps in p.maps_log)
            p.maps_log.clear()
        return out

    def take_relief(self) -> list[tuple[int, int, bool]]:
        """(target id, time_ns, on) of each start and end of a target's memory-pressure
        relief since the last call (pressure.py)."""
        out = []
        for pid, p in self.procs.items():
            out.extend((pid, ns, on) for ns, on in p.pressure.changes)
            p.pressure.changes.clear()
        return out

    def _check_exec(self, ctx: Context, t: Target) -> None:
        """Start over on a new address space when the process has exec'ed."""
        p = self._proc(t)
        if p is None:
            return
        mm = p.current_mm()
        if mm is None:
            p.valid = p.sampler.alive()
            return
        if mm == p.mm:
            return
        try:
            p.reopen()
        except TargetError:
            p.valid = False
            return
        p.maps = None
        self._refresh_maps(ctx, t)
        t.clear()
        ranges = self._monitored_ranges(ctx, t)
        if ranges is not None:
            init_regions(t, ranges, ctx.attrs.min_nr_regions, ctx.min_region)

    def reset_aggregated(self, ctx: Context) -> None:
        # Memory pressure, asked per aggregation (34 us a read of memory.stat here):
        # the next plan marks the regions to spare (pressure.py).
        now = ctx.clock.now_ns()
        for p in self.procs.values():
            if p.valid:
                p.relief = p.pressure.check(now)
        self._reset_sampling(ctx)
        # Targets that ended leave and new children join between two windows.
        self.children.step(ctx)

    # for the live status

    def rss_bytes(self, target_id: int) -> int | None:
        from damo.linux.footprint import read_footprint

        footprint = read_footprint(target_id)
        return None if footprint is None else footprint[1]


class Setup(NamedTuple):
    ops: VaddrBpfOperations
    target_ids: list[int]
    clock: MonotonicClock


def setup(args: list[str]) -> Setup:
    """`damo record PID...` or `damo record "COMMAND"`: check everything, start nothing yet."""
    from damo.linux import preflight

    pids, command = parse_targets(args)
    preflight.check_all()
    for pid in pids:
        preflight.check_pid(pid)
    if command is not None:
        check_command(command)
    ops = VaddrBpfOperations(pids, command)  # the native loop loads, or one line says why
    return Setup(ops, list(pids), MonotonicClock())

