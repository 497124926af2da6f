"""PageSampler: the Accessed bits of one process's sampled pages, read and cleared.

Per sampling address one BPF run says whether a page is present, whether its
Accessed ("young") bit is set and how big the leaf mapping it is (4 KiB,
2 MiB or 1 GiB). Clearing goes through process_madvise(MADV_COLD), the one
interface of this kernel that clears the bit of chosen pages of another
process and flushes their TLB entries. See docs/sampler.md for the caveats.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import signal
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from damo.errors import PlatformError, TargetError
from damo.linux import syscalls
from damo.sampler.walker import ST_NO_MM, Walker, WalkError, walker

PAGE_SIZE = 4096
PAGE_ACCESSED = np.uint64(1 << 5)
PAGE_PRESENT = np.uint64(1)
PM_PRESENT = 1 << 63
PM_MMAP_EXCLUSIVE = 1 << 56
PFN_MASK = 0x000FFFFFFFFFF000

# Generations of known-shared pages, unique across samplers (they share one map).
_shared_generations = itertools.count(1)


class TargetGone(TargetError):
    """The monitored process exited: monitoring it ends, cleanly."""


@dataclass(frozen=True)
class PageStates:
    """What one walk found for each sampling address (arrays aligned with the addresses)."""

    addrs: np.ndarray  # uint64, as walked
    leaves: np.ndarray  # uint64, the leaf page-table entry, 0 when not present
    shifts: np.ndarray  # uint64, log2 of the leaf size, 0 when not present

    @cached_property
    def present(self) -> np.ndarray:
        return self.shifts != 0

    @cached_property
    def young(self) -> np.ndarray:
        return (self.leaves & PAGE_ACCESSED) != 0

    @cached_property
    def leaf_size(self) -> np.ndarray:
        """Bytes mapped by the leaf entry (4096, 2 MiB, 1 GiB), 0 when not present."""
        return np.where(self.present, np.left_shift(np.uint64(1), self.shifts), np.uint64(0))

    @cached_property
    def pfn(self) -> np.ndarray:
        """Page frame number of each address's 4 KiB page, 0 when not present."""
        size = self.leaf_size
        span = np.where(self.present, size - np.uint64(1), np.uint64(0))
        base = self.leaves & ~span & np.uint64(PFN_MASK)
        pfn = (base + (self.addrs & span)) >> np.uint64(12)
        return np.where(self.present, pfn, np.uint64(0))


class PageSampler:
    """Reads and clears Accessed bits of one process's pages.

    Holds, while open, a pidfd (to notice exit) and an open /proc/PID/mem: that
    file holds a reference on the process's mm_struct, which keeps it and its
    top-level page table allocated even after the process exits, and it is the
    handle the BPF walk finds the mm by.
    """

    def __init__(self, pid: int, walker_: Walker | None = None):
        self.pid = pid
        # Why draining the LRU batches failed, once it has (it is then skipped).
        self.drain_error: str | None = None
        self._walker = walker_ or walker()
        try:
            self._pidfd = syscalls.pidfd_open(pid)
        except ProcessLookupError:
            raise TargetError(f"process {pid} does not exist") from None
        except PermissionError:
            raise PlatformError("damo needs root to monitor other processes") from None
        # A pidfd polls readable once the process exits; a poll object built once
        # costs half of select() per check (one per walk).
        self._exit_poll = select.poll()
        self._exit_poll.register(self._pidfd, select.POLLIN)
        self._mem_fd = self._pagemap_fd = -1
        self._shared_gen = next(_shared_generations)
        # The iovec array of clear_young, allocated once (struct iovec[IOV_MAX]).
        self._iovecs = np.empty((syscalls.IOV_MAX, 2), dtype=np.uint64)
        try:
            try:
                self._mem_fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
                self._pagemap_fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
            except (FileNotFoundError, ProcessLookupError):
                if self.alive():  # /proc/PID/mem of a kernel thread fails with ESRCH
                    raise TargetError(f"process {pid} has no address space (a kernel thread?)")\
                        from None
                raise TargetError(f"process {pid} does not exist") from None
            except PermissionError:
                raise TargetError(f"no permission to open /proc/{pid}/mem: run damo as root") \
                    from None
            # The pidfd pins the pid number: while the process lives, the files
            # opened above are surely its own and not those of a recycled pid.
            if not self.alive():
                raise TargetGone(f"process {pid} exited")
            try:
                self._walker.walk(self._mem_fd, np.empty(0, dtype=np.uint64))
            except WalkError as e:
                if e.status == ST_NO_MM:
                    raise TargetError(f"process {pid} has no address space (a kernel thread?)")\
                        from None
                raise PlatformError(f"BPF walk cannot resolve process {pid} (status "
                                    f"{e.status})") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for fd in (self._pidfd, self._mem_fd, self._pagemap_fd):
            if fd >= 0:
                os.close(fd)
        self._pidfd = self._mem_fd = self._pagemap_fd = -1

    def __enter__(self) -> PageSampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def alive(self) -> bool:
        """False once the process has exited (even if not yet reaped)."""
        if self._pidfd < 0:
            return False
        return not self._exit_poll.poll(0)

    def send_signal(self, sig: int) -> None:
        """Signal the process through its pidfd (never a recycled pid); nothing once it is gone."""
        if self._pidfd >= 0:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def mm(self) -> int:
        """Kernel address of the target's mm_struct (for tests and diagnostics)."""
        return self._walker.walk(self._mem_fd, np.zeros(1, dtype=np.uint64))[2]

    def walk(self, addrs: np.ndarray) -> PageStates:
        """Present, young and leaf size of the page at each address, in one BPF run.

        Raises TargetGone when the process has exited (its page tables are gone,
        so the answer would read "not present" everywhere).
        """
        addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
        leaves, shifts, _ = self._walker.walk(self._mem_fd, addrs)
        if not self.alive():
            raise TargetGone(f"process {self.pid} exited")
        return PageStates(addrs, leaves, shifts)

    @property
    def addr_buffer(self) -> np.ndarray:
        """Where `walk_buffer` reads its addresses (uint64, `walker.MAX_BATCH` long)."""
        return self._walker.addr_buffer

    def walk_buffer(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """walk() of the first `n` addresses of `addr_buffer`: leaf entries and page shifts.

        No copies: the arrays are views, valid until the next walk of any
        sampler (they share one program). For callers sampling every few
        milliseconds; raises TargetGone as walk() does.
        """
        return self._while_alive(self._walker.walk_buffer, self._mem_fd, n)

    def _while_alive(self, run, *args):
        """run(*args), a walker call; TargetGone if the process has exited by its end.

        After an exit the walk reads "not present" everywhere (or finds no
        mm): an answer about a process that is gone, not about its pages.
        The programs read the mm's user count after their walks; while it is
        non-zero the process lives, and the pidfd need not be polled (this
        runs every sampling interval).
        """
        try:
            out = run(*args)
        except WalkError:
            if not self.alive():
                raise TargetGone(f"process {self.pid} exited") from None
            raise
        if not self._walker.mm_live and not self.alive():
            raise TargetGone(f"process {self.pid} exited")
        return out

    def sample(self, mode: int, base: int, n: int) -> tuple[int, int, int]:
        """Run the sample program (walker.SAMPLE_CHECK / SAMPLE_AHEAD bits) on this process.

        Covers the regions [base, base + n) of the walker's region arrays.
        Returns (iovecs staged, their bytes: for `clear_staged`; highest
        nr_accesses of the check). Raises TargetGone when the process has exited.
        """
        return self._while_alive(self._walker.sample, self._mem_fd, mode, base, n,
                                 self._shared_gen)

    def loop_target(self, base: int, n: int) -> tuple[int, int, int, int, int]:
        """This process's regions [base, base + n) as the native loop takes a target."""
        return (self._mem_fd, self._pidfd, base, n, self._shared_gen)

    def finish_advice(self, mode: int, base: int, n: int, staged: int, staged_bytes: int,
                      advised: int, walked: int) -> None:
        """Finish a step the native loop handed back because the kernel stopped its advice
        short: that advice (`clear_staged`), then the regions [base + walked, base + n)
        the loop's pass had not reached, with their clearing."""
        self.clear_staged(staged, staged_bytes, advised)
        if walked < n:
            staged, staged_bytes, _ = self.sample(mode, base + walked, n - walked)
            if staged:
                self.clear_staged(staged, staged_bytes)

    def clear_staged(self, staged: int, staged_bytes: int, advised: int | None = None) -> None:
        """Clear the young pages the last `sample` staged; mark those that stay young.

        A page whose bit could not be cleared (shared, or where MADV_COLD is
        refused) is marked uncleared in the region arrays, so the next check
        does not count it, and remembered: later samples landing on it skip
        the advice (a refused page, say of the PFN-mapped [vvar] that every
        clock read touches, would otherwise stop the native loop's advice
        at every step). One still young but mapped by this
        process alone was touched again since (or is too fresh to be on the
        LRU lists yet, which `drain()` now and then takes care of): it counts
        as cleared.  `advised`: the bytes the native loop's call advised
        (-1: it made none or failed); None: make the call here.
        """
        w = self._walker
        # One call, straight from the program's iovec array; when the kernel
        # stops short, _advise() goes on after the range it refused.
        done = advised
        if done is None:
            done = -1
            if staged <= syscalls.IOV_MAX:
                try:
                    done = syscalls.process_madvise_at(self._pidfd, w.iovecs_addr, staged)
                except OSError:
                    pass  # _advise() makes the calls again and says why
        regions = w.regions
        owners = regions.iov_region[:staged]
        if done != staged_bytes:
            failed = self._advise(w.iovecs[:staged], done)
            regions.uncleared[owners[failed]] = 1
            for r in owners[failed]:
                self._remember_shared(int(regions.sampling_addr[r]))
            owners = owners[~failed]
        # Verified pages still young are marked uncleared: shared, or touched again.
        if not w.verify(self._mem_fd):
            return
        for r in owners:
            if not regions.uncleared[r]:
                continue
            addr = int(regions.sampling_addr[r])
            if self._exclusive(addr):
                regions.uncleared[r] = 0
            else:
                self._remember_shared(addr)

    def _remember_shared(self, addr: int) -> None:
        # A refusal only costs advising the page again.
        self._walker.remember_shared(
            (addr >> 12).to_bytes(8, "little") + self._shared_gen.to_bytes(8, "little"), bytes(8))

    def forget_shared(self) -> None:
        """The mappings changed: pages found shared may have been unmapped or copied since."""
        self._shared_gen = next(_shared_generations)

    def clear_young(self, addrs: np.ndarray, leaf_sizes: np.ndarray,
                    drain: bool = True) -> np.ndarray:
        """Clear the Accessed bits of the pages at `addrs`; which could not be cleared.

        `leaf_sizes` come from walk(): a huge-page leaf is advised as its whole
        aligned range, since advising part of a transparent huge page splits it;
        0 (not present) means nothing to clear. Returns a bool array, True where
        the page is still young after clearing and is not mapped by this process
        alone (shared pages, the zero page; MADV_COLD skips those) or lies where
        MADV_COLD is refused (mlocked, hugetlb, PFN maps): such a page's bit is
        no evidence of access later. With `drain` false, pages still young are
        not retried after draining the LRU batches (a caller sampling every few
        milliseconds drains now and then instead: `drain()`).
        """
        addrs = np.asarray(addrs).astype(np.uint64, copy=False)
        sizes = np.asarray(leaf_sizes).astype(np.uint64, copy=False)
        if not sizes.all():
            # Not present: nothing to clear there.
            uncleared = np.zeros(len(addrs), dtype=bool)
            idx = np.flatnonzero(sizes)
            if len(idx):
                uncleared[idx] = self.clear_young(addrs[idx], sizes[idx], drain)
            return uncleared
        if not len(addrs):
            return np.zeros(0, dtype=bool)
        if len(addrs) <= len(self._iovecs):
            iovecs = self._iovecs[: len(addrs)]
        else:
            iovecs = np.empty((len(addrs), 2), dtype=np.uint64)
        # A leaf's start: the address with the low bits of its (power of two) size cleared.
        np.bitwise_and(addrs, np.negative(sizes), out=iovecs[:, 0])
        iovecs[:, 1] = sizes
        failed = self._advise(iovecs)
        still = self._young_now(addrs)
        if drain and still.any():
            # Pages faulted in moments ago wait in per-CPU LRU batches, which
            # MADV_COLD skips: drain them and try those pages once more.
            again = np.flatnonzero(still)
            self._drain()
            failed[again] |= self._advise(iovecs[again])
            still[again] = self.walk(addrs[again]).young
        if still.any():
            # Still young: shared (could not clear), or touched again since (could).
            for j in np.flatnonzero(still & ~failed):
                if self._exclusive(int(addrs[j])):
                    still[j] = False
        return still

    def _young_now(self, addrs: np.ndarray) -> np.ndarray:
        """Which of `addrs` are young (one walk, no per-call allocation but the answer)."""
        buf = self.addr_buffer
        if len(addrs) > len(buf):
            return self.walk(addrs).young
        buf[: len(addrs)] = addrs
        leaves, _ = self.walk_buffer(len(addrs))
        return (leaves & PAGE_ACCESSED) != 0

    def advise(self, iovecs: np.ndarray) -> np.ndarray:
        """MADV_COLD every range of an (N, 2) iovec array; True where the kernel refused a range."""
        return self._advise(iovecs)

    def _advise(self, iovecs: np.ndarray, advised: int = -1) -> np.ndarray:
        """MADV_COLD every range, IOV_MAX per call; True where the kernel refused a range.

        `advised` >= 0: a first call over `iovecs` already advised that many
        bytes and stopped at the range after them; the rest goes on from there.
        """
        failed = np.zeros(len(iovecs), dtype=bool)
        lo = 0
        if advised >= 0:
            lo = self._refused(iovecs, advised, failed)
        while lo < len(iovecs):
            batch = iovecs[lo : lo + syscalls.IOV_MAX]
            try:
                done = syscalls.process_madvise(self._pidfd, batch)
            except OSError as e:
                if e.errno == errno.ESRCH:
                    raise TargetGone(f"process {self.pid} exited") from None
                if e.errno in (errno.EPERM, errno.EACCES):
                    raise PlatformError("process_madvise refused: damo needs root") from None
                if e.errno in (errno.EINTR, errno.EAGAIN):
                    continue
                done = 0
            else:
                if done == int(batch[:, 1].sum()):
                    lo += len(batch)
                    continue
            lo += self._refused(batch, done, failed[lo:])
        return failed

    @staticmethod
    def _refused(batch: np.ndarray, done: int, failed: np.ndarray) -> int:
        """Mark the range a call over `batch` stopped at after `done` bytes; how many ranges
        of `batch` are finished with."""
        bad = int(np.searchsorted(np.cumsum(batch[:, 1]), done, side="right"))
        failed[bad] = True
        return bad + 1

    def drain(self) -> None:
        """Flush the per-CPU LRU batches, so that pages faulted in moments ago can be cleared.

        It costs most of a millisecond here (every CPU is interrupted): the
        sampling loop calls it once per update interval.
        """
        self._drain()

    def _drain(self) -> None:
        if self.drain_error is not None:
            return
        try:
            syscalls.drain_lru_batches(self.pid)
        except OSError as e:
            # EINVAL also means the process has let go of its memory (it is exiting).
            if e.errno == errno.ESRCH or (e.errno == errno.EINVAL and not self._has_mm()):
                raise TargetGone(f"process {self.pid} exited") from None
            # Draining only makes fresh pages clearable sooner: go on without it.
            self.drain_error = e.strerror

    def _has_mm(self) -> bool:
        """Whether the process still has an address space (statm is all zeros without one)."""
        try:
            with open(f"/proc/{self.pid}/statm") as f:
                return f.read().split()[0] != "0"
        except (OSError, IndexError):
            return False

    def _exclusive(self, addr: int) -> bool:
        """Whether the page at addr is mapped by this process only (/proc/PID/pagemap)."""
        try:
            entry = int.from_bytes(os.pread(self._pagemap_fd, 8, addr // PAGE_SIZE * 8), "little")
        except OSError:
            return False
        return bool(entry & PM_PRESENT) and bool(entry & PM_MMAP_EXCLUSIVE)
