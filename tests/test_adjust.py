"""Aggregation of snapshots (adjust, wss --work_time) and the `damo adjust` command."""

import numpy as np
from conftest import run_damo
from hypothesis import given, settings
from hypothesis import strategies as st

from damo.records.reader import read_snapshots
from damo.records.snapshots import from_lists
from damo.records.writer import RecordWriter, TargetRegions
from damo.reports import aggregate, spans


def naive_aggregate(snapshots):
    """The aggregation rule written the slow, obvious way, one region at a time."""
    regions = [list(r) for r in snapshots[0]]
    for snap in snapshots[1:]:
        added = [0] * len(regions)
        appended = []
        for start, end, nr in snap:
            for k, (rs, re, _) in enumerate(regions):
                if rs < end and start < re:
                    added[k] = max(added[k], nr)
            # Parts of [start, end) outside every region, in address order.
            cursor = start
            for rs, re, _ in sorted(r[:2] + [0] for r in regions):
                if re <= cursor or rs >= end:
                    continue
                if rs > cursor:
                    appended.append([cursor, rs, nr])
                cursor = max(cursor, re)
            if cursor < end:
                appended.append([cursor, end, nr])
        for k, extra in enumerate(added):
            regions[k][2] += extra
        regions.extend(appended)
    return [tuple(r) for r in regions]


@st.composite
def snapshot(draw):
    """Disjoint regions on a small grid, in a random order."""
    cuts = sorted(draw(st.sets(st.integers(0, 60), min_size=2, max_size=12)))
    pairs = list(zip(cuts, cuts[1:], strict=False))
    keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    regs = [(s, e, draw(st.integers(0, 20))) for (s, e), k in zip(pairs, keep, strict=True) if k]
    if not regs:
        regs = [(cuts[0], cuts[1], 1)]
    return draw(st.permutations(regs))


@settings(max_examples=300, deadline=None)
@given(st.lists(snapshot(), min_size=1, max_size=5))
def test_aggregate_matches_the_rule(snapshots):
    snaps = from_lists([(k + 1, 1, list(s)) for k, s in enumerate(snapshots)])
    start, end, nr = aggregate.aggregate(snaps, np.arange(len(snapshots)))
    got = list(zip(start.tolist(), end.tolist(), nr.tolist(), strict=True))
    assert got == naive_aggregate([list(s) for s in snapshots])


def test_split_region_counts_once():
    snaps = from_lists([(1, 1, [(1, 10, 5)]), (2, 1, [(1, 5, 2), (5, 10, 4)])])
    start, end, nr = aggregate.aggregate(snaps, np.arange(2))
    assert (start.tolist(), end.tolist(), nr.tolist()) == ([1], [10], [9])


def test_windows_and_shots():
    snaps = from_lists([(k * 100_000_000, 1, [(0, 4096, 1)]) for k in range(10)])
    span = spans.spans(snaps)[1]
    assert spans.shots_per_window(span, 1_000_000) == 10
    assert spans.shots_per_window(span, 250_000) == 2  # round(2.5) is 2
    assert spans.shots_per_window(span, 1) == 1
    windows = aggregate.Windows(4, skip=1)
    done = [windows.add(*snaps.regions(i)) for i in range(10)] + [windows.finish()]
    # Skip one, then windows of 4, 4 and the last 1; nr_accesses add up.
    assert [int(w[2][0]) for w in done if w is not None] == [4, 4, 1]


def write(path, nr_records, targets=(7,)):
    with RecordWriter(str(path)) as w:
        for k in range(nr_records):
            w.write(10**9 + k * 100_000_000, [
                TargetRegions(t, np.array([0x1000 * t], dtype=np.uint64),
                              np.array([0x1000 * t + 0x1000], dtype=np.uint64),
                              np.array([k % 3], dtype=np.uint32))
                for t in targets if t != 8 or k < 25])


def test_adjust_command(tmp_path):
    write(tmp_path / "damon.data", 40, targets=(7, 8))
    (tmp_path / "damon.adjusted.data").write_bytes(b"precious")
    proc = run_damo("adjust", "500000", "--skip", "0x5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "damon.adjusted.data.old").read_bytes() == b"precious"
    snaps = read_snapshots(tmp_path / "damon.adjusted.data")
    assert snaps.source == "recfmt v2"
    # 35 snapshots of target 7 in windows of 5; 20 of target 8.
    assert snaps.nr_records == 7
    assert snaps.end_ns[snaps.of_target(7)].tolist() == [10**9 + k * 500_000_000
                                                         for k in range(7)]
    assert len(snaps.of_target(8)) == 4
    assert np.diff(snaps.record).min() >= 0
    # nr_accesses: sum over each window of k % 3, k = 5 .. 39.
    expected = [sum(k % 3 for k in range(s, s + 5)) for s in range(5, 40, 5)]
    assert snaps.nr_accesses[snaps.offsets[snaps.of_target(7)]].tolist() == expected


def test_adjust_writes_elsewhere_with_o(tmp_path):
    write(tmp_path / "in.data", 30)
    proc = run_damo("adjust", "1000000", "-i", "in.data", "-o", "out.data", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(read_snapshots(tmp_path / "out.data")) == 1
