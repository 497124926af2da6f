"""`damo validate`: good files pass, each kind of bad file fails with its problem."""

import struct

import numpy as np
import pytest
from conftest import run_damo

from damo.records.meta import MetaWriter
from damo.records.writer import RecordWriter, TargetRegions

U64 = np.uint64


def write(path, snapshots, aggr_ns=100_000_000, targets=(7,)):
    """Records `aggr_ns` apart; `snapshots[k]` is the [(start, end, nr), ...] of record k."""
    with RecordWriter(str(path)) as w:
        for k, regions in enumerate(snapshots):
            cols = list(zip(*regions, strict=True))
            w.write(10**9 + k * aggr_ns, [
                TargetRegions(tid, np.array(cols[0], dtype=U64), np.array(cols[1], dtype=U64),
                              np.array(cols[2], dtype=np.uint32)) for tid in targets])


GOOD = [[(0x1000, 0x5000, k % 20), (0x5000, 0x9000, 3), (0x10000, 0x20000, 0)]
        for k in range(30)]


def validate(path, *args):
    proc = run_damo("validate", "-i", str(path), *args)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_good_file(tmp_path):
    write(tmp_path / "d.data", GOOD, targets=(7, 8))
    code, out, err = validate(tmp_path / "d.data")
    assert (code, err) == (0, "")
    assert out.startswith(f"{tmp_path / 'd.data'}: valid: 30 records, 60 snapshots of 2 target")


def test_conformance_files_are_valid(conformance_dir):
    for name in ("damon.data", "perf.data.script"):
        code, out, _ = validate(conformance_dir / name)
        assert code == 0 and ": valid: " in out, out


def bad(snapshots, k, regions):
    return [regions if i == k else s for i, s in enumerate(snapshots)]


@pytest.mark.parametrize("case, kind, words", [
    ("too many", "nr_regions", "4 regions, not within 1-3"),
    ("empty", "region", "region 1 0x5000-0x5000: empty"),
    ("overlap", "region", "starts before the previous region ends (0x5000)"),
    ("unsorted", "region", "starts before the previous region ends (0x9000)"),
    ("hot", "nr_accesses", "nr_accesses 24, more than 100000/5000 samples"),
])
def test_bad_regions(tmp_path, case, kind, words):
    regions = {
        "too many": GOOD[0] + [(0x30000, 0x31000, 1)],
        "empty": [(0x1000, 0x5000, 1), (0x5000, 0x5000, 1)],
        "overlap": [(0x1000, 0x5000, 1), (0x4000, 0x6000, 1)],
        "unsorted": [(0x5000, 0x9000, 1), (0x1000, 0x5000, 1)],
        "hot": [(0x1000, 0x5000, 24)],  # 20 samples an aggregation, 15 % more is 23
    }[case]
    write(tmp_path / "d.data", bad(GOOD, 12, regions))
    code, out, _ = validate(tmp_path / "d.data", "--nr-regions", "1", "3")
    assert code == 1
    assert out.count("\n") == 1
    assert out.startswith(f"{tmp_path / 'd.data'}: {kind}: snapshot 12 (target 7, at ")
    assert words in out


def test_intervals(tmp_path):
    write(tmp_path / "d.data", GOOD, aggr_ns=120_000_000)
    code, out, _ = validate(tmp_path / "d.data")
    assert code == 1
    assert ": interval: snapshot 1 (target 7, at 1120000000 ns): 120000000 ns after the " \
           "previous one, not 100000000 ns (+-15 %) (and 28 more problems; -v lists them)" in out
    assert validate(tmp_path / "d.data", "--aggr", "120000")[0] == 0
    assert validate(tmp_path / "d.data", "--tolerance", "25")[0] == 0


def test_verbose_lists_every_problem(tmp_path):
    snaps = bad(bad(GOOD, 3, [(0x1000, 0x1000, 0)]), 9, [(0x1000, 0x5000, 99)])
    write(tmp_path / "d.data", snaps)
    code, out, _ = validate(tmp_path / "d.data", "-v")
    assert code == 1
    lines = out.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["region", "nr_accesses"]
    assert "snapshot 3 " in lines[0] and "snapshot 9 " in lines[1]


def test_attributes_come_from_the_sidecar(tmp_path):
    path = tmp_path / "d.data"
    write(path, GOOD, aggr_ns=50_000_000)
    with MetaWriter(str(path)) as meta:
        meta.write("start", time_ns=0, attrs={"sample_us": 2500, "aggr_us": 50_000,
                                               "update_us": 1_000_000, "min_nr_regions": 3,
                                               "max_nr_regions": 3})
    code, out, _ = validate(path)
    assert code == 0, out
    assert "aggr 50000 us" in out and f"from {path}.meta" in out
    assert validate(path, "--aggr", "100000")[0] == 1  # the options win


def test_a_gap_its_aggregation_waited_for_is_explained(tmp_path):
    """Record 5 came 27 ms late: its wait message of 27 ms explains it, one of 5 ms does not,
    nor one at another record's time; `spacing` leaves the explained part out."""
    from damo.reports.validate import spacing

    path = tmp_path / "d.data"
    late = 27_000_000
    ends = [10**9 + k * 100_000_000 + (late if k >= 5 else 0) for k in range(len(GOOD))]
    with RecordWriter(str(path)) as w:
        for end, regions in zip(ends, GOOD, strict=True):
            cols = list(zip(*regions, strict=True))
            w.write(end, [TargetRegions(7, np.array(cols[0], dtype=U64),
                                        np.array(cols[1], dtype=U64),
                                        np.array(cols[2], dtype=np.uint32))])

    def with_wait(at: int, waited_ns: int) -> None:
        with MetaWriter(str(path)) as meta:
            meta.write("start", time_ns=0, attrs={"sample_us": 5000, "aggr_us": 100_000,
                                                   "max_nr_regions": 1000})
            meta.write("wait", time_ns=at, steps=waited_ns // 5_000_000, waited_ns=waited_ns,
                       makeup_steps=waited_ns // 5_000_000)

    with_wait(ends[5], late)
    code, out, _ = validate(path)
    assert code == 0, out
    assert spacing(str(path), np.array(ends)).max() == pytest.approx(1.0)
    with_wait(ends[5], 5_000_000)  # explains 5 ms of 27
    code, out, _ = validate(path)
    assert code == 1
    assert (f"interval: snapshot 5 (target 7, at {ends[5]} ns): 127000000 ns after the previous "
            "one, not 100000000 ns plus the 5000000 ns its aggregation waited (+-15 %)") in out
    assert spacing(str(path), np.array(ends))[4] == pytest.approx(1.22)
    with_wait(ends[6], late)  # another aggregation's wait explains nothing here
    code, out, _ = validate(path)
    assert code == 1 and "snapshot 5 " in out


def test_truncated_and_corrupt_files(tmp_path):
    path = tmp_path / "d.data"
    write(path, GOOD)
    data = path.read_bytes()
    cut = tmp_path / "cut.data"
    cut.write_bytes(data[:-7])
    code, out, err = validate(cut)
    assert code == 1 and err == ""
    assert out == (f"{cut}: format: last record (at byte {len(data) - 92}) is truncated; "
                   "using the 29 complete records before it\n")
    inverted = tmp_path / "inv.data"
    # Record 5's second region: its end (records of 92 bytes after the header) below its start.
    at = 20 + 5 * 92 + 32 + 20 + 8
    inverted.write_bytes(data[:at] + struct.pack("<Q", 0x10) + data[at + 8:])
    code, out, _ = validate(inverted)
    assert code == 1
    assert out == f"{inverted}: format: snapshot 5 has a region ending before it starts " \
                  "(corrupt)\n"
    code, out, _ = validate(tmp_path / "nothing.data")
    assert code == 1 and out == f"{tmp_path / 'nothing.data'}: format: no such file\n"
    (tmp_path / "text.data").write_text("hello\n")
    assert "format: not a DAMON record file" in validate(tmp_path / "text.data")[1]


def test_bad_options(tmp_path):
    write(tmp_path / "d.data", GOOD)
    for args in (["--aggr", "0"], ["--nr-regions", "5", "2"], ["--tolerance", "x"]):
        code, out, err = validate(tmp_path / "d.data", *args)
        assert code == 2 and out == "" and err.startswith("damo: error: "), (args, err)
        assert err.count("\n") == 1


def test_problems_are_listed_in_file_order(tmp_path):
    five = [(k * 0x1000, (k + 1) * 0x1000, 1) for k in range(5)]
    snaps = bad(bad(bad(GOOD, 3, [(0x1000, 0x1000, 0)]), 9, five), 10, [(0x1000, 0x1000, 0)])
    write(tmp_path / "d.data", snaps)
    code, out, _ = validate(tmp_path / "d.data", "-v", "--nr-regions", "1", "4")
    assert code == 1
    lines = out.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["region", "nr_regions", "region"]
    assert "snapshot 10 " in lines[2]
    assert "snapshot 3 " in lines[0] and "snapshot 9 " in lines[1]
    first, _, _ = validate(tmp_path / "d.data", "--nr-regions", "1", "4")[1].partition(" (and")
    assert "snapshot 3 " in first and first.endswith(": empty")
