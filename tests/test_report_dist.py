"""wss and nr_regions: what is counted, skipped and printed."""

import numpy as np
from conftest import run_damo

from damo.records.snapshots import from_lists
from damo.records.writer import RecordWriter, TargetRegions
from damo.reports import dist, nr_regions, wss


def test_wss_thresholds():
    snaps = from_lists([
        (1, 1, [(0, 100, 0), (100, 300, 1), (300, 310, 5)]),
        (2, 1, [(0, 100, 3), (100, 300, 0), (300, 310, 5)]),
    ])
    idx = snaps.of_target(1)
    assert wss.wss_per_snapshot(snaps, idx, 1, 1).tolist() == [210, 110]
    assert wss.wss_per_snapshot(snaps, idx, 2, 1).tolist() == [10, 110]
    assert wss.wss_per_snapshot(snaps, idx, 1, 50).tolist() == [200, 100]


def test_wss_work_time_skips_then_aggregates():
    snaps = from_lists([(k * 1000, 1, [(0, 10, k % 2), (10, 30, 0)]) for k in range(8)])
    # 1 us per snapshot; work time 2 us: windows of two after skipping 2.
    assert wss.values_per_target(snaps, 1, 1, 2, exclude=2)[1].tolist() == [10, 10, 10]
    assert wss.values_per_target(snaps, 1, 1, 1, exclude=2)[1].tolist() == [0, 10] * 4


def test_percentile_picks():
    values = np.array([5, 1, 4, 2, 3])
    assert dist.pick(values, [0, 50, 100, 150], by_size=True) == [(0, 1), (50, 3), (100, 5),
                                                                   (150, 5)]
    assert dist.pick(values, [0, 20, 40], by_size=False) == [(0, 5), (20, 1), (40, 4)]
    assert dist.percentiles([0, 101, 50]) == [0, 50, 100]
    table = dist.table("wss", [(7, values)], [0, 100], by_size=True)
    assert table == "# <percentile> <wss>\n# target_id\t7\n# avr:\t3\n0\t1\n100\t5\n"


def test_nr_regions_skips_warmup():
    snaps = from_lists([(k, 1, [(0, 1, 0)] * (1 if k < 20 else 3)) for k in range(25)])
    ((tid, values),) = nr_regions.per_target(snaps)
    assert tid == 1 and values.tolist() == [3] * 5


def test_every_target_gets_a_table(tmp_path):
    with RecordWriter(str(tmp_path / "damon.data")) as w:
        for k in range(30):
            w.write(k * 100_000_000, [
                TargetRegions(tid, np.array([0], dtype=np.uint64),
                              np.array([4096 * tid], dtype=np.uint64),
                              np.array([1], dtype=np.uint32))
                for tid in (3, 4)])
    proc = run_damo("report", "wss", "--raw_number", cwd=tmp_path)
    assert proc.returncode == 0
    out = proc.stdout.decode()
    assert "# target_id\t3\n# avr:\t12288\n" in out and "# target_id\t4\n# avr:\t16384\n" in out


def test_too_few_snapshots_warns(tmp_path):
    with RecordWriter(str(tmp_path / "damon.data")) as w:
        w.write(1, [TargetRegions(1, np.array([0], dtype=np.uint64),
                                  np.array([10], dtype=np.uint64),
                                  np.array([1], dtype=np.uint32))])
    proc = run_damo("report", "nr_regions", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == b"# <percentile> <# regions>\n"
    assert proc.stderr.decode().startswith("damo: warning: target 1: no snapshot left")


def test_raw_groups_targets_by_record(tmp_path):
    with RecordWriter(str(tmp_path / "damon.data")) as w:
        for k in range(2):
            w.write(10**9 + k * 10**8, [
                TargetRegions(tid, np.array([0x1000], dtype=np.uint64),
                              np.array([0x3000], dtype=np.uint64),
                              np.array([k], dtype=np.uint32))
                for tid in (3, 4)])
    proc = run_damo("report", "raw", cwd=tmp_path)
    assert proc.returncode == 0
    # As the seed-era tool prints it: a blank line after each target's regions.
    region = "000000001000-000000003000(      8192):\t{k}\n\n"
    record = ("nr_tasks:  2\ntarget_id:  3\nnr_regions:  1\n" + region
              + "target_id:  4\nnr_regions:  1\n" + region)
    assert proc.stdout.decode() == (
        "start_time:  1000000000\nrel time:                0\n" + record.format(k=0)
        + "rel time:        100000000\n" + record.format(k=1))


def test_raw_records_without_targets(tmp_path):
    """A record without targets prints its time and `nr_tasks:  0`, no blank line."""
    import struct

    from damo.records import recfmt

    def record(t, targets):
        out = struct.pack("<qqI", t // 10**9, t % 10**9, len(targets))
        for tid, (s, e, n) in targets:
            out += struct.pack("<QIQQI", tid, 1, s, e, n)
        return out

    (tmp_path / "damon.data").write_bytes(
        recfmt.header() + record(10**9, []) + record(2 * 10**9, [(1, (0x1000, 0x2000, 3))])
        + record(3 * 10**9, []))
    proc = run_damo("report", "raw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == (
        "start_time:  1000000000\nrel time:                0\nnr_tasks:  0\n"
        "rel time:       1000000000\nnr_tasks:  1\ntarget_id:  1\nnr_regions:  1\n"
        "000000001000-000000002000(      4096):\t3\n\n"
        "rel time:       2000000000\nnr_tasks:  0\n")
