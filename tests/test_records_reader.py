"""Record files in, `Snapshots` out: round trips, every format, truncation, bad input."""

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from damo.errors import RecordFormatError
from damo.records import recfmt
from damo.records.reader import parse_bytes, read_snapshots
from damo.records.writer import RecordWriter, TargetRegions, encode_record

# ---- helpers ---------------------------------------------------------------

U64 = st.integers(0, 2**64 - 1)


@st.composite
def regions(draw, max_regions=6):
    """Sorted, non-overlapping regions as DAMON makes them (start < end)."""
    n = draw(st.integers(0, max_regions))
    points = sorted(draw(st.sets(U64, min_size=2 * n, max_size=2 * n)))
    nr = draw(st.lists(st.integers(0, 2**32 - 1), min_size=n, max_size=n))
    return [(points[2 * k], points[2 * k + 1], nr[k]) for k in range(n)]


@st.composite
def record_lists(draw):
    """[(time_ns, [(target_id, regions), ...]), ...] with non-decreasing times."""
    nr_records = draw(st.integers(1, 5))
    times = sorted(draw(st.lists(st.integers(0, 2**62), min_size=nr_records,
                                 max_size=nr_records)))
    ids = draw(st.lists(U64, min_size=1, max_size=3, unique=True))
    return [(t, [(tid, draw(regions())) for tid in ids]) for t in times]


def target_regions(tid, regs):
    arr = np.array(regs, dtype=np.uint64).reshape(-1, 3)
    return TargetRegions(tid, arr[:, 0], arr[:, 1], arr[:, 2].astype(np.uint32))


def encode_all(records, version=2):
    body = b"".join(
        encode_record(t, [target_regions(tid, regs) for tid, regs in targets])
        for t, targets in records
    )
    return recfmt.header(version) + body


def v1_bytes(records):
    """recfmt v1: the same as v2 but with int32 target ids."""
    parts = [recfmt.header(1)]
    for t, targets in records:
        parts.append(struct.pack("<qqI", t // 10**9, t % 10**9, len(targets)))
        for tid, regs in targets:
            parts.append(struct.pack("<iI", tid, len(regs)))
            parts.extend(struct.pack("<QQI", *r) for r in regs)
    return b"".join(parts)


def as_lists(snaps):
    """Snapshots back to [(time, [(tid, regions)])] grouped by record."""
    out = {}
    for i in range(len(snaps)):
        start, end, nr = snaps.regions(i)
        regs = list(zip(start.tolist(), end.tolist(), nr.tolist(), strict=True))
        rec = out.setdefault(int(snaps.record[i]), (int(snaps.end_ns[i]), []))
        rec[1].append((int(snaps.target_id[i]), regs))
    return [out[k] for k in sorted(out)]


# ---- round trips ------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_lists())
def test_writer_reader_round_trip(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("rt") / "damon.data"
    with RecordWriter(str(path)) as writer:
        for t, targets in records:
            writer.write(t, [target_regions(tid, regs) for tid, regs in targets])
    snaps = read_snapshots(path)
    assert snaps.source == "recfmt v2"
    assert as_lists(snaps) == records
    assert snaps.warnings == []


@settings(max_examples=100, deadline=None)
@given(record_lists())
def test_v0_is_v2_without_header(records):
    # v0 sniffing needs a plausible first record: give it at least one target.
    snaps = parse_bytes(encode_all(records, version=0))
    assert snaps.source == "recfmt v0"
    assert as_lists(snaps) == records


@settings(max_examples=100, deadline=None)
@given(record_lists(), st.lists(st.integers(-(2**31), 2**31 - 1), min_size=3, max_size=3,
                                unique=True))
def test_v1_has_int32_ids(records, ids):
    records = [(t, [(ids[k], regs) for k, (_, regs) in enumerate(targets)])
               for t, targets in records]
    snaps = parse_bytes(v1_bytes(records))
    assert snaps.source == "recfmt v1"
    assert as_lists(snaps) == records


def test_one_record_per_target_is_accepted():
    a = [(0x1000, 0x2000, 3)]
    b = [(0x5000, 0x9000, 1)]
    records = [(100, [(1, a)]), (100, [(2, b)]), (200, [(1, a)]), (200, [(2, b)])]
    snaps = parse_bytes(encode_all(records))
    assert snaps.target_ids() == [1, 2]
    assert snaps.end_ns[snaps.of_target(2)].tolist() == [100, 200]
    assert snaps.nr_records == 4


def test_columnar_layout():
    records = [(5 * 10**9, [(7, [(0, 4096, 1), (4096, 8192, 2)]), (9, [(0, 10, 3)])])]
    snaps = parse_bytes(encode_all(records))
    assert snaps.offsets.tolist() == [0, 2, 3]
    assert snaps.nr_regions.tolist() == [2, 1]
    assert snaps.record.tolist() == [0, 0]
    assert snaps.start.dtype == np.uint64 and snaps.nr_accesses.dtype == np.uint32
    assert snaps.end_ns.tolist() == [5 * 10**9] * 2


# ---- truncation -------------------------------------------------------------

TWO_RECORDS = [
    (10**9, [(1, [(0, 4096, 1), (8192, 12288, 0)])]),
    (2 * 10**9, [(1, [(0, 4096, 5), (8192, 16384, 2)])]),
]


@pytest.mark.parametrize("version", [0, 2])
def test_truncated_last_record_warns_and_keeps_the_rest(version, capsys, tmp_path):
    data = encode_all(TWO_RECORDS, version)
    last_record = len(encode_record(*[(t, [target_regions(*x) for x in tg])
                                       for t, tg in TWO_RECORDS[1:]][0]))
    for cut in range(1, last_record):
        snaps = parse_bytes(data[:-cut])
        assert as_lists(snaps) == TWO_RECORDS[:1], cut
        assert len(snaps.warnings) == 1
    path = tmp_path / "cut.data"
    path.write_bytes(data[:-7])
    read_snapshots(path)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning" in err and "truncated" in err


def test_perf_script_incomplete_last_snapshot_dropped():
    text = (
        "kdamond.0 1 [000] 10.000001: damon:damon_aggregated: target_id=3 nr_regions=2 0-4096: 1\n"
        "kdamond.0 1 [000] 10.000002: damon:damon_aggregated: target_id=3 nr_regions=2 "
        "4096-8192: 0\n"
        "kdamond.0 1 [000] 10.100000: damon:damon_aggregated: target_id=3 nr_regions=2 0-4096: 4\n"
    )
    snaps = parse_bytes(text.encode())
    assert len(snaps) == 1 and snaps.end_ns.tolist() == [10_000_001_000]
    assert "incomplete" in snaps.warnings[0]


def test_perf_script_with_age_and_spaces_in_command():
    text = (
        "   my worker  77 [001] 5.5: damon:damon_aggregated: target_id=9 nr_regions=1 "
        "100-200: 7 12\n"
        "some unrelated line\n"
    )
    snaps = parse_bytes(text.encode())
    assert snaps.source == "perf script"
    assert snaps.end_ns.tolist() == [5_500_000_000]
    assert snaps.target_id.tolist() == [9]
    assert [r.tolist() for r in snaps.regions(0)] == [[100], [200], [7]]


# ---- bad input --------------------------------------------------------------

def bad(data: bytes) -> str:
    with pytest.raises(RecordFormatError) as info:
        parse_bytes(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_empty_file():
    assert "empty" in bad(b"")


def test_garbage():
    rng = np.random.default_rng(1)
    for size in (1, 7, 100, 4096, 100_000):
        assert "not a DAMON record file" in bad(rng.bytes(size))


def test_wrong_magic():
    data = encode_all(TWO_RECORDS)
    assert "not a DAMON record file" in bad(b"damon_recfmt_vex" + data[16:])


@pytest.mark.parametrize("version", [0, 3, -1, 1000])
def test_unknown_version(version):
    data = recfmt.MAGIC + struct.pack("<i", version) + encode_all(TWO_RECORDS, 0)
    assert f"unknown record format version {version}" in bad(data)


def test_header_cut_off():
    assert "header" in bad(recfmt.MAGIC + b"\x02\x00")


def test_header_only():
    assert "no records" in bad(recfmt.header(2))


def test_records_without_targets():
    assert "no snapshots" in bad(encode_all([(1, []), (2, [])]))


def test_first_record_cut_off():
    assert "no complete record" in bad(encode_all(TWO_RECORDS)[:30])


def test_region_count_past_end_of_file():
    data = bytearray(encode_all(TWO_RECORDS))
    # nr_regions of the first snapshot: header 20 + time 16 + nr_targets 4 + id 8.
    struct.pack_into("<I", data, 48, 0xFFFFFFFF)
    assert "past the end of the file" in bad(bytes(data))


def test_target_count_past_end_of_file():
    data = bytearray(encode_all(TWO_RECORDS))
    struct.pack_into("<I", data, 36, 0x7FFFFFFF)
    assert "past the end of the file" in bad(bytes(data))


def test_impossible_time():
    data = bytearray(encode_all(TWO_RECORDS))
    struct.pack_into("<q", data, 28, 2 * 10**9)  # tv_nsec of the first record
    assert "impossible time" in bad(bytes(data))


def test_region_ending_before_start():
    assert "ending before it starts" in bad(encode_all([(1, [(1, [(8192, 4096, 0)])])]))


def test_time_going_backwards():
    records = [(2 * 10**9, [(1, [(0, 4096, 0)])]), (10**9, [(1, [(0, 4096, 0)])])]
    assert "back in time" in bad(encode_all(records))


def test_perf_script_broken_line():
    text = b"x 1 [0] 1.0: damon:damon_aggregated: target_id=1 nr_regions=1 garbage\n"
    assert "line 1" in bad(text)


def test_perf_script_only_interrupted_snapshots():
    text = (
        b"x 1 [0] 1.0: damon:damon_aggregated: target_id=1 nr_regions=2 0-10: 1\n"
        b"x 1 [0] 1.0: damon:damon_aggregated: target_id=2 nr_regions=2 0-10: 1\n"
    )
    assert "no complete snapshot" in bad(text)


def test_perf_script_snapshot_missing_events_dropped():
    line = "x 1 [0] {t}: damon:damon_aggregated: target_id=1 nr_regions=2 {r}: 1\n"
    text = "".join(
        line.format(t=t, r=r)
        for t, r in [(1.0, "0-10"), (1.0, "10-20"), (2.0, "0-10"), (3.0, "0-10"), (3.0, "10-20")]
    )
    snaps = parse_bytes(text.encode())
    assert snaps.end_ns.tolist() == [1_000_000_000, 3_000_000_000]
    assert [r.tolist() for r in snaps.regions(1)] == [[0, 10], [10, 20], [1, 1]]
    assert "miss events" in snaps.warnings[0]


def test_text_without_events():
    assert "not a DAMON record file" in bad(b"hello world\n" * 10)


def test_missing_file(tmp_path):
    with pytest.raises(RecordFormatError, match="no such file"):
        read_snapshots(tmp_path / "nope.data")


def test_directory(tmp_path):
    with pytest.raises(RecordFormatError, match="directory"):
        read_snapshots(tmp_path)


@settings(max_examples=100, deadline=None)
@given(record_lists(), st.data())
def test_any_prefix_reads_as_whole_records_or_fails_cleanly(records, data):
    """Cutting a file anywhere gives its complete records and a warning, or one clear error."""
    whole = encode_all(records)
    cut = data.draw(st.integers(recfmt.HEADER_SIZE, len(whole)))
    try:
        snaps = parse_bytes(whole[:cut])
    except RecordFormatError as err:
        assert "no complete record" in str(err) or "no records" in str(err) or (
            "no snapshots" in str(err))
        return
    got = as_lists(snaps)
    assert got == records[: len(got)]
    # A cut between two records leaves a valid, shorter file: nothing to warn about.
    boundaries = {len(encode_all(records[:k])) for k in range(1, len(records) + 1)}
    assert bool(snaps.warnings) == (cut not in boundaries)
