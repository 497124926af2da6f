"""Targets that come and go while a process recording runs: exits and child processes.

Children that exist when the recording starts (a server's workers) join
at once.  After each aggregation (its record written) `Children.step` ends the
targets whose process exited, then, with `damo record --include_child_tasks`,
looks for processes the targets forked since and adds each as a target of
its own (its pid is its id), recursively, at most `max_targets` at once.  A
child joins at an aggregation boundary, so each of its windows is whole: one
that lives at least one aggregation interval is in at least one record.
Found by /proc/PID/task/*/children (`damo.linux.children`), which needs no
BPF program: the main thread's file at every boundary, every thread's once
per update interval (a process of 100 threads would cost 1.2 ms per
boundary), so a child forked by another thread joins up to one update
interval late.  A child that is reparented before it is found (a
double-forking daemon) is not found.  Without the flag, a started command
that forks gets one note that its work may run in children.

The operations (`damo.ops.vaddr`) open and close the targets; this module
decides which, and keeps what the sidecar and the user are told.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from damo.linux.children import child_pids, command_name

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.ops.vaddr.operations import VaddrBpfOperations

DEFAULT_MAX_TARGETS = 64


class Children:
    """Ended targets out, child processes in; see the module docstring."""

    def __init__(self, ops: VaddrBpfOperations):
        self.ops = ops
        self.follow = False  # --include_child_tasks
        self.max_targets = DEFAULT_MAX_TARGETS
        self.parents: dict[int, int] = {}  # child target -> the target that forked it
        self.nr_children = 0  # child processes monitored so far
        self.unmonitored: set[int] = set()  # children the bound kept out (so far)
        self._fresh: list[int] = []  # joined at the last boundary: most exec right after fork
        self._events: list[dict[str, Any]] = []  # sidecar messages not yet taken
        self._notes: list[str] = []  # for the user, not yet taken
        self._bound_noted = self._fork_noted = False
        self._all_threads_ns = 0  # when to read every thread's children next

    def start(self, ctx: Context) -> None:
        """Before the first sample: children the targets already have join at once."""
        if self.follow:
            self._join_children(ctx)

    def step(self, ctx: Context) -> None:
        """At an aggregation boundary, after its record."""
        self._end_exited(ctx)
        if self.follow:
            self._join_children(ctx)
        elif self.ops.child is not None and not self._fork_noted:
            self._note_forks()

    def finish(self, ctx: Context) -> None:
        """Monitoring has ended: the targets that exited in its last interval end too."""
        self._end_exited(ctx)

    def _end_exited(self, ctx: Context) -> None:
        ops = self.ops
        ended = [t for t in ctx.targets if not ops.target_valid(t)]
        if not ended:
            return
        now = ctx.clock.now_ns()
        for t in ended:
            ops.drop_target(t.id)
            self.parents.pop(t.id, None)
            self._events.append({"type": "target_end", "time_ns": now, "id": t.id})
        gone = {t.id for t in ended}
        ctx.targets = [t for t in ctx.targets if t.id not in gone]

    def _join_children(self, ctx: Context) -> None:
        ops = self.ops
        for pid in self._fresh:
            ops.check_exec(ctx, pid)
        self._fresh = []
        # Breadth first from every live target: a child's own children join in the same step.
        queue = [t.id for t in ctx.targets if ops.target_valid(t)]
        live = len(queue)
        now = ctx.clock.now_ns()
        all_threads = now >= self._all_threads_ns
        if all_threads:
            self._all_threads_ns = now + ctx.attrs.update_interval * 1000
        while queue:
            parent = queue.pop(0)
            for pid in child_pids(parent, all_threads):
                if pid in ops.procs:
                    continue
                if live >= self.max_targets:
                    self._refuse(pid)
                    continue
                if not ops.add_target(ctx, pid):
                    continue  # ended already (or a zombie)
                live += 1
                queue.append(pid)
                self.parents[pid] = parent
                self.nr_children += 1
                self.unmonitored.discard(pid)
                self._fresh.append(pid)
                self._events.append({"type": "target", "time_ns": now, "id": pid,
                                     "parent": parent})

    def _refuse(self, pid: int) -> None:
        self.unmonitored.add(pid)
        if not self._bound_noted:
            self._bound_noted = True
            self._notes.append(
                f"{self.max_targets} processes monitored, as many as --max-targets allows: "
                f"child process {pid} ({command_name(pid)}) and any more are not monitored "
                "until a target ends")

    def _note_forks(self) -> None:
        pid = self.ops.child.pid
        p = self.ops.procs.get(pid)
        if p is None or not p.valid:
            return
        kids = child_pids(pid, all_threads=False)  # a shell does not start threads
        if kids:
            self._fork_noted = True
            self._notes.append(
                f"the command's process {pid} started child process {kids[0]} "
                f"({command_name(kids[0])}): its work may run in child processes, which are "
                "recorded only with --include_child_tasks")

    def take_events(self) -> list[dict[str, Any]]:
        """Sidecar messages (targets joined and ended) since the last call."""
        out, self._events = self._events, []
        return out

    def take_notes(self) -> list[str]:
        """Lines for the user since the last call."""
        out, self._notes = self._notes, []
        return out
