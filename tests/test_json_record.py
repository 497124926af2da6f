"""Upstream damo's record files (json_compressed, json): reading, writing, converting.

The upstream records below are built from the format as upstream damo's own
sources define it (damonitor/damo 3.x): the file is
``zlib.compress(json.dumps([record.to_kvpairs(raw=True) ...], indent=4))``
(`write_json_compressed` in src/_damo_records.py).  A record
(`DamonRecord.to_kvpairs`) has kdamond_idx, context_idx, intervals, scheme_idx,
target_id, scheme_filters, snapshots and data_source; its intervals
(`DamonIntervals.to_kvpairs`, src/_damon.py) sample_us, aggr_us and
ops_update_us as decimal strings (raw).  A snapshot (`DamonSnapshot.to_kvpairs`)
has start_time and end_time (ns, decimal strings), regions, total_bytes,
damos_stats and sample_interval_us.  Its regions are converted *without* raw
(`DamonRegion.to_kvpairs()`), so start and end are `format_nr` text with
thousands commas (src/_damo_fmt_str.py), nr_accesses is {samples, percent} as
numbers, age is {usec: `format_time_us_exact` text such as "1 m 30 s" or null,
aggr_intervals: `format_nr` text or null}, then probe_hits and
sz_filter_passed (`format_sz` text, "0 B").  Snapshot records of DAMOS tried
regions have target_id null; damon_stat's have kdamond_idx -1 and ages in usec
only.  A lone snapshot may be followed by a filler one (one region 0-0, samples
and aggr_intervals -1: `add_fake_snapshot_if_needed`).
"""

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from damo.errors import OutputError
from damo.records.json_record import JsonRecordWriter
from damo.records.reader import RecordFile, read_snapshots
from damo.records.writer import TargetRegions
from tests.conftest import REPO, measured, need_bpf, run_damo

ZIGZAG = REPO / "examples" / "zigzag-sim.data"
SIM_WORKLOAD = REPO / "examples" / "workloads" / "zigzag.toml"


# One region as damo's writer lays it out (the regular-expression path reads it).
FAST = (b'{"start": "4,096", "end": "8,192", "nr_accesses": {"samples": 3, "percent": null}, '
        b'"age": {"usec": null, "aggr_intervals": "2"}}')


def up_region(start, end, samples, age_aggr=None, age_usec=None, percent=None):
    """One region as upstream's DamonRegion.to_kvpairs() (not raw) writes it."""
    return {
        "start": f"{start:,}", "end": f"{end:,}",
        "nr_accesses": {"samples": samples, "percent": percent},
        "age": {"usec": age_usec,
                "aggr_intervals": None if age_aggr is None else f"{age_aggr:,}"},
        "probe_hits": [], "sz_filter_passed": "0 B",
    }


def up_snapshot(start_ns, end_ns, regions):
    total = sum(int(r["end"].replace(",", "")) - int(r["start"].replace(",", ""))
                for r in regions)
    return {"start_time": str(start_ns), "end_time": str(end_ns), "regions": regions,
            "total_bytes": str(total), "damos_stats": None, "sample_interval_us": None}


def up_record(snapshots, target_id, kd=None, ctx=None, scheme=None, intervals=True,
              source="unknown"):
    return {
        "kdamond_idx": kd, "context_idx": ctx,
        "intervals": {"sample_us": "5000", "aggr_us": "100000", "ops_update_us": "1000000",
                      "intervals_goal": {"access_bp": "0", "aggrs": "0",
                                         "min_sample_us": "0", "max_sample_us": "0"}}
        if intervals else None,
        "scheme_idx": scheme, "target_id": target_id, "scheme_filters": [],
        "snapshots": snapshots, "data_source": source,
    }


def up_file(records, compressed=True) -> bytes:
    text = json.dumps(records, indent=4).encode()
    return zlib.compress(text) if compressed else text


BIG = 18446623435582458880  # a kernel target id, as damon_aggregated reports it
A0 = 140737488289792


def traced_records():
    """Two targets recorded from the tracepoint: ages in aggregation intervals."""
    t = 82877_315633000
    one = [up_snapshot(t + (k - 1) * 10**8, t + k * 10**8, [
        up_region(A0, A0 + 4096 * 10, k, age_aggr=k * 1000),
        up_region(A0 + 4096 * 10, A0 + 4096 * 30, 0, age_aggr=7)]) for k in range(3)]
    two = [up_snapshot(t + (k - 1) * 10**8, t + k * 10**8, [
        up_region(4096, 8192, 20 - k, age_aggr=k)]) for k in range(3)]
    return [up_record(one, BIG), up_record(two, BIG + 4096)]


def several_records():
    """Several kdamonds and contexts (target ids repeat), DAMOS and damon_stat snapshots."""
    t = 5_000_000_000
    return [
        up_record([up_snapshot(t - 10**8, t, [up_region(0, 4096, 3, age_aggr=2)])], 0, 0, 0),
        up_record([up_snapshot(t - 10**8, t, [up_region(0, 8192, 4, age_aggr=5)])], 0, 1, 0),
        up_record([up_snapshot(t - 10**8, t, [
            up_region(4096, 12288, None, age_aggr=1, percent=50)])], 1, 1, 1),
        up_record([up_snapshot(t - 10**8, t, [
            up_region(0, 2**20, 0, age_usec="1 m 30 s"),
            up_region(2**20, 2**21, 10, age_usec="200 ms")])], 0, -1, 0, source="damon_stat"),
        up_record([up_snapshot(t - 10**8, t, [up_region(0, 4096, 1, age_aggr=1)]),
                   up_snapshot(t, t + 10**8, [up_region(0, 0, -1, age_aggr=-1)])],
                  None, 0, 0, scheme=0),
    ]


@pytest.fixture
def traced(tmp_path) -> Path:
    path = tmp_path / "traced.data"
    path.write_bytes(up_file(traced_records()))
    return path


def test_reads_upstream_json_compressed(traced):
    record = RecordFile(traced)
    assert record.kind == "json_compressed"
    snaps = read_snapshots(traced)
    assert snaps.target_ids() == [BIG, BIG + 4096]
    # Snapshots of both targets ending together form one record, as in recfmt.
    assert snaps.record.tolist() == [0, 0, 1, 1, 2, 2]
    idx = snaps.of_target(BIG)
    start, end, nr = snaps.regions(int(idx[2]))
    assert start.tolist() == [A0, A0 + 40960] and end.tolist() == [A0 + 40960, A0 + 122880]
    assert nr.tolist() == [2, 0]
    lo = snaps.offsets[idx[2]]
    assert snaps.age[lo : lo + 2].tolist() == [2000, 7]
    assert snaps.end_ns[idx].tolist() == [82877_315633000 + k * 10**8 for k in range(3)]


def test_reads_upstream_json_text_alike(traced, tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_bytes(up_file(traced_records(), compressed=False))
    assert RecordFile(plain).kind == "json"
    a, b = read_snapshots(traced), read_snapshots(plain)
    for field in ("end_ns", "target_id", "record", "offsets", "start", "end", "nr_accesses",
                  "age"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_several_kdamonds_contexts_and_targets(tmp_path):
    path = tmp_path / "several.data"
    path.write_bytes(up_file(several_records()))
    snaps = read_snapshots(path)
    # target_id 0 repeats across kdamonds and one is null: records are numbered instead.
    assert snaps.target_ids() == [0, 1, 2, 3, 4]
    assert snaps.nr_regions.tolist() == [1, 1, 1, 2, 1]  # the filler snapshot is dropped
    assert snaps.nr_accesses.tolist() == [3, 4, 10, 0, 10, 1]  # 50% of 20 samples: 10
    # damon_stat's ages in usec, in aggregation intervals of 100 ms.
    assert snaps.age.tolist() == [2, 5, 1, 900, 2, 1]


def test_fast_and_general_parsing_agree(tmp_path):
    """The regular-expression path and json.loads' give the same columns, or it is not taken."""
    from damo.records import json_record

    stat_only = [r for r in several_records() if r["data_source"] == "damon_stat"]
    for records in (traced_records(), several_records(), stat_only):
        text = up_file(records, compressed=False)
        fast = json_record._Fast.decode(text)
        general = json_record.JsonRecords(json.loads(text, object_hook=json_record._hook),
                                          "json").snapshots
        if fast is None:
            continue
        got = json_record.JsonRecords(fast, "json").snapshots
        for field in ("end_ns", "target_id", "record", "offsets", "start", "end",
                      "nr_accesses", "age"):
            assert np.array_equal(getattr(got, field), getattr(general, field)), field
    # Upstream's layout and damo's take the fast path; an age in usec only does not.
    assert json_record._Fast.decode(up_file(traced_records(), compressed=False)) is not None
    assert json_record._Fast.decode(up_file(stat_only, compressed=False)) is None
    assert read_snapshots_of(tmp_path, stat_only).age.tolist() == [900, 2]


def read_snapshots_of(tmp_path, records):
    path = tmp_path / "r.data"
    path.write_bytes(up_file(records))
    return read_snapshots(path)


@pytest.mark.parametrize("report", [["raw"], ["wss"], ["nr_regions"], ["heats"],
                                    ["heats", "--guide"], ["hot"], ["raw", "--json"]])
def test_every_report_reads_it(traced, report):
    result = run_damo("report", *report, "-i", str(traced))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout
    assert b"error" not in result.stderr  # nr_regions warns of too few snapshots


def test_raw_report_shows_the_regions(traced):
    out = run_damo("report", "raw", "-i", str(traced)).stdout.decode()
    assert f"target_id:  {BIG}\nnr_regions:  2\n" in out
    assert f"{A0:012x}-{A0 + 40960:012x}(     40960):\t2\n" in out


def round_trip(src: Path, tmp_path: Path, via: list[str]) -> Path:
    current = src
    for k, fmt in enumerate([*via, "recfmt"]):
        out = tmp_path / f"step{k}.{fmt}"
        result = run_damo("convert", str(current), str(out), "--format", fmt)
        assert result.returncode == 0, result.stderr.decode()
        current = out
    return current


@pytest.mark.parametrize("via", [["json_compressed"], ["json", "json_compressed"]])
def test_round_trip_zigzag_is_byte_identical(tmp_path, via):
    back = round_trip(ZIGZAG, tmp_path, via)
    assert back.read_bytes() == ZIGZAG.read_bytes()


def test_round_trip_conformance_is_byte_identical(conformance_dir, tmp_path):
    src = conformance_dir / "damon.data"
    back = round_trip(src, tmp_path, ["json_compressed"])
    assert back.read_bytes() == src.read_bytes()


def test_perf_script_converts_like_its_reports(conformance_dir, tmp_path):
    src = conformance_dir / "perf.data.script"
    out = tmp_path / "perf.jsonc"
    assert run_damo("convert", str(src), str(out)).returncode == 0
    want = run_damo("report", "wss", "-i", str(src)).stdout
    assert want and run_damo("report", "wss", "-i", str(out)).stdout == want


def test_ages_survive_json_and_recfmt_says_it_drops_them(tmp_path):
    src = tmp_path / "several.data"
    src.write_bytes(up_file(several_records()))
    out = tmp_path / "again.json"
    assert run_damo("convert", str(src), str(out), "-f", "json").returncode == 0
    a, b = read_snapshots(src), read_snapshots(out)
    assert b.age.tolist() == a.age.tolist()
    assert b.nr_accesses.tolist() == a.nr_accesses.tolist()
    doc = json.loads(out.read_text())
    assert doc[0]["snapshots"][0]["regions"][0]["age"]["aggr_intervals"] == "2"
    assert doc[0]["intervals"]["aggr_us"] == "100000"
    result = run_damo("convert", str(src), str(tmp_path / "r.data"), "-f", "recfmt")
    assert result.returncode == 0
    assert b"recfmt holds no region age" in result.stderr


def test_written_json_matches_upstream_reading_rules(tmp_path):
    """What damo writes reads back under upstream's rules: the keys its from_kvpairs needs."""
    out = tmp_path / "z.json"
    assert run_damo("convert", str(ZIGZAG), str(out), "-f", "json").returncode == 0
    doc = json.loads(out.read_text())
    for record in doc:
        assert {"kdamond_idx", "context_idx", "intervals", "scheme_idx", "target_id",
                "snapshots"} <= record.keys()
        assert {"sample_us", "aggr_us", "ops_update_us"} <= record["intervals"].keys()
        prev_end = None
        for snap in record["snapshots"]:
            assert int(snap["start_time"]) < int(snap["end_time"])
            assert prev_end is None or int(snap["start_time"]) == prev_end
            prev_end = int(snap["end_time"])
            region = snap["regions"][0]
            assert {"start", "end", "nr_accesses", "age"} <= region.keys()
            assert "," in region["start"]
            assert {"usec", "aggr_intervals"} <= region["age"].keys()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], b"json_compressed: the zlib stream is corrupt or cut off"),
    (lambda b: zlib.compress(zlib.decompress(b)[:-40]), b"json_compressed: not valid JSON"),
    (lambda b: zlib.compress(b'[{"snapshots": [{"end_time": "1", "regions": [{"start": 1}]}]}]'),
     b"has a region without start, end and nr_accesses"),
    (lambda b: zlib.compress(b'[{"snapshots": [{"end_time": "x", "regions": []}]}]'),
     b"has no valid end_time"),
    (lambda b: zlib.compress(b"[]"), b"the file holds no snapshots"),
    (lambda b: b'[{"snapshots": [{"end_time": "1", "regions": [{"start": "1", "end": "0", '
               b'"nr_accesses": {"samples": 1}}]}]}]', b"is not a valid region"),
    # Found by bench/fuzz: each was a traceback.
    (lambda b: b'[{"snapshots": 5}, {"snapshots": [{"end_time": "1", "regions": [' + FAST +
               b']}]}]',
     b"record 0 has no list of snapshots"),
    (lambda b: b'[{"snapshots": [{"end_time": 1e400, "regions": [' + FAST + b']}]}]',
     b"has no valid end_time"),
    (lambda b: b'[{"snapshots": [{"end_time": "99999999999999999999", "regions": []}]}]',
     b"has no valid end_time"),
    (lambda b: b'[{"intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1}, '
               b'"snapshots": [{"end_time": "1", "regions": [{"start": 1, "end": 2, '
               b'"nr_accesses": {"samples": null, "percent": 1' + b"0" * 400 + b'}}]}]}]',
     b"is not a valid region"),
    (lambda b: b'[{"intervals": {"sample_us": 0, "aggr_us": 0, "ops_update_us": 1}, '
               b'"snapshots": [{"end_time": "1", "regions": [{"start": 1, "end": 2, '
               b'"nr_accesses": {"samples": null, "percent": 5}}]}]}]',
     b"has no nr_accesses samples"),
])
def test_bad_json_records_are_one_line_errors(traced, tmp_path, damage, message):
    bad = tmp_path / "bad.data"
    bad.write_bytes(damage(traced.read_bytes()))
    result = run_damo("report", "raw", "-i", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith(b"damo: error: " + str(bad).encode())
    assert message in result.stderr and result.stderr.count(b"\n") == 1
    assert not result.stdout


def test_an_order_number_too_large_is_no_order(tmp_path):
    """damo_order beyond 64 bits (found by bench/fuzz: a traceback) orders nothing: the
    snapshots are read in time order."""
    odd = tmp_path / "odd.data"
    odd.write_bytes(b'[{"target_id": 1, "snapshots": [{"end_time": "2", "damo_order": [1' +
                    b"0" * 30 + b', 0], "regions": [' + FAST + b']}, {"end_time": "1", '
                    b'"damo_order": [0, 0], "regions": [' + FAST + b']}]}]')
    snaps = read_snapshots(str(odd))
    assert snaps.end_ns.tolist() == [1, 2]


def test_convert_keeps_an_existing_output_and_never_half_writes(traced, tmp_path):
    out = tmp_path / "out.data"
    out.write_bytes(b"precious")
    assert run_damo("convert", str(traced), str(out), "-f", "recfmt").returncode == 0
    assert (tmp_path / "out.data.old").read_bytes() == b"precious"
    assert os.stat(out).st_mode & 0o777 == 0o600
    before = out.read_bytes()
    bad = tmp_path / "bad.data"
    bad.write_bytes(traced.read_bytes()[:100])
    for fmt in ("recfmt", "json"):
        result = run_damo("convert", str(bad), str(out), "-f", fmt)
        assert result.returncode == 1 and result.stderr.count(b"\n") == 1
        assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.data", "out.data", "out.data.old", "traced.data"]
    same = run_damo("convert", str(out), str(out))
    assert same.returncode == 2 and b"are the same file" in same.stderr
    fmt = run_damo("convert", str(traced), str(tmp_path / "x"), "-f", "yaml")
    assert fmt.returncode == 2 and b"--format" in fmt.stderr


def test_convert_copies_the_sidecar(tmp_path):
    out = tmp_path / "z.jsonc"
    assert run_damo("convert", str(ZIGZAG), str(out)).returncode == 0
    assert (tmp_path / "z.jsonc.meta").read_bytes() == Path(f"{ZIGZAG}.meta").read_bytes()


def regions(target_id, n, base=0):
    start = np.arange(n, dtype=np.uint64) * 4096 + base
    return TargetRegions(target_id, start, start + 4096, np.arange(n, dtype=np.uint32))


def test_writer_creates_like_record_writer(tmp_path):
    path = tmp_path / "w.json"
    (tmp_path / "elsewhere").write_text("keep")
    path.symlink_to(tmp_path / "elsewhere")
    with JsonRecordWriter(str(path), "json", flush_seconds=None) as w:
        assert json.loads(path.read_text()) == []  # valid from the start
        w.write(10**9, [regions(1, 3)])
        w.write(2 * 10**9, [regions(1, 2), regions(2, 1)])
    assert (tmp_path / "elsewhere").read_text() == "keep"  # the symlink was not followed
    assert os.path.islink(tmp_path / "w.json.old")
    assert os.stat(path).st_mode & 0o777 == 0o600
    snaps = read_snapshots(path)
    assert snaps.record.tolist() == [0, 1, 1] and snaps.target_ids() == [1, 2]
    assert w.nr_records == 2 and w.nr_rewrites == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "w.json", "w.json.old"]


def test_writer_rewrites_at_intervals_and_stays_valid(tmp_path):
    path = tmp_path / "w.jsonc"
    w = JsonRecordWriter(str(path), "json_compressed", flush_seconds=0.0)
    for k in range(5):
        w.write((k + 1) * 10**8, [regions(7, 4 + k)])
        # Every moment: a whole file with every record written so far.
        assert len(read_snapshots(path)) == k + 1
    engine = regions(7, 2)
    w.write(10**9, [engine])
    engine.nr_accesses[:] = 99  # the engine reuses its arrays: the writer kept a copy
    w.close()
    assert read_snapshots(path).nr_accesses[-2:].tolist() == [0, 1]
    assert w.nr_rewrites == 6


def test_writer_notices_a_removed_file(tmp_path):
    path = tmp_path / "w.json"
    w = JsonRecordWriter(str(path), "json", flush_seconds=0.0)
    w.write(1, [regions(1, 1)])
    path.unlink()
    with pytest.raises(OutputError, match="the file was removed"):
        w.write(2, [regions(1, 1)])
    assert w.failed
    w.close()
    assert not path.exists() and list(tmp_path.iterdir()) == []


def sim_record(tmp_path, name, *extra):
    out = tmp_path / name
    result = run_damo("record", "--ops", "sim", "--seed", "5", str(SIM_WORKLOAD), "-o", str(out),
                      *extra)
    assert result.returncode == 0, result.stderr.decode()
    return out, result


@pytest.mark.parametrize("fmt", ["json_compressed", "json"])
def test_record_format_holds_the_same_records(tmp_path, fmt):
    recfmt, _ = sim_record(tmp_path, "a.data")
    other, result = sim_record(tmp_path, "b.data", "--format", fmt)
    assert RecordFile(other).kind == fmt
    assert b"400 records" in result.stderr
    back = tmp_path / "back.data"
    assert run_damo("convert", str(other), str(back), "-f", "recfmt").returncode == 0
    assert back.read_bytes() == recfmt.read_bytes()
    doc = json.loads(other.read_bytes() if fmt == "json" else zlib.decompress(other.read_bytes()))
    assert doc[0]["intervals"] == {"sample_us": "5000", "aggr_us": "100000",
                                   "ops_update_us": "1000000"}


def test_record_snapshot_delay_count(tmp_path):
    out, result = sim_record(tmp_path, "s.data", "--snapshot", "2", "5")
    assert b"5 records" in result.stderr and b"ended by snapshots taken" in result.stderr
    snaps = read_snapshots(out)
    assert len(snaps) == 5
    ends = snaps.end_ns - (snaps.end_ns[0] - 2 * 10**9)
    assert ends.tolist() == [k * 2 * 10**9 for k in range(1, 6)]
    out, _ = sim_record(tmp_path, "c.data", "--snapshot", "0", "3", "--format", "json")
    assert np.diff(read_snapshots(out).end_ns).tolist() == [10**8, 10**8]
    bad = run_damo("record", "--ops", "sim", str(SIM_WORKLOAD), "-o", str(tmp_path / "x"),
                   "--snapshot", "1", "0")
    assert bad.returncode == 2 and b"--snapshot" in bad.stderr
    bad = run_damo("record", "--ops", "sim", str(SIM_WORKLOAD), "-o", str(tmp_path / "y"),
                   "--format", "xml")
    assert bad.returncode == 2 and b"--format" in bad.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_json_record_of_a_killed_run_is_valid(tmp_path):
    """SIGKILL: the file is the last whole rewrite (at most FLUSH_SECONDS old)."""
    need_bpf()
    out = tmp_path / "k.jsonc"
    target = subprocess.Popen(["sleep", "120"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "damo.cli", "record", "--ops", "vaddr", "--format",
         "json_compressed", "-o", str(out), str(target.pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if out.exists() and out.stat().st_size > 20:  # the first rewrite with records
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        for p in (proc, target):
            if p.poll() is None:
                p.kill()
                p.wait()
    snaps = read_snapshots(out)
    # The first rewrite holds FLUSH_SECONDS (5 s) of aggregations: ~50 at 100 ms, 6 if a
    # budget had gone to 8x (an idle target costs too little for that: noted for bench/spread).
    assert measured("json_killed_run_snapshots", len(snaps)) >= 10
    temps = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) <= 1  # a kill in the middle of a rewrite leaves its temporary file


def test_outputs_to_a_device_or_fifo_are_written_not_replaced(tmp_path):
    """`-o /dev/null`: renaming the device away (to keep it as .old) would break the machine."""
    import stat
    import threading

    if os.geteuid() != 0:
        pytest.skip("needs root to make a device node")
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    for fmt in ("recfmt", "json", "json_compressed"):
        assert run_damo("convert", str(ZIGZAG), str(null), "-f", fmt).returncode == 0
        _, result = sim_record(tmp_path, "null", "--format", fmt, "--duration", "1")
        assert stat.S_ISCHR(os.lstat(null).st_mode), fmt
    assert not (tmp_path / "null.old").exists()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert run_damo("convert", str(ZIGZAG), str(fifo), "-f", "json").returncode == 0
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    back = tmp_path / "back.json"
    back.write_bytes(got[0])
    assert len(read_snapshots(back)) == len(read_snapshots(ZIGZAG))


@pytest.mark.parametrize("piece", [7, 10, 11, 64, 1000])
def test_text_read_in_pieces_reads_the_same(piece):
    """The fast path reads decompressed text piece by piece: cuts anywhere change nothing."""
    from damo.records import json_record

    for records in (traced_records(), several_records()):
        for compressed in (True, False):
            kind = "json_compressed" if compressed else "json"
            data = up_file(records, compressed)
            whole = json_record.JsonRecords(json_record.decode(data, kind, 1 << 30), kind)
            if records[0]["target_id"] == BIG:  # upstream's own layout: the fast path
                assert json_record._Fast.decode_pieces(
                    json_record._pieces(data, kind, piece)) is not None
            cut = json_record.JsonRecords(json_record.decode(data, kind, piece), kind)
            for field in ("end_ns", "target_id", "record", "offsets", "start", "end",
                          "nr_accesses", "age"):
                assert np.array_equal(getattr(cut.snapshots, field),
                                      getattr(whole.snapshots, field)), (field, piece)
