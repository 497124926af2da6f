"""kernel: kernel DAMON's own results, from its `damon:damon_aggregated` tracepoint.

Where the kernel runs DAMON itself there is nothing to sample: each kdamond
already reports every region of every target at each aggregation, one
tracepoint event per region.  A BPF program (`bpf/damon_aggregated.bpf.c`)
copies the events into a ring that damo maps as a numpy array, so reading
costs nothing per event in Python; `SnapshotAssembler` cuts the stream into
snapshots (`damo.records.events`) and groups them into records, one per
aggregation of a kdamond holding all its targets.

Events can be lost when damo falls behind by a whole ring.  The ring tells
(each slot carries its sequence number), and a snapshot that lost any event
is dropped and counted, never written short.
"""

import mmap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from damo.errors import PlatformError, TargetError, UsageError
from damo.linux import damon_sysfs
from damo.records import events as event_stream
from damo.records.tracepoint import TRACEFS_NAME
from damo.records.writer import TargetRegions

BPF_SOURCE = Path(__file__).resolve().parents[2] / "bpf" / "damon_aggregated.bpf.c"
TRACEPOINT = TRACEFS_NAME

EVENT_DTYPE = np.dtype(
    [
        ("seq", "<u8"),
        ("time_ns", "<u8"),
        ("target_id", "<u8"),
        ("start", "<u8"),
        ("end", "<u8"),
        ("nr_regions", "<u4"),
        ("nr_accesses", "<u4"),
        ("age", "<u4"),
        ("kdamond_pid", "<u4"),
    ]
)

# 2^17 events (7 MiB) hold 13 s of kernel DAMON at its defaults (1000 regions
# every 100 ms), far more than damo's polling period.
DEFAULT_NR_SLOTS = 1 << 17

if TYPE_CHECKING:
    from damo.core.attrs import Attrs

Record = tuple[int, list[TargetRegions]]


def tracepoint_format(tracefs: Path) -> str:
    path = tracefs / "events" / TRACEPOINT / "format"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise PlatformError(
            f"no {TRACEPOINT.replace('/', ':')} tracepoint ({path}): "
            "this kernel is built without DAMON"
        ) from None


class RingReader:
    """Reads a ring of events as `bpf/damon_aggregated.bpf.c` fills it.

    `events` is the slot array and `head` the one-element count of events
    ever written; both are live views of BPF maps in use, or plain arrays.
    """

    def __init__(self, events: np.ndarray, head: np.ndarray):
        self.events = events
        self.head = head
        self.nr_slots = len(events)
        # Events already in flight belong to a snapshot that began before us.
        self._next = int(head[0])

    def read(self) -> tuple[np.ndarray, int]:
        """The events published since the last read (a copy), and how many were lost before them."""
        head = int(self.head[0])
        lost = max(0, head - self._next - self.nr_slots)
        first = self._next + lost
        seq = np.arange(first + 1, head + 1, dtype=np.uint64)
        batch = self.events[(seq - 1) % self.nr_slots]
        # Slots lapped while we copied hold newer events: lost. A slot still being
        # written has an older seq: stop before it and read it next time.
        lapped = np.flatnonzero(batch["seq"] > seq)
        skip = int(lapped[-1]) + 1 if len(lapped) else 0
        unpublished = np.flatnonzero(batch["seq"][skip:] < seq[skip:])
        stop = skip + int(unpublished[0]) if len(unpublished) else len(batch)
        self._next = first + stop
        return batch[skip:stop], lost + skip


class AggregatedRing:
    """The tracepoint program, attached, and a `RingReader` over the ring it fills."""

    def __init__(self, nr_slots: int = DEFAULT_NR_SLOTS):
        from damo.linux import bcc_env, preflight

        if nr_slots & (nr_slots - 1):
            raise ValueError("nr_slots must be a power of two")
        preflight.check_root()
        preflight.check_tracefs()
        has_age = self.has_age = " age;" in tracepoint_format(preflight.TRACEFS)
        bcc = bcc_env.setup()
        cflags = [f"-DNR_SLOTS={nr_slots}"] + (["-DHAS_AGE"] if has_age else [])
        try:
            self._bpf = bcc.BPF(text=BPF_SOURCE.read_bytes(), cflags=cflags)
        except Exception as err:  # bcc raises bare Exception; clang wrote the details to stderr
            raise PlatformError(f"could not load the tracepoint program: {err}") from None
        self._maps = [
            mmap.mmap(self._bpf[name].get_fd(), size, mmap.MAP_SHARED, mmap.PROT_READ)
            for name, size in ((b"events", nr_slots * EVENT_DTYPE.itemsize), (b"head", 8))
        ]
        self.reader = RingReader(
            np.frombuffer(self._maps[0], dtype=EVENT_DTYPE),
            np.frombuffer(self._maps[1], dtype="<u8", count=1),
        )

    def read(self) -> tuple[np.ndarray, int]:
        return self.reader.read()

    def close(self) -> None:
        self.reader = None  # drop the views before their mappings
        for m in self._maps:
            m.close()
        self._maps = []
        self._bpf.cleanup()


@dataclass
class _KdamondStream:
    """Per kdamond: events of a snapshot still arriving, and the record being filled."""

    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=EVENT_DTYPE))
    record_time: int = 0
    record: list[TargetRegions] = field(default_factory=list)


class SnapshotAssembler:
    """Cuts events into snapshots and groups each kdamond's snapshots into records.

    A record closes when it holds `nr_targets[kdamond pid]` snapshots (when
    known from sysfs), or when a target reappears (the next aggregation began).
    """

    def __init__(self, nr_targets: dict[int, int] | None = None,
                 only: set[int] | None = None):
        self.nr_targets = nr_targets or {}
        # Kdamond pids to keep (None: all): a kdamond damo started records only
        # its own events, not those of kdamonds outside sysfs (DAMON_RECLAIM).
        self.only = only
        self.dropped_snapshots = 0
        # Whether the events carry the kernel's region age (kernels since 2021 do).
        self.has_age = False
        self._streams: dict[int, _KdamondStream] = {}

    def feed(self, batch: np.ndarray, lost: int = 0) -> list[Record]:
        """Records completed by `batch`; `lost` events went missing just before it."""
        if lost:
            self._drop_pending()
        done: list[Record] = []
        pids = batch["kdamond_pid"]
        for pid in np.unique(pids).tolist():
            if self.only is not None and pid not in self.only:
                continue
            stream = self._streams.setdefault(pid, _KdamondStream())
            run = batch[pids == pid]
            if len(stream.pending):
                run = np.concatenate((stream.pending, run))
            done.extend(self._cut(pid, stream, run))
        done.sort(key=lambda record: record[0])
        return done

    def finish(self) -> list[Record]:
        """Close every open record; snapshots still short are dropped."""
        self._drop_pending()
        done = [self._close(s) for s in self._streams.values() if s.record]
        done.sort(key=lambda record: record[0])
        return done

    def _drop_pending(self) -> None:
        for stream in self._streams.values():
            if len(stream.pending):
                self.dropped_snapshots += 1
                stream.pending = stream.pending[:0]

    def _cut(self, pid: int, stream: _KdamondStream, run: np.ndarray) -> list[Record]:
        tid, nr = run["target_id"], run["nr_regions"]
        start, end = run["start"], run["end"]
        all_firsts, _ = event_stream.snapshot_bounds(tid, nr, start, end)
        firsts, counts, tail = event_stream.complete_snapshots(tid, nr, start, end)
        self.dropped_snapshots += len(all_firsts) - len(firsts) - (tail < len(run))
        stream.pending = run[tail:]
        done = []
        for f, c in zip(firsts.tolist(), counts.tolist(), strict=True):
            target_id = int(tid[f])
            if any(t.target_id == target_id for t in stream.record):
                done.append(self._close(stream))
            if not stream.record:
                stream.record_time = int(run["time_ns"][f])
            sl = slice(f, f + c)
            stream.record.append(
                TargetRegions(target_id, start[sl].copy(), end[sl].copy(), run["nr_accesses"][sl],
                              run["age"][sl].copy() if self.has_age else None)
            )
            if len(stream.record) == self.nr_targets.get(pid):
                done.append(self._close(stream))
        return done

    @staticmethod
    def _close(stream: _KdamondStream) -> Record:
        record = (stream.record_time, stream.record)
        stream.record = []
        return record


@dataclass
class KernelStats:
    nr_events: int = 0
    lost_events: int = 0
    nr_records: int = 0


def follow(
    ring: AggregatedRing | RingReader,
    assembler: SnapshotAssembler,
    sink: Callable[[Record], None],
    should_stop: Callable[[], bool],
    poll_s: float = 0.05,
) -> KernelStats:
    """Pass every record the kernel reports to `sink` until `should_stop()`."""
    stats = KernelStats()

    def drain(records: list[Record]) -> None:
        for record in records:
            sink(record)
        stats.nr_records += len(records)

    while not should_stop():
        time.sleep(poll_s)
        batch, lost = ring.read()
        stats.nr_events += len(batch)
        stats.lost_events += lost
        drain(assembler.feed(batch, lost))
    batch, lost = ring.read()
    stats.nr_events += len(batch)
    stats.lost_events += lost
    drain(assembler.feed(batch, lost))
    drain(assembler.finish())
    return stats


class KernelSource:
    """What `damo record --ops kernel` records: running kdamonds, or one damo starts.

    Construction checks everything and starts nothing; `start` loads the
    tracepoint program first and only then starts damo's own kdamond (if any),
    so its first aggregation is not missed; `stop` undoes both.
    """

    name = "kernel"

    def __init__(self, targets: list[str], attach: bool, attrs: "Attrs",
                 admin: Path | None = None):
        from damo.linux import preflight

        admin = damon_sysfs.ADMIN_DIR if admin is None else admin
        self.attach = attach
        self.attrs = attrs
        self.admin = admin
        self.ring: AggregatedRing | None = None
        self.assembler: SnapshotAssembler | None = None
        self.own: damon_sysfs.OwnKdamond | None = None
        self.kdamonds: list[damon_sysfs.KdamondInfo] = []
        self.stats = KernelStats()
        self.kdamonds_stopped = False
        preflight.check_root()
        preflight.check_tracefs()
        tracepoint_format(preflight.TRACEFS)
        preflight.check_bcc()
        damon_sysfs.check_interface(admin)
        if attach:
            if targets:
                raise UsageError("--attach records the running kdamonds: give no TARGET")
            self.kdamonds = [kd for kd in damon_sysfs.read_kdamonds(admin) if kd.running]
            if not self.kdamonds:
                raise TargetError("no kdamond is running to attach to: "
                                  "drop --attach to let damo start one")
            return
        self.ops, self.target_pids = _parse_kernel_targets(targets)
        self.own = damon_sysfs.OwnKdamond(
            ops=self.ops,
            sample_us=attrs.sample_interval,
            aggr_us=attrs.aggr_interval,
            update_us=attrs.update_interval,
            min_nr_regions=attrs.min_nr_regions,
            max_nr_regions=attrs.max_nr_regions,
            target_pids=self.target_pids,
            admin=admin,
        )
        self.own.refuse_if_in_use()

    def start(self, nr_slots: int = DEFAULT_NR_SLOTS) -> None:
        self.ring = AggregatedRing(nr_slots)
        if self.own is not None:
            try:
                self.own.start()
            except BaseException:
                self.stop()
                raise
            self.kdamonds = [kd for kd in damon_sysfs.read_kdamonds(self.admin)
                             if kd.index == self.own.index]
        self.assembler = SnapshotAssembler({
            kd.pid: sum(len(ctx.target_pids) for ctx in kd.contexts)
            for kd in self.kdamonds if kd.pid is not None
        }, only=None if self.own is None or self.own.pid is None else {self.own.pid})
        self.assembler.has_age = getattr(self.ring, "has_age", False)

    def running(self) -> bool:
        """Whether any recorded kdamond is still on (sysfs is read, never written)."""
        try:
            states = {kd.index: kd.state for kd in damon_sysfs.read_kdamonds(self.admin)}
        except (OSError, ValueError):
            return False
        return any(states.get(kd.index) == "on" for kd in self.kdamonds)

    def follow(self, sink: Callable[[Record], None], should_stop: Callable[[], bool]) -> None:
        """Record until `should_stop()` or every kdamond has stopped."""
        check_every = 1.0
        next_check = time.monotonic() + check_every
        gone = False

        def stop() -> bool:
            nonlocal next_check, gone
            if should_stop() or gone:
                return True
            if time.monotonic() >= next_check:
                next_check += check_every
                gone = not self.running()
            return gone

        self.stats = follow(self.ring, self.assembler, sink, stop)
        self.kdamonds_stopped = gone

    def describe(self) -> list[dict]:
        """The recorded kdamonds and their attributes, for the sidecar."""
        return [
            {
                "index": kd.index,
                "pid": kd.pid,
                "started_by_damo": self.own is not None,
                "contexts": [ctx.__dict__ | {"target_pids": list(ctx.target_pids)}
                             for ctx in kd.contexts],
            }
            for kd in self.kdamonds
        ]

    def stop(self) -> None:
        try:
            if self.own is not None:
                self.own.stop()
        finally:
            if self.ring is not None:
                self.ring.close()
                self.ring = None


def _parse_kernel_targets(targets: list[str]) -> tuple[str, tuple[int, ...]]:
    """`paddr`, or pids (monitored by the kernel's vaddr operations)."""
    if targets == ["paddr"]:
        return "paddr", ()
    if targets and all(t.isdigit() for t in targets):
        from damo.linux import preflight

        pids = tuple(int(t) for t in targets)
        for pid in pids:
            preflight.check_pid(pid)
        return "vaddr", pids
    raise UsageError("--ops kernel records 'paddr', pids (kernels with vaddr), or with --attach "
                     "the running kdamonds")
