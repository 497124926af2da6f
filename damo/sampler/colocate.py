"""Sampling from the CPU the target runs on.

Clearing an Accessed bit must flush the target's TLB entry for that page.
While the target runs on another CPU, that flush is a synchronous IPI: the
sampler waits for it (5-30 us on this VM, twice for a 2 MiB huge page) and
the target is interrupted by it.  From the target's own CPU the target is not
running, so the flush is local or deferred to its next switch-in, for both a
fraction of the cost.  So the sampler of one target follows the CPU of the
task owning its address space (its main thread); the IPIs to CPUs running
its other threads remain.  With several targets damo runs where the
scheduler puts it.
"""

from __future__ import annotations

import os


class CpuFollower:
    """Keeps the calling thread on the CPU it is told, within its original affinity."""

    def __init__(self) -> None:
        self.allowed = os.sched_getaffinity(0)
        self.cpu: int | None = None
        self.moves = 0
        self._seen: int | None = None

    def follow(self, cpu: int | None) -> None:
        """Move to `cpu` (None: unknown, stay) if allowed and not there already.

        A move costs about a millisecond: only one seen on two calls in a row
        is followed, not a passing migration of the target.
        """
        seen, self._seen = self._seen, cpu
        if cpu is None or cpu == self.cpu or cpu != seen or cpu not in self.allowed \
                or len(self.allowed) < 2:
            return
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            return  # the CPU went offline, or a cpuset forbids it: stay where we are
        self.cpu = cpu
        self.moves += 1

    def release(self) -> None:
        """Back to the original affinity."""
        if self.cpu is not None:
            os.sched_setaffinity(0, self.allowed)
            self.cpu = None
