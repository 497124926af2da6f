"""`vaddr`: real processes' virtual address spaces, through the BPF page sampler.

The seed's `damon_va_*` primitives in user space.  Regions come from
`/proc/PID/maps` (three regions, at start and every update interval); per
sample each region's random page is checked and made old through
`damo.sampler.PageSampler`: one BPF walk says present / young / leaf size,
`process_madvise(MADV_COLD)` clears the Accessed bit of the pages that are
young (an old page needs no clearing), whole huge-page leaves at once.

One step, merged: the check of sample k and the preparation of sample k+1
share one BPF run.  `check_accesses` draws the next sampling addresses as
well, walks the previous and the next ones together, counts the previous and
clears the next.  `prepare_access_checks` then only swaps the drawn
addresses in; when the regions changed in between (aggregation, update) it
draws and clears afresh.  A page whose bit could not be cleared (shared with
another process) is not counted on the next check: its bit is no evidence.

A process that execs gets a new address space; every aggregation the
target's current `mm_struct` is compared with the one sampled, and on a
change the sampler and the regions start over.  A process that exits makes
its target invalid; monitoring ends when no target is valid.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from damo.core.clock import MonotonicClock
from damo.core.target import ADDR_DTYPE, Target
from damo.errors import TargetError, UsageError
from damo.ops.common import (
    AddrRange,
    VaddrOperations,
    draw_sampling_addrs,
    init_regions,
    three_regions,
)

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.linux.maps import Mapping
    from damo.sampler import PageSampler
    from damo.sampler.walker import Walker

PAGE_ACCESSED = np.uint64(1 << 5)
PAGE_SHIFT = 12
# Not a VMA: the legacy vsyscall page sits far above user space and would
# otherwise make the gap below it the biggest one.
NOT_VMAS = ("[vsyscall]",)
# How long a started command's shell may take to exec it.
EXEC_WAIT_S = 2.0
# How long a command damo started gets to exit after SIGTERM.
TERM_WAIT_S = 5.0


def in_sorted(keys: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Which of `keys` are in the sorted, non-empty `sorted_values` (np.isin: ten times slower)."""
    pos = np.searchsorted(sorted_values, keys)
    np.minimum(pos, len(sorted_values) - 1, out=pos)
    return sorted_values[pos] == keys


class Process:
    """What the operations keep per target process."""

    def __init__(self, pid: int, walker: Walker):
        self.pid = pid
        self.walker = walker
        self.valid = True
        self.sampler = self._open()
        self.mm = self.sampler.mm()
        # per sampling address of the current sample: bit not cleared, no evidence
        # (None: every bit was cleared)
        self.uncleared: np.ndarray | None = None
        # the next sample, drawn and cleared by the last check
        self.next_addr: np.ndarray | None = None
        self.next_uncleared: np.ndarray | None = None
        self.next_for: tuple[np.ndarray, np.ndarray] | None = None
        # page numbers (addr >> 12) found uncleared, sorted, forgotten when the maps change
        self.shared = np.zeros(0, dtype=ADDR_DTYPE)
        self.maps: list[Mapping] | None = None
        # (time_ns, maps) of every change not yet taken by the recorder
        self.maps_log: list[tuple[int, list[Mapping]]] = []

    def _open(self) -> PageSampler:
        from damo.sampler import PageSampler

        return PageSampler(self.pid, self.walker)

    def current_mm(self) -> int | None:
        """The mm_struct the process has now (None when it is gone)."""
        try:
            fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return self.walker.walk(fd, np.empty(0, dtype=np.uint64))[2]
        except Exception:  # noqa: BLE001 - a kernel thread now, or gone: no mm
            return None
        finally:
            os.close(fd)

    def reopen(self) -> None:
        self.sampler.close()
        self.sampler = self._open()
        self.mm = self.sampler.mm()
        self.next_for = None

    def close(self) -> None:
        self.sampler.close()
        self.valid = False


class VaddrBpfOperations(VaddrOperations):
    name = "vaddr"

    def __init__(self, pids: Sequence[int], command: str | None = None):
        from damo.sampler.walker import walker

        self.walker = walker()
        self.pids = list(pids)
        self.command = command
        self.child: subprocess.Popen | None = None
        self.procs: dict[int, Process] = {}
        # Open the samplers of existing processes now: errors before any output.
        for pid in self.pids:
            self.procs[pid] = Process(pid, self.walker)

    # starting and ending

    def init(self, ctx: Context) -> None:
        if self.command is not None:
            self._start_command(ctx)
        for t in ctx.targets:
            self._refresh_maps(ctx, t)
        super().init(ctx)

    def _start_command(self, ctx: Context) -> None:
        """Run the command through /bin/sh and sample it from its exec on."""
        try:
            self.child = subprocess.Popen(["/bin/sh", "-c", shell_command(self.command)])
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
        for p in self.procs.values():
            p.close()
        if self.child is not None and self.child.poll() is None:
            # Stopped early (duration, signal): damo started the command, damo ends it.
            self.child.terminate()
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
        p = self.procs.get(target.id)
        return p is not None and p.valid

    # regions

    def mappings(self, target: Target) -> list[AddrRange] | None:
        p = self.procs.get(target.id)
        if p is None or not p.valid or p.maps is None:
            return None
        return [(m.start, m.end) for m in p.maps if m.path not in NOT_VMAS]

    def _refresh_maps(self, ctx: Context, t: Target) -> None:
        """Read the target's maps; log them when they changed."""
        from damo.linux.maps import read_maps

        p = self.procs.get(t.id)
        if p is None or not p.valid:
            return
        try:
            maps = read_maps(p.pid)
        except TargetError:
            p.valid = False
            return
        if maps != p.maps:
            p.maps = maps
            # A shared page may have been unmapped or copied on write since: try it again.
            p.shared = p.shared[:0]
            p.maps_log.append((ctx.clock.now_ns(), maps))

    def update(self, ctx: Context) -> None:
        for t in ctx.targets:
            self._refresh_maps(ctx, t)
            self._invalidate_next(t)
        super().update(ctx)

    def take_maps(self) -> list[tuple[int, int, list[Mapping]]]:
        """(target id, time_ns, maps) of each mappings change since the last call."""
        out = []
        for pid, p in self.procs.items():
            out.extend((pid, ns, maps) for ns, maps in p.maps_log)
            p.maps_log.clear()
        return out

    def reset_aggregated(self, ctx: Context) -> None:
        # Merge and split just changed the regions: the drawn next sample is stale.
        for t in ctx.targets:
            self._invalidate_next(t)
            self._check_exec(ctx, t)
            p = self.procs.get(t.id)
            if p is not None and p.valid:
                # Pages faulted in moments ago sit in per-CPU LRU batches, where
                # MADV_COLD cannot clear them: flush those once per aggregation.
                try:
                    p.sampler.drain()
                except TargetError:
                    p.valid = False

    def _check_exec(self, ctx: Context, t: Target) -> None:
        """Start over on a new address space when the process has exec'ed."""
        p = self.procs.get(t.id)
        if p is None or not p.valid:
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
        ranges = three_regions(self.mappings(t) or [], ctx.min_region)
        if ranges is not None:
            init_regions(t, ranges, ctx.attrs.min_nr_regions, ctx.min_region)

    def _invalidate_next(self, t: Target) -> None:
        p = self.procs.get(t.id)
        if p is not None:
            p.next_for = None

    # sampling

    def _stage(self, p: Process, addrs: np.ndarray, young: np.ndarray,
               shifts: np.ndarray) -> np.ndarray | None:
        """Clear the young ones of `addrs` (leaf `shifts` from the walk); which could not be.

        None when every page is old now: the common case, which then costs the
        caller nothing.  `shifts` may be a view of the walk's buffer: it is
        read before clearing walks again.
        """
        idx = np.flatnonzero(young)
        if not len(idx):
            return None
        uncleared = None
        if len(p.shared):
            # Pages found shared before stay young: skip the advice that would fail again.
            known = in_sorted(addrs[idx] >> PAGE_SHIFT, p.shared)
            if known.any():
                uncleared = np.zeros(len(addrs), dtype=bool)
                uncleared[idx[known]] = True
                idx = idx[~known]
                if not len(idx):
                    return uncleared
        sizes = np.left_shift(np.uint64(1), shifts[idx])
        # No drain per step (it costs ~0.1 ms): reset_aggregated drains instead.
        still = p.sampler.clear_young(addrs[idx], sizes, drain=False)
        if still.any():
            if uncleared is None:
                uncleared = np.zeros(len(addrs), dtype=bool)
            uncleared[idx] = still
            # New ones only (known ones were not advised): no np.union1d's unique pass.
            p.shared = np.sort(np.concatenate((p.shared, addrs[idx[still]] >> PAGE_SHIFT)))
        return uncleared

    def mkold(self, target: Target) -> None:
        p = self.procs[target.id]
        st = p.sampler.walk(target.sampling_addr)
        p.uncleared = self._stage(p, target.sampling_addr, st.young, st.shifts)

    def young(self, target: Target) -> np.ndarray:
        p = self.procs[target.id]
        young = p.sampler.walk(target.sampling_addr).young
        return young if p.uncleared is None else young & ~p.uncleared

    def prepare_access_checks(self, ctx: Context) -> None:
        from damo.sampler import TargetGone

        for t in ctx.targets:
            p = self.procs.get(t.id)
            if p is None or not p.valid or not t.nr_regions:
                continue
            if p.next_for is not None and p.next_for[0] is t.start and p.next_for[1] is t.end \
                    and len(p.next_addr) == t.nr_regions:
                t.sampling_addr = p.next_addr
                p.uncleared = p.next_uncleared
                p.next_for = None
                continue
            t.sampling_addr = draw_sampling_addrs(ctx.rng, t.start, t.end)
            try:
                self.mkold(t)
            except TargetGone:
                p.valid = False

    def check_accesses(self, ctx: Context) -> int:
        """Count the last sample and prepare the next one, in one BPF run per target.

        Unless merge/split or an update follows (`ctx.regions_change_next`): then
        the next sample is drawn by `prepare_access_checks` on the new regions.
        """
        from damo.sampler import TargetGone

        max_nr_accesses = 0
        for t in ctx.targets:
            p = self.procs.get(t.id)
            n = t.nr_regions
            if p is None or not p.valid or not n:
                continue
            # No sample ahead when the regions change right after this check.
            ahead = not ctx.regions_change_next
            nxt = draw_sampling_addrs(ctx.rng, t.start, t.end) if ahead else t.sampling_addr[:0]
            try:
                young, shifts = self._walk_two(p, t.sampling_addr, nxt)
                counted = young[:n]
                if p.uncleared is not None:
                    counted &= ~p.uncleared
                t.nr_accesses += counted
                if ahead:
                    p.next_uncleared = self._stage(p, nxt, young[n:], shifts[n:])
            except TargetGone:
                p.valid = False
                continue
            if ahead:
                p.next_addr = nxt
                p.next_for = (t.start, t.end)
            max_nr_accesses = max(max_nr_accesses, int(t.nr_accesses.max()))
        return max_nr_accesses

    @staticmethod
    def _walk_two(p: Process, prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Young bits and page shifts of `prev` then `nxt`, walked in one BPF run.

        The shifts may be a view of the walk's buffer, valid until the next walk.
        """
        n, total, buf = len(prev), len(prev) + len(nxt), p.sampler.addr_buffer
        if total > len(buf):
            st = p.sampler.walk(np.concatenate((prev, nxt)))
            return st.young, st.shifts
        buf[:n] = prev
        buf[n:total] = nxt
        leaves, shifts = p.sampler.walk_buffer(total)
        return (leaves & PAGE_ACCESSED).astype(bool), shifts

    # for the live status

    def rss_bytes(self, target_id: int) -> int | None:
        try:
            with open(f"/proc/{target_id}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            return None


# Words that make a shell command more than one simple command.
_SHELL_OPERATORS = {";", "&", "&&", "|", "||", "(", ")", ";;", "|&", "\n"}
_SHELL_KEYWORDS = {
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done",
    "{", "}", "!", "function", "select",
}
# Builtins that take no program to find (and `exec`, `command`, which take one).
_SHELL_BUILTINS = {
    ".", ":", "alias", "bg", "cd", "command", "echo", "eval", "exec", "exit", "export", "false",
    "fg", "getopts", "hash", "jobs", "kill", "printf", "pwd", "read", "readonly", "return", "set",
    "shift", "test", "[", "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset",
    "wait",
}


def _words(command: str) -> list[str] | None:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: let the shell say so
        return None


def is_simple_command(command: str) -> bool:
    """One command, possibly with assignments and redirections: the shell can exec it."""
    words = _words(command)
    if not words or "\n" in command:
        return False
    return not any(w in _SHELL_OPERATORS for w in words) and words[0] not in _SHELL_KEYWORDS


def shell_command(command: str) -> str:
    """What /bin/sh runs: a simple command is exec'ed, so the pid damo samples is the command's."""
    words = _words(command) or []
    if not is_simple_command(command) or "exec" in words[:1]:
        return command
    return f"exec {command}"


def check_command(command: str) -> None:
    """TargetError when the command's program cannot be found (a simple or compound command)."""
    words = _words(command)
    if words is None:
        raise TargetError(f"cannot parse the command {command!r}: unbalanced quotes")
    if not words or not command.strip():
        raise UsageError("the command to record is empty")
    # Skip leading assignments (`VAR=value cmd`); the program is the first other word.
    program = next((w for w in words if not _is_assignment(w)), None)
    if program is None or program in _SHELL_KEYWORDS or program in _SHELL_BUILTINS \
            or program in _SHELL_OPERATORS or program[0] in "<>$`":
        return
    if "/" in program:
        if not os.path.isfile(program):
            raise TargetError(f"command not found: {program}")
        if not os.access(program, os.X_OK):
            raise TargetError(f"command not executable: {program}")
    elif shutil.which(program) is None:
        raise TargetError(f"command not found: {program} (not in PATH)")


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.isidentifier()


class Setup(NamedTuple):
    ops: VaddrBpfOperations
    target_ids: list[int]
    clock: MonotonicClock


def parse_targets(args: list[str]) -> tuple[list[int], str | None]:
    """Pids, or one command string."""
    if not args:
        raise UsageError("give the pids to record or one command string")
    if all(a.strip().isdigit() for a in args):
        pids = [int(a) for a in args]
        if len(set(pids)) != len(pids):
            raise UsageError("a pid is given twice")
        return pids, None
    if len(args) > 1:
        raise UsageError("give pids, or one command string in quotes (e.g. \"sleep 10\"), "
                         f"not {len(args)} words")
    return [], args[0]


def setup(args: list[str]) -> Setup:
    """`damo record PID...` or `damo record "COMMAND"`: check everything, start nothing yet."""
    from damo.linux import preflight

    pids, command = parse_targets(args)
    preflight.check_all()
    for pid in pids:
        preflight.check_pid(pid)
    if command is not None:
        check_command(command)
    ops = VaddrBpfOperations(pids, command)
    return Setup(ops, list(pids), MonotonicClock())

