"""Kernel DAMON as a source: events to snapshots to records, and the live tracepoint ring."""

import os

import numpy as np
import pytest

from damo.ops.kernel import EVENT_DTYPE, AggregatedRing, RingReader, SnapshotAssembler
from damo.records.events import complete_snapshots, snapshot_bounds
from tests.conftest import running_kdamond

KDAMOND = 77


def events(snapshots, pid=KDAMOND, t0=1_000):
    """Event array of [(target_id, [(start, end, nr_accesses), ...]), ...], one event per region."""
    rows = []
    for k, (tid, regions) in enumerate(snapshots):
        for start, end, nr in regions:
            rows.append((0, t0 + k, tid, start, end, len(regions), nr, 0, pid))
    return np.array(rows, dtype=EVENT_DTYPE)


A = [(0x1000, 0x2000, 1), (0x2000, 0x5000, 0), (0x5000, 0x6000, 3)]
B = [(0x10000, 0x20000, 2), (0x20000, 0x30000, 0)]


def fields(ev):
    return ev["target_id"], ev["nr_regions"], ev["start"], ev["end"]


def test_bounds_split_targets_and_aggregations():
    ev = events([(1, A), (2, B), (1, A), (2, B)])
    firsts, counts = snapshot_bounds(*fields(ev))
    assert firsts.tolist() == [0, 3, 5, 8] and counts.tolist() == [3, 2, 3, 2]


def test_same_target_back_to_back_split_by_addresses():
    ev = events([(1, A), (1, A)])
    firsts, counts, tail = complete_snapshots(*fields(ev))
    assert firsts.tolist() == [0, 3] and counts.tolist() == [3, 3] and tail == len(ev)


def test_partial_head_dropped_and_short_tail_pending():
    ev = events([(1, A), (1, A), (1, A)])[2:-1]  # cut into the first and the last snapshot
    firsts, counts, tail = complete_snapshots(*fields(ev))
    assert firsts.tolist() == [1] and counts.tolist() == [3]
    assert tail == 4


def test_records_hold_all_targets_of_an_aggregation():
    asm = SnapshotAssembler({KDAMOND: 2})
    records = asm.feed(events([(1, A), (2, B), (1, A), (2, B)]))
    assert len(records) == 2
    for _, targets in records:
        assert [t.target_id for t in targets] == [1, 2]
        assert [len(t.start) for t in targets] == [3, 2]
    assert records[0][1][0].nr_accesses.tolist() == [1, 0, 3]
    assert asm.dropped_snapshots == 0


def test_record_closes_when_a_target_reappears_without_sysfs_counts():
    asm = SnapshotAssembler()
    records = asm.feed(events([(1, A), (2, B), (1, A)]))
    assert [[t.target_id for t in r[1]] for r in records] == [[1, 2]]
    [(_, last)] = asm.finish()
    assert [t.target_id for t in last] == [1]


def test_snapshot_split_across_reads():
    ev = events([(1, A), (1, A)])
    asm = SnapshotAssembler({KDAMOND: 1})
    first = asm.feed(ev[:4])
    second = asm.feed(ev[4:])
    assert len(first) == 1 and len(second) == 1
    assert second[0][1][0].start.tolist() == [0x1000, 0x2000, 0x5000]


def test_lost_events_drop_the_open_snapshot_never_write_it_short():
    ev = events([(1, A), (1, A), (1, A)])
    asm = SnapshotAssembler({KDAMOND: 1})
    got = asm.feed(ev[:4])  # first whole, second has one region so far
    got += asm.feed(ev[5:], lost=1)  # one event lost: the rest of the second, then the third
    got += asm.finish()
    assert [len(r[1][0].start) for r in got] == [3, 3]
    assert asm.dropped_snapshots == 2  # the pending head and the orphaned rest


def test_kdamonds_interleaved():
    a = events([(1, A), (1, A)], pid=10)
    b = events([(9, B), (9, B)], pid=20)
    mixed = np.concatenate((a[:2], b[:1], a[2:], b[1:]))
    asm = SnapshotAssembler({10: 1, 20: 1})
    records = asm.feed(mixed)
    assert sorted(r[1][0].target_id for r in records) == [1, 1, 9, 9]


def test_own_kdamond_keeps_only_its_events():
    # A kdamond damo started records alone; one outside sysfs (DAMON_RECLAIM's) is not ours.
    a = events([(1, A), (1, A)], pid=10)
    b = events([(9, B), (9, B)], pid=20)
    asm = SnapshotAssembler({10: 1}, only={10})
    records = asm.feed(np.concatenate((a[:2], b[:1], a[2:], b[1:]))) + asm.finish()
    assert [r[1][0].target_id for r in records] == [1, 1]
    assert asm.dropped_snapshots == 0


def make_ring(nr_slots):
    """A ring in plain memory, and a writer that fills it as the BPF program does."""
    ring = RingReader(np.zeros(nr_slots, dtype=EVENT_DTYPE), np.zeros(1, dtype="<u8"))

    def publish(n, written=True):
        for _ in range(n):
            idx = int(ring.head[0])
            slot = ring.events[idx % nr_slots]
            slot["seq"] = idx + 1 if written else 0
            slot["start"] = idx
            ring.head[0] += 1

    return ring, publish


def test_ring_reads_in_order_and_counts_laps():
    ring, publish = make_ring(8)
    publish(5)
    batch, lost = ring.read()
    assert batch["start"].tolist() == [0, 1, 2, 3, 4] and lost == 0
    publish(11)  # laps the reader by 3
    batch, lost = ring.read()
    assert lost == 3 and batch["start"].tolist() == list(range(8, 16))


def test_ring_stops_before_a_slot_being_written():
    ring, publish = make_ring(8)
    publish(2)
    publish(1, written=False)
    batch, lost = ring.read()
    assert batch["start"].tolist() == [0, 1] and lost == 0
    ring.events[2]["seq"] = 3
    batch, _ = ring.read()
    assert batch["start"].tolist() == [2]


needs_live_kdamond = pytest.mark.skipif(
    os.geteuid() != 0 or running_kdamond() is None,
    reason="needs root and a running kdamond (kernel DAMON) to observe",
)


@needs_live_kdamond
def test_small_ring_loses_events_but_writes_nothing_short():
    import time

    from damo.ops.kernel import follow

    kd = running_kdamond()
    min_regions = min(ctx.min_nr_regions for ctx in kd.contexts)
    if min_regions <= 64:
        pytest.skip("the running kdamond's snapshots fit a 64-slot ring")
    aggr_s = max(ctx.aggr_us for ctx in kd.contexts) / 1e6
    ring = AggregatedRing(nr_slots=64)
    asm = SnapshotAssembler()
    records = []
    deadline = time.monotonic() + 2.5 * aggr_s
    try:
        stats = follow(ring, asm, records.append, lambda: time.monotonic() > deadline)
    finally:
        ring.close()
    assert stats.lost_events > 0
    assert records == [], "every snapshot lost events; none may be written"
    assert asm.dropped_snapshots > 0
