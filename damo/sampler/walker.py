"""The loaded page-walk program (bpf/page_walk.bpf.c) and its numpy views.

One `Walker` per monitor process serves every target: the target is chosen per
run by the fd of its /proc/PID/mem. Loading costs about a second (compile, or
cache hit, plus the kernel's verifier), so `walker()` loads once and keeps it.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from damo.errors import PlatformError
from damo.linux import bpf_syscall, btf, direct_map
from damo.sampler import program

# Its headers: sampler_config.h (the config slots and flags it shares with the
# native loop) and page_table.h (the walk it shares with bpf/tick_check.bpf.c).
SOURCE = Path(__file__).resolve().parents[2] / "bpf" / "page_walk.bpf.c"

# Addresses per fill of the address array.  Where the kernel lacks the number
# iterators (Linux < 6.4) the programs loop over chunks, tail-calling
# themselves for the next: WALK_CHUNK addresses and SAMPLE_CHUNK regions per
# invocation, 34 invocations a run.  The verifier's time for a bounded loop
# grows faster than linearly with its length (measured on this project's
# machines, walk: 32 -> 9 ms, 128 -> 46 ms, 1024 -> rejected; sample, three
# inlined walks: 16 -> 65-160 ms, 8 -> 45 ms); with the iterators both
# programs load in about 20 ms whatever the sizes (sample ~20, walk ~1).
MAX_BATCH = 4096
WALK_CHUNK = 64
# Regions of all targets together that the sample program holds.
MAX_REGIONS = 1 << 16
SAMPLE_CHUNK = 16

# What the loader checks a cached entry has (the C source defines them).
PROGRAMS = ("walk", "sample", "peek")
MAPS = ("config", "addrs", "leaves", "shifts", "peekbuf", "region_start", "region_end",
        "sampling_addr", "nr_accesses", "nr_checks", "uncleared", "region_flags", "iov_region",
        "iov_verify", "iovecs", "shared", "walk_chain", "sample_chain")

# bpf/sampler_config.h's numbers, for Python (a test compares them with the
# native loop's, which includes the header).
CFG_MEM_FD, CFG_NR, CFG_PAGE_OFFSET, CFG_LEVELS = 0, 1, 2, 3
CFG_PEEK_ADDR, CFG_PEEK_LEN, CFG_STATUS, CFG_MM, CFG_CURRENT, CFG_NEXT = 4, 5, 6, 7, 8, 9
CFG_BASE, CFG_MODE, CFG_NR_IOV, CFG_MAX, CFG_NR_STILL, CFG_SHARED_GEN = 10, 11, 12, 13, 14, 15
CFG_IOV_BYTES, CFG_OWNER_CPU, CFG_NR_VERIFY, CFG_MM_USERS = 16, 17, 18, 19
CFG_STEP, CFG_VMEMMAP = 20, 21
# region_flags bits; the CPU budget's period and phase of a region (see the C source)
REGION_MAY_SHARE, REGION_NO_CLEAR, REGION_FILE = 1, 2, 4
REGION_PERIOD_SHIFT, REGION_PHASE_SHIFT = 8, 16
# nr_checks: checks whose page's bit could not be cleared count in the high half
CHECKS_NO_EVIDENCE_SHIFT = 32
NR_CFG = 32
# What one run of the sample program does (see the C source).
SAMPLE_CHECK, SAMPLE_AHEAD, SAMPLE_VERIFY = 1, 2, 4
ST_OK, ST_NO_FILE, ST_NO_MM, ST_NO_PGD, ST_FAULT = 0, 1, 2, 3, 4

PHYS_MASK = 0x000FFFFFFFFFF000
PAGE_PRESENT, PAGE_ACCESSED = 1 << 0, 1 << 5

# The -D macros the C source reads struct member offsets from, and where each
# is, in the order to try.  The OPTIONAL ones may be missing (-1): the CPU of
# the task owning an mm, used by --colocate (`mm_struct.owner` exists with
# memory cgroups; the CPU sits in thread_info on x86-64 since 5.16).
OFFSETS: btf.Wanted = {
    "OFF_TASK_FILES": (("task_struct", "files"),),
    "OFF_FILES_FDT": (("files_struct", "fdt"),),
    "OFF_FDT_MAX_FDS": (("fdtable", "max_fds"),),
    "OFF_FDT_FD": (("fdtable", "fd"),),
    "OFF_FILE_PRIVATE_DATA": (("file", "private_data"),),
    "OFF_MM_PGD": (("mm_struct", "pgd"),),
    "OFF_MM_USERS": (("mm_struct", "mm_users"),),
    "OFF_MM_OWNER": (("mm_struct", "owner"),),
    "OFF_TASK_CPU": (("task_struct", "thread_info.cpu"), ("task_struct", "cpu")),
    # A young page's folio, to advise all of it (a part would split it): struct
    # page's size (folio.__page_1 follows the first page), the compound_head a
    # tail page points at its head with, the folio's order (the low byte of
    # _flags_1), and what tells the struct page array's base (direct_map.vmemmap).
    "OFF_FOLIO_PAGE_1": (("folio", "__page_1"),),
    "OFF_PAGE_COMPOUND_HEAD": (("page", "compound_head"),),
    "OFF_FOLIO_FLAGS_1": (("folio", "_flags_1"),),
    "OFF_PAGE_INDEX": (("page", "__folio_index"), ("page", "index")),
    "OFF_PAGE_MAPPING": (("page", "mapping"),),
}
FOLIO_OFFSETS = ("OFF_FOLIO_PAGE_1", "OFF_PAGE_COMPOUND_HEAD", "OFF_FOLIO_FLAGS_1",
                 "OFF_PAGE_INDEX", "OFF_PAGE_MAPPING")
OPTIONAL = ("OFF_MM_OWNER", "OFF_TASK_CPU", *FOLIO_OFFSETS)


def source() -> str:
    """The program's text with the shared headers inlined (the cache key covers them)."""
    return program.program_text(SOURCE)


def walk_offsets(out: dict[str, int] | None = None) -> dict[str, int]:
    """OFFSETS resolved for the running kernel; PlatformError when a needed one is missing.

    `out`: btf.kernel_offsets(OFFSETS), if asked already.
    """
    out = dict(btf.kernel_offsets(OFFSETS) if out is None else out)
    for name, where in OFFSETS.items():
        if out[name] < 0 and name not in OPTIONAL:
            struct_name, member = where[0]
            raise PlatformError(f"the kernel's BTF has no {struct_name}.{member}")
    if out["OFF_TASK_CPU"] < 0:
        out["OFF_MM_OWNER"] = -1  # no CPU to read from the owner
    return out


class RegionArrays(NamedTuple):
    """numpy views of the sample program's per-region arrays (MAX_REGIONS each)."""

    start: np.ndarray
    end: np.ndarray
    sampling_addr: np.ndarray
    nr_accesses: np.ndarray  # young checks (with evidence)
    nr_checks: np.ndarray  # checks with evidence | checks without << CHECKS_NO_EVIDENCE_SHIFT
    uncleared: np.ndarray  # nonzero: the sampled page's bit could not be cleared
    flags: np.ndarray  # REGION_* bits, set by the caller
    iov_region: np.ndarray  # the region of each staged iovec


class WalkError(Exception):
    """The walk could not resolve the target's mm (status code in .status)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class Walker:
    """Runs the walk and peek programs; holds the direct-map base and paging depth."""

    def __init__(self, use_cache: bool = True, use_iterators: bool = True):
        t0 = time.process_time()
        # One question to the BTF (a cold start parses it once, in a child).
        offsets, func_ids = btf.kernel_answers(OFFSETS, sorted(program.KFUNCS.values()))
        cflags = [f"-D{macro}={offset}" for macro, offset in walk_offsets(offsets).items()]
        cflags += [f"-DMAX_BATCH={MAX_BATCH}", f"-DWALK_CHUNK={WALK_CHUNK}",
                   f"-DMAX_REGIONS={MAX_REGIONS}", f"-DSAMPLE_CHUNK={SAMPLE_CHUNK}"]
        if use_iterators:
            kfunc_flags, kfunc_ids = program.kfuncs(func_ids)
            cflags += kfunc_flags
        else:
            kfunc_ids = {}
        # With the kernel's number iterators one run of a program covers every
        # item; without, WALK_CHUNK / SAMPLE_CHUNK per invocation (see the source).
        self.iterators = bool(kfunc_ids)
        self._loaded, self.from_cache = program.compile_and_load(
            source(), cflags, kfunc_ids, use_cache, programs=PROGRAMS, maps=MAPS)
        t2 = time.process_time()
        views = self._loaded.map_views
        # A memoryview of u64, not numpy: its items read and write as plain ints
        # at half the cost, and the sampling step touches a dozen per run.
        self._config = memoryview(views["config"]).cast("Q")[:NR_CFG]
        self._addrs = np.frombuffer(views["addrs"], dtype=np.uint64, count=MAX_BATCH)
        self._leaves = np.frombuffer(views["leaves"], dtype=np.uint64, count=MAX_BATCH)
        self._shifts = np.frombuffer(views["shifts"], dtype=np.uint64, count=MAX_BATCH)
        self._peekbuf = views["peekbuf"]
        # The sample program's region arrays: int64, the dtype of the targets' arrays.
        self.regions = RegionArrays(*(
            np.frombuffer(views[name], dtype=np.int64, count=MAX_REGIONS)
            for name in ("region_start", "region_end", "sampling_addr", "nr_accesses",
                         "nr_checks", "uncleared", "region_flags", "iov_region")
        ))
        self.iovecs = np.frombuffer(views["iovecs"], dtype=np.uint64,
                                    count=2 * MAX_REGIONS).reshape(MAX_REGIONS, 2)
        self.iovecs_addr = self.iovecs.ctypes.data
        # Known-shared pages: key (page number, generation), value unused.
        self.remember_shared = bpf_syscall.MapUpdate(self._loaded.map_fds["shared"], 16, 8)
        for chain, prog in (("walk_chain", "walk"), ("sample_chain", "sample")):
            bpf_syscall.map_update_u32(
                self._loaded.map_fds[chain], 0, self._loaded.prog_fds[prog]
            )
        self._run_walk = bpf_syscall.TestRun(self._loaded.prog_fds["walk"])
        self._run_sample = bpf_syscall.TestRun(self._loaded.prog_fds["sample"])
        self._run_peek = bpf_syscall.TestRun(self._loaded.prog_fds["peek"])
        self.page_offset = direct_map.discover(self.peek, [self.current_task()])
        self._config[CFG_PAGE_OFFSET] = self.page_offset
        # 0 (unknown): young pages are advised alone, large folios split by it.
        self.vmemmap = 0
        if all(offsets.get(name, -1) >= 0 for name in FOLIO_OFFSETS):
            self.vmemmap = direct_map.vmemmap(self.peek, offsets["OFF_FOLIO_PAGE_1"],
                                              offsets["OFF_PAGE_INDEX"],
                                              offsets["OFF_PAGE_MAPPING"])
        self._config[CFG_VMEMMAP] = self.vmemmap
        self._config[CFG_LEVELS] = 4
        self.levels = 4
        t3 = time.process_time()
        # CPU seconds spent compiling (or reading the cache) and loading, and discovering.
        self.startup = {"load": t2 - t0, "discover": t3 - t2}

    def close(self) -> None:
        self._config.release()  # the mapping cannot close while a view is exported
        self._loaded.close()

    def set_levels(self, levels: int) -> None:
        self.levels = levels
        self._config[CFG_LEVELS] = levels

    def peek(self, addr: int, length: int) -> bytes | None:
        """`length` (<= 256) bytes of kernel memory at `addr`, or None if unreadable."""
        cfg = self._config
        cfg[CFG_PEEK_ADDR] = addr
        cfg[CFG_PEEK_LEN] = length
        cfg[CFG_STATUS] = ST_FAULT
        self._run_peek()
        if cfg[CFG_STATUS] != ST_OK:
            return None
        return bytes(self._peekbuf[:length])

    def current_task(self) -> int:
        """The monitor's own task_struct: a pointer known to lie in the direct map."""
        self.peek(0, 0)
        return int(self._config[CFG_CURRENT])

    @property
    def addr_buffer(self) -> np.ndarray:
        """The program's address array (MAX_BATCH uint64), for `walk_buffer`."""
        return self._addrs

    def walk_buffer(self, mem_fd: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Walk the first `n` (<= MAX_BATCH) addresses of `addr_buffer`, without copies.

        Returns views of the leaf and shift arrays, valid until the next walk:
        the per-sample path of the vaddr operations allocates nothing here.
        """
        self._config[CFG_NR] = n
        self._run_chained(self._run_walk, mem_fd, n)
        return self._leaves[:n], self._shifts[:n]

    def sample(self, mem_fd: int, mode: int, base: int, n: int,
               gen: int) -> tuple[int, int, int]:
        """One sample-program pass (SAMPLE_CHECK / SAMPLE_AHEAD) over regions [base, base + n).

        `gen`: the target's generation of known-shared pages. Returns the
        iovecs it staged, their bytes, and the highest count the check saw.
        Raises WalkError as walk().
        """
        cfg = self._config
        cfg[CFG_MODE] = mode
        cfg[CFG_BASE] = base
        cfg[CFG_NR] = n
        cfg[CFG_NR_IOV] = 0
        cfg[CFG_IOV_BYTES] = 0
        cfg[CFG_NR_VERIFY] = 0
        cfg[CFG_MAX] = 0
        cfg[CFG_SHARED_GEN] = gen
        self._run_chained(self._run_sample, mem_fd, n)
        return cfg[CFG_NR_IOV], cfg[CFG_IOV_BYTES], cfg[CFG_MAX]

    @property
    def mm_live(self) -> bool:
        """Whether the last walk's or sample's address space still had users after it."""
        return self._config[CFG_MM_USERS] != 0

    @property
    def owner_cpu(self) -> int | None:
        """The CPU the last sample()'s target (its mm's owner task) last ran on, if known."""
        cpu = self._config[CFG_OWNER_CPU]
        return None if cpu == 0xFFFFFFFF else cpu

    def verify(self, mem_fd: int) -> int:
        """Walk again the pages of the last sample()'s iovecs that may have kept their bit.

        Returns how many are still young; those are marked in `regions.uncleared`.
        Costs nothing when every staged page was a writable entry of a
        private mapping (mapped by this process alone).
        """
        cfg = self._config
        if not cfg[CFG_NR_VERIFY]:
            return 0
        cfg[CFG_MODE] = SAMPLE_VERIFY
        cfg[CFG_NR_STILL] = 0
        self._run_chained(self._run_sample, mem_fd, cfg[CFG_NR_IOV])
        return cfg[CFG_NR_STILL]

    def _run_chained(self, run: bpf_syscall.TestRun, mem_fd: int, n: int) -> None:
        """Run a tail-calling program on `mem_fd`'s mm until it has covered `n` items."""
        cfg = self._config
        cfg[CFG_MEM_FD] = mem_fd
        cfg[CFG_NEXT] = 0
        while True:  # each run covers up to 34 chunks (the tail-call limit)
            cfg[CFG_STATUS] = ST_NO_FILE
            run()
            if cfg[CFG_STATUS] != ST_OK:
                raise WalkError(cfg[CFG_STATUS])
            if cfg[CFG_NEXT] >= n:
                return

    def walk(self, mem_fd: int, addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Leaf entries and page shifts (0 = not present) for `addrs`, and the mm walked.

        Raises WalkError when `mem_fd` resolves to no mm_struct.
        """
        n = len(addrs)
        leaves = np.empty(n, dtype=np.uint64)
        shifts = np.empty(n, dtype=np.uint64)
        cfg = self._config
        mm = 0
        for lo in range(0, max(n, 1), MAX_BATCH):
            hi = min(lo + MAX_BATCH, n)
            self._addrs[: hi - lo] = addrs[lo:hi]
            cfg[CFG_NR] = hi - lo
            self._run_chained(self._run_walk, mem_fd, hi - lo)
            leaves[lo:hi] = self._leaves[: hi - lo]
            shifts[lo:hi] = self._shifts[: hi - lo]
            mm = int(cfg[CFG_MM])
        return leaves, shifts, mm


def check_levels(w: Walker) -> None:
    """Settle 4- vs 5-level paging by walking our own memory and comparing with pagemap.

    CPU support (la57 in /proc/cpuinfo) does not say whether the kernel enabled
    it, and the answer must be right: a wrong depth reads wrong tables.
    """
    import ctypes
    import os

    buf = ctypes.create_string_buffer(3 * 4096)
    addr = (ctypes.addressof(buf) + 4095) & ~4095
    ctypes.memset(addr, 1, 4096)  # fault in an exclusive, present page
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(addr // 4096 * 8)
        entry = int.from_bytes(f.read(8), "little")
    pfn = entry & ((1 << 55) - 1)
    if not entry >> 63 or pfn == 0:
        raise PlatformError("/proc/self/pagemap hides page frames: run damo as root")
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        la57 = "la57" in Path("/proc/cpuinfo").read_text().split()
        for levels in ((4, 5) if la57 else (4,)):
            w.set_levels(levels)
            leaves, shifts, _ = w.walk(fd, np.array([addr], dtype=np.uint64))
            got = (int(leaves[0]) & PHYS_MASK) >> 12
            if shifts[0] == 12 and got == pfn:
                return
    finally:
        os.close(fd)
    raise PlatformError("the BPF page-table walk disagrees with /proc/self/pagemap on this kernel")


@functools.cache
def walker() -> Walker:
    """The process-wide walker, loaded and self-checked on first use."""
    w = Walker()
    check_levels(w)
    return w
