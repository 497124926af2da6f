"""report hot: ranges, their figures and order; the JSON against docs/reports.md; bad options;
a real program recorded and its hot arrays named."""

import json

import numpy as np
import pytest
from conftest import need_bpf, run_damo
from doc_schema import check, documented_fields

from damo.records.snapshots import from_lists
from damo.records.writer import RecordWriter, TargetRegions
from damo.reports import hot

HEADING = "### `report hot --json`"
S = 1_000_000_000


def test_ranges_merge_alike_neighbours_and_keep_figures():
    # 10 snapshots of 1 s: [0, 100) always at 10, [100, 200) at 10 then 0 (split by a
    # region boundary only in some snapshots), [200, 300) hot in the last 3 at 20.
    snaps = []
    for k in range(10):
        regions = [(0, 50, 10), (50, 100, 10)] if k % 2 else [(0, 100, 10)]
        regions.append((100, 200, 10 if k < 5 else 0))
        regions.append((200, 300, 20 if k >= 7 else 0))
        snaps.append(((k + 1) * S, 1, regions))
    ranges = hot.target_ranges(from_lists(snaps), 1, None, None, 1)
    got = {(r.start, r.end): r for r in ranges}
    assert set(got) == {(0, 100), (100, 200), (200, 300)}
    assert got[(0, 100)].mean_nr_accesses == pytest.approx(10)
    assert got[(0, 100)].hot_ns == 10 * S
    assert got[(100, 200)].mean_nr_accesses == pytest.approx(5)
    assert (got[(100, 200)].first_hot_ns, got[(100, 200)].last_hot_ns) == (0, 5 * S)
    r = got[(200, 300)]
    assert (r.peak_nr_accesses, r.hot_ns, r.first_hot_ns, r.last_hot_ns) == (20, 3 * S, 7 * S,
                                                                               10 * S)
    assert r.when_ns == pytest.approx(8.5 * S)
    # Shares of size x nr_accesses x time: 1000, 500 and 600 (x 100 x 1 s).
    assert [got[k].access_share for k in sorted(got)] == pytest.approx([10 / 21, 5 / 21, 6 / 21])
    by = {o: [(x.start, x.end) for x in hot.hot_ranges(from_lists(snaps), [1], o, None,
                                                         None, 1)] for o in hot.ORDERS}
    assert by["heat"] == [(0, 100), (200, 300), (100, 200)]
    assert by["time"] == [(0, 100), (100, 200), (200, 300)]
    assert by["accesses"] == [(0, 100), (200, 300), (100, 200)]
    # A time range: only the last 3 s.
    late = hot.hot_ranges(from_lists(snaps), [1], "heat", 7 * S, 10 * S, 1)
    assert (late[0].start, late[0].mean_nr_accesses) == (200, pytest.approx(20))
    # Mapping boundaries cut ranges even where the heat is alike.
    cut = hot.target_ranges(from_lists(snaps), 1, None, None, 1, np.array([40], np.uint64))
    assert (0, 40) in {(x.start, x.end) for x in cut}


def write_record(path, with_meta=True):
    from damo.records.meta import MetaWriter

    with RecordWriter(str(path)) as w:
        for k in range(20):
            start = np.array([0x10000, 0x30000], dtype=np.uint64)
            w.write((k + 1) * 100_000_000, [TargetRegions(
                42, start, start + np.uint64(0x10000), np.array([15, k % 2], dtype=np.uint32))])
    if with_meta:
        with MetaWriter(str(path)) as meta:
            meta.write("start", time_ns=0, attrs={"sample_us": 5000, "aggr_us": 100000},
                       targets=[{"id": 42, "pid": 42, "cmdline": ["prog", "-x"]}])
            meta.write("maps", time_ns=0, target_id=42, maps=[
                [0x10000, 0x20000, "rw-p", 0, "[heap]", "00:00", 0],
                [0x30000, 0x40000, "r--p", 0x2000, "/nonexistent/model.bin", "fe:00", 12]])


def test_json_follows_the_documented_schema(tmp_path):
    write_record(tmp_path / "damon.data")
    proc = run_damo("report", "hot", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    seen = check(doc, HEADING)
    assert (doc["report"], doc["version"], doc["by"]) == ("hot", 1, "accesses")
    first, second = doc["ranges"]
    assert (first["start"], first["end"], first["peak_nr_accesses"]) == (0x10000, 0x20000, 15)
    assert first["annotation"]["label"] == "[heap]"
    part = second["annotation"]["parts"][0]
    assert (part["mapping"], part["file_offset"]) == ("/nonexistent/model.bin", 0x2000)
    assert second["annotation"]["notes"][0].startswith("file not readable now")
    assert doc["targets"][0]["cmdline"] == ["prog", "-x"]
    # Everything documented shows up in this output except what only ELF files give.
    missing = set(documented_fields(HEADING)) - seen
    assert missing <= {"ranges[].annotation.parts[].sections[].name",
                       "ranges[].annotation.parts[].sections[].size",
                       "ranges[].annotation.parts[].symbols[].name",
                       "ranges[].annotation.parts[].symbols[].size"}, missing


def test_without_sidecar_and_as_text(tmp_path):
    write_record(tmp_path / "damon.data", with_meta=False)
    doc = json.loads(run_damo("report", "hot", "--json", cwd=tmp_path).stdout)
    check(doc, HEADING)
    assert all(r["annotation"] is None for r in doc["ranges"])
    text = run_damo("report", "hot", "--by", "size", "--top", "1", cwd=tmp_path)
    assert text.returncode == 0
    lines = text.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["#", "target", "address"]
    assert "0x10000-0x20000" in lines[1] or "0x30000-0x40000" in lines[1]
    assert "ranges are not named" in lines[-1]


@pytest.mark.parametrize("args, message", [
    (["--by", "heat2"], "--by: expected one of heat, size, time, accesses"),
    (["--top", "0"], "--top: must be positive"),
    (["--tid", "7"], "no target 7 in the record (targets: 42)"),
    (["--tmin", "5", "--tmax", "5"], "--tmin 5 is not before --tmax 5"),
    (["-i", "missing.data"], "missing.data: no such file"),
])
def test_bad_options_are_one_line(tmp_path, args, message):
    write_record(tmp_path / "damon.data")
    proc = run_damo("report", "hot", *args, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode in (1, 2) and message in err and len(err.splitlines()) == 1, err
    assert proc.stdout == b""


def test_corrupt_sidecar_is_a_warning(tmp_path):
    write_record(tmp_path / "damon.data")
    (tmp_path / "damon.data.meta").write_bytes(b"\x01\x02")
    proc = run_damo("report", "hot", cwd=tmp_path)
    assert proc.returncode == 0
    assert "ranges are not annotated" in proc.stderr.decode()


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.slow
def test_recorded_program_shows_its_arrays(tmp_path):
    """examples/hotcold recorded for real: hot_array tops the list, named; footprints written;
    the heatmap image names it too."""
    need_bpf()
    from elf_target import compile_hotcold

    from damo.records.meta import read_meta

    binary = compile_hotcold(tmp_path / "hotcold")
    rec = run_damo("record", "-o", "hc.data", f"{binary} 9", cwd=tmp_path)
    assert rec.returncode == 0, rec.stderr.decode()
    doc = json.loads(run_damo("report", "hot", "-i", "hc.data", "--json", "--top", "40",
                              cwd=tmp_path).stdout)
    check(doc, HEADING)
    labels = [r["annotation"]["label"] for r in doc["ranges"]]
    big = [r for r in doc["ranges"] if r["size"] >= 32 << 20]
    assert big and big[0]["annotation"]["label"].startswith("hotcold .bss hot_array"), labels
    assert any(lbl.startswith("hotcold .bss phase_array") for lbl in labels), labels
    # The heap buffer is written in the last third of the run only (6-9 s).
    heap = max((r for r in doc["ranges"] if r["annotation"]["label"] == "[heap]"),
               key=lambda r: r["size"])
    assert heap["annotation"]["time_ns"] - doc["targets"][0]["start_ns"] > 5 * S
    assert heap["hot_ns"] < 5 * S
    # One footprints message per record, RSS at least the 64 MiB arrays touched.
    meta = read_meta(str(tmp_path / "hc.data"))
    nr_records = next(m for m in meta if m["type"] == "end")["nr_records"]
    footprints = [m for m in meta if m["type"] == "footprints"]
    assert len(footprints) == nr_records
    assert max(m["targets"][0][2] for m in footprints) >= 128 << 20
    svg = tmp_path / "h.svg"
    proc = run_damo("report", "heats", "-i", "hc.data", "--heatmap", str(svg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    text = svg.read_text()
    assert "hotcold hot_array" in text and "hotcold phase_array" in text


def test_terminal_table_keeps_bracketed_names(capsys, monkeypatch):
    """On a terminal the table is rich's; [heap] and [anon] are names, not style tags."""
    monkeypatch.setenv("COLUMNS", "160")
    cells = [["1", "42", "0x1000-0x2000", "4 KiB", "50.0%", "3.00", "5", "1.0", "0.0-1.0",
              "[heap]"], ["2", "42", "0x3000-0x4000", "4 KiB", "50.0%", "3.00", "5", "1.0",
                          "0.0-1.0", "libc.so.6 .text [stripped: exported symbols only]"]]
    hot.print_rich(cells, "damo report hot: x", "footer [anon]")
    out = capsys.readouterr().out
    assert "[heap]" in out and "[stripped: exported symbols only]" in out
    assert "footer [anon]" in out and "┃ what" in out


def test_regions_taking_turns_stay_apart():
    """Same mean and hot time over the run, but one is hot while the other idles (zigzag)."""
    snaps = []
    for k in range(40):
        a_hot = k // 10 % 2 == 0
        snaps.append(((k + 1) * S, 1, [(0, 100, 20 if a_hot else 0),
                                       (100, 200, 0 if a_hot else 20)]))
    ranges = hot.target_ranges(from_lists(snaps), 1, None, None, 1)
    assert [(r.start, r.end) for r in ranges] == [(0, 100), (100, 200)]
    assert ranges[0].mean_nr_accesses == pytest.approx(ranges[1].mean_nr_accesses)
