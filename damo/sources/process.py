"""Records of processes from damo's region engine and BPF sampler (`--ops vaddr`).

What only process targets have: a command damo started (and its exit
status), children that join (`--include_child_tasks`, `--max-targets`),
each target's mappings and footprint, the CPU budget (`--max-cpu`) and
where damo samples from (`--colocate`); the operations are
`damo.ops.vaddr.VaddrBpfOperations`.
"""

import time
from typing import TYPE_CHECKING, Any

from damo.errors import UsageError
from damo.sources import END, RECORD, START
from damo.sources.engine import EngineSource

if TYPE_CHECKING:
    from damo.linux.observers import TargetLocks
    from damo.ops.vaddr import VaddrBpfOperations
    from damo.sources import RecordOptions, Sink

class ProcessSource(EngineSource):
    TAKES = EngineSource.TAKES | {"max_cpu", "colocate", "include_child_tasks", "max_targets",
                                  "force", "checks"}

    def __init__(self, options: "RecordOptions"):
        from damo.ops import vaddr
        from damo.ops.vaddr.children import DEFAULT_MAX_TARGETS

        self.check_adjust(options)
        if options.attrs.max_nr_regions > vaddr.MAX_NR_REGIONS:
            raise UsageError(f"-m/--maxr: the vaddr operations sample at most "
                             f"{vaddr.MAX_NR_REGIONS} regions, not {options.attrs.max_nr_regions}")
        max_targets = options.max_targets or DEFAULT_MAX_TARGETS
        pids, _ = vaddr.parse_targets(options.targets)
        if len(pids) > max_targets:
            raise UsageError(f"{len(pids)} pids to monitor, more than --max-targets "
                             f"({max_targets})")
        if options.checks == "kernel" and options.colocate:
            raise UsageError("--colocate goes with --checks native (it moves damo's sampling "
                             "loop to the target's CPU)")
        setup = vaddr.setup(options.targets)
        ops: VaddrBpfOperations = setup.ops
        if options.checks == "kernel":  # auto is native: measured cheaper (docs/performance.md)
            ops.use_kernel_checks(options.attrs.sample_interval)  # loaded before a command starts
        ops.colocate_requested = options.colocate
        ops.children.follow = options.include_child_tasks
        ops.children.max_targets = max_targets
        if options.max_cpu is not None:  # else the operations' default budget
            ops.max_cpu = options.max_cpu
        self.ops = ops
        self.force = options.force
        self._locks: TargetLocks | None = None
        self._kdamond_note: str | None = None
        self._wall0 = 0.0
        self._kernel_s = 0.0
        super().__init__(self.context(options, ops, setup.target_ids, setup.clock))

    def claim(self) -> None:
        """Lock the pids given against a second recorder (not with --force, nor for a command
        damo starts: it is new, so no recorder can be on it yet), and see whether kernel
        DAMON samples physical memory beside us: both clear the bits the other reads."""
        from damo.linux.observers import TargetLocks, kdamond_note

        if not self.force and self.ops.command is None:
            self._locks = TargetLocks(list(self.ops.pids))
        self._kdamond_note = kdamond_note()

    def _release(self) -> None:
        if self._locks is not None:
            self._locks.release()
            self._locks = None

    def run(self, sink: "Sink") -> None:
        self._wall0 = time.monotonic()
        try:
            super().run(sink)
        finally:
            self._release()

    def discard(self) -> None:
        try:
            super().discard()
        finally:
            self._release()

    def failure(self) -> str | None:
        status = self.ops.command_status
        if status in (None, 0) or self.ended_by() != "target exit":
            return None
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        return f"the command {self.ops.command!r} {how} before anything was recorded"

    def target_info(self, target_id: int) -> dict[str, Any]:
        """The target's pid and, while it runs, its command line."""
        info: dict[str, Any] = {"id": target_id, "pid": target_id}
        try:
            with open(f"/proc/{target_id}/cmdline", "rb") as f:
                info["cmdline"] = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            pass
        return info

    def start_fields(self) -> dict[str, Any]:
        children = self.ops.children
        return {**super().start_fields(), "command": self.ops.command,
                "include_child_tasks": children.follow, "max_targets": children.max_targets}

    def messages(self, now_ns: int, moment: str) -> list[tuple[str, dict[str, Any]]]:
        """Targets joining and leaving, the budget's changes, mappings, memory-pressure
        relief, footprints."""
        ops = self.ops
        out = super().messages(now_ns, moment)
        if moment != START:
            if moment == END:
                ops.children.finish(self.ctx)
            for event in ops.children.take_events():
                if event["type"] == "target":
                    event = {**event, **self.target_info(event["id"])}
                out.append((event.pop("type"), event))
        out.extend(self.budget_messages(ops.budget, now_ns, moment))
        out.extend(("maps", dict(time_ns=time_ns, target_id=target_id, maps=[
            [m.start, m.end, m.perms, m.offset, m.path, m.dev, m.inode] for m in maps]))
            for target_id, time_ns, maps in ops.take_maps())
        out.extend(("relief", dict(time_ns=time_ns, target_id=target_id, on=on))
                   for target_id, time_ns, on in ops.take_relief())
        if moment != START:
            # The aggregations that waited for their regions' missing checks since the
            # last record: this record came that much later than the interval.
            waits = ops.take_waits()
            if waits:
                out.append(("wait", dict(time_ns=now_ns, steps=sum(w[0] for w in waits),
                                         waited_ns=sum(w[1] for w in waits),
                                         makeup_steps=ops.makeup_steps)))
        if moment == RECORD:
            from damo.linux.footprint import read_footprint

            rows = [[t.id, *fp] for t in self.ctx.targets
                    if (fp := read_footprint(t.id)) is not None]
            if rows:
                out.append(("footprints", dict(time_ns=now_ns, targets=rows)))
        return out

    def kernel_seconds(self) -> float:
        # Kept: the programs' statistics go with them when the operations clean up,
        # before the summary.
        self._kernel_s = max(self._kernel_s, self.ops.kernel_seconds())
        return self._kernel_s

    def end_fields(self) -> dict[str, Any]:
        return {"bpf_kernel_s": self.kernel_seconds()}

    def notes(self) -> list[str]:
        return self.ops.children.take_notes()

    def status(self) -> str:
        ops = self.ops
        line = ""
        if ops.budget is not None:
            line += ops.budget.status()
        sizes = [ops.rss_bytes(t.id) for t in self.ctx.targets]
        total = sum(s for s in sizes if s is not None)
        return line + f"   target RSS {total / 2**20:.1f} MiB"

    def what(self) -> str:
        ops = self.ops
        if not ops.pids:  # the targets given (or started), whether or not they still run
            return "nothing"
        what = "process " + ", ".join(str(pid) for pid in ops.pids)
        if ops.command is not None:
            what += f" ({ops.command!r})"
        children = ops.children
        if children.follow:
            what += f" and {children.nr_children} child process" + \
                ("" if children.nr_children == 1 else "es")
            if children.unmonitored:
                what += (f" ({len(children.unmonitored)} more not monitored: "
                         f"--max-targets {children.max_targets})")
        return what

    def summary(self, cpu_share: float | None) -> str:
        text = "" if cpu_share is None else f"; damo used {cpu_share:.1%} of one CPU"
        wall = time.monotonic() - self._wall0
        kernel = self._kernel_s
        if cpu_share is not None and kernel and wall > 0:
            text += f" ({kernel / wall:.2%} of it in its kernel-side checks)"
        if self.ops.budget is not None and cpu_share is not None:
            text += self.ops.budget.summary()
        relieved = self.ops.relieved_seconds()
        if relieved:
            text += (f"; under memory pressure for {relieved:.1f} s: file-backed regions were "
                     "checked once per aggregation, not cleared (docs/recording.md, \"Memory "
                     "pressure\")")
        if self.ops.nr_waits:
            n = self.ops.nr_waits
            text += (f"; {n} aggregation{'' if n == 1 else 's'} waited for regions' missing "
                     f"checks ({self.ops.makeup_steps} sampling intervals, "
                     f"{self.ops.waited_ns / 1e6:.0f} ms in all)")
        status = self.ops.command_status
        if status is not None:
            text += (f"; the command was killed by signal {-status}" if status < 0
                     else f"; the command exited with status {status}")
        if self._kdamond_note is not None:
            text += f"; {self._kdamond_note}"
        return text
