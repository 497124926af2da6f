"""Reports over a file read in chunks are byte for byte the reports over the whole file.

Every report is run on the same file read as one chunk and read in chunks of
many sizes (down to a few records, so that records, snapshots and, in
perf-script text, lines fall across chunk boundaries), in-process; then the
memory a report needs on a large file is measured in a subprocess.
"""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import CONFORMANCE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from damo.errors import UsageError
from damo.records.reader import RecordFile, read_snapshots
from damo.records.writer import RecordWriter, TargetRegions
from damo.reports import access, adjust, dist, heats, nr_regions, raw, validate, wss

WHOLE = 1 << 40  # a chunk size no test file reaches
CHUNK_SIZES = (64, 200, 999, 4096, 65536)


def text_of(pieces) -> bytes:
    return b"".join(p if isinstance(p, bytes) else p.encode() for p in pieces)


def reports(path, chunk_bytes, tmp_path) -> dict[str, bytes]:
    """Every report of the file at `path`, read in chunks of `chunk_bytes`."""
    src = RecordFile(path, chunk_bytes, warn=False)
    out = {
        "raw": text_of(raw.raw_text(src.chunks())),
        "raw_json": text_of(raw.raw_json(src.chunks())),
        "nr_regions": dist.table("# regions", nr_regions.per_target(src), [0, 25, 50, 100],
                                 True).encode(),
        "wss": dist.table("wss", wss.per_target(src, 1, 1, 1, 20), list(range(0, 101, 5)),
                          False).encode(),
        "wss_work_time": dist.table("wss", wss.per_target(src, 1, 1, 300, 2), [0, 50, 100],
                                    True).encode(),
        "wss_json": dist.table_json("wss", wss.per_target(src, 2, 4096, 1, 0), [10, 90],
                                    True).encode(),
    }
    # Ages derived across chunk boundaries (no sidecar): the same however it is chunked.
    out["access"] = text_of(access.text_report(src, None, access.Options(all_snapshots=True)))
    out["access_json"] = json.dumps(access.json_report(
        src, "x", access.Options(style="recency-percentiles"), "recency-percentiles")).encode()
    guides = heats.guides(src)
    out["guide"] = heats.guide_text(guides).encode()
    out["guide_json"] = heats.guide_json(guides).encode()
    for g in guides:
        try:
            a = heats.area(src, target_id=g.target_id, resolution=(17, 23), all_guides=guides)
            out[f"heats {g.target_id}"] = heats.heat_matrix(src, a, g.span).tobytes()
            # The default area, from the guide's totals and from a pass over a time range.
            later = (g.start_ns + (g.end_ns - g.start_ns) // 3, g.end_ns)
            out[f"busiest {g.target_id}"] = repr((
                heats.busiest_region(src, g, g.start_ns, g.end_ns),
                heats.busiest_region(src, g, *later))).encode()
        except UsageError as err:  # a span too short for the resolution
            out[f"heats {g.target_id}"] = str(err).encode()
    try:
        a = heats.area(src, all_guides=guides)
        out["heats_text"] = text_of(heats.heats_text(heats.heat_matrix(src, a), a))
    except UsageError as err:
        out["heats_text"] = str(err).encode()
    adjusted = tmp_path / f"adjusted-{chunk_bytes}.data"
    adjust.adjust(src, 250_000, 3, str(adjusted))
    out["adjust"] = adjusted.read_bytes()
    limits = validate.Limits(1000, 100_000, 2, 30)
    out["validate"] = validate.as_json(validate.validate(str(path), limits, chunk_bytes)).encode()
    return out


def assert_chunking_changes_nothing(path, tmp_path, sizes=CHUNK_SIZES) -> None:
    whole = reports(path, WHOLE, tmp_path)
    for size in sizes:
        got = reports(path, size, tmp_path)
        for name, expected in whole.items():
            assert got[name] == expected, f"{name} differs with chunks of {size} bytes"


def regions(rng, base: int, n: int):
    sizes = rng.integers(1, 64, n).astype(np.uint64) * np.uint64(4096)
    gaps = rng.integers(0, 3, n).astype(np.uint64) * np.uint64(4096)
    ends = np.uint64(base) + np.cumsum(sizes + gaps)
    return ends - sizes, ends, rng.choice(np.array([0, 0, 1, 5, 20], np.uint32), n)


def write_multi_target(path, nr_records: int, per_record: bool, seed: int = 1) -> None:
    """Three targets, kernel style (one record holds all) or one record per target."""
    rng = np.random.default_rng(seed)
    bases = {11: 0x7F0000000000, 22: 0x550000000000, 33: 0x400000}
    t = 10**12
    with RecordWriter(str(path)) as w:
        for _ in range(nr_records):
            t += 100_000_000
            targets = [TargetRegions(tid, *regions(rng, base, int(rng.integers(1, 40))))
                       for tid, base in bases.items()]
            if per_record:
                w.write(t, targets)
            else:
                for j, target in enumerate(targets):
                    w.write(t + j * 1000, [target])


@pytest.mark.parametrize("name", ["damon.data", "perf.data.script"])
def test_conformance_files(conformance_dir, name, tmp_path):
    assert_chunking_changes_nothing(conformance_dir / name, tmp_path)


@pytest.mark.parametrize("per_record", [True, False], ids=["kernel-style", "record-per-target"])
def test_multi_target_files(tmp_path, per_record):
    path = tmp_path / "damon.data"
    write_multi_target(path, 80, per_record)
    assert_chunking_changes_nothing(path, tmp_path)


def test_perf_script_text_in_chunks(tmp_path):
    """perf-script text of several targets: lines and snapshots cut by chunk boundaries."""
    snaps = read_snapshots(CONFORMANCE / "perf.data.script") if (
        CONFORMANCE / "perf.data.script").is_file() else None
    if snaps is None:
        pytest.skip("conformance fixtures not found")
    lines = []
    for i in range(len(snaps)):
        for tid in (int(snaps.target_id[i]), 7):
            start, end, nr = snaps.regions(i)
            t = int(snaps.end_ns[i]) + (tid == 7) * 1000
            for s, e, n in zip(start.tolist(), end.tolist(), nr.tolist(), strict=True):
                lines.append(f"  kdamond.0  4452 [000] {t // 10**9}.{t % 10**9:09d}: "
                             f"damon:damon_aggregated: target_id={tid} nr_regions={len(start)} "
                             f"{s}-{e}: {n} 3\n")
    path = tmp_path / "perf.txt"
    path.write_text("".join(lines[:-2]))  # the last snapshot cut short
    assert_chunking_changes_nothing(path, tmp_path, sizes=(300, 4096, 50_000))


@st.composite
def record_files(draw):
    nr_targets = draw(st.integers(1, 3))
    records = []
    t = 10**9
    for _ in range(draw(st.integers(1, 25))):
        t += draw(st.integers(1, 3)) * 50_000_000
        targets = []
        for tid in range(nr_targets):
            if draw(st.booleans()) or tid == 0:
                cuts = sorted(draw(st.sets(st.integers(0, 200), min_size=2, max_size=9)))
                targets.append((tid * 1000 + 5, [
                    (c0 * 4096, c1 * 4096, draw(st.integers(0, 25)))
                    for c0, c1 in zip(cuts, cuts[1:], strict=False)]))
        records.append((t, targets))
    return records, draw(st.booleans())


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record_files(), st.integers(40, 3000))
def test_any_file_any_chunk_size(tmp_path, case, chunk_bytes):
    records, per_record = case
    path = tmp_path / "damon.data"
    if path.exists():
        path.unlink()
    with RecordWriter(str(path)) as w:
        for t, targets in records:
            trs = [TargetRegions(tid, *(np.array(col, dtype=dt) for col, dt in zip(
                zip(*regs, strict=True), (np.uint64, np.uint64, np.uint32), strict=True)))
                for tid, regs in targets]
            if per_record:
                w.write(t, trs)
            else:
                for j, tr in enumerate(trs):
                    w.write(t + j, [tr])
    whole = reports(path, WHOLE, tmp_path)
    got = reports(path, chunk_bytes, tmp_path)
    for name, expected in whole.items():
        assert got[name] == expected, name


def test_raw_column_formatter_matches_python(tmp_path, monkeypatch):
    """Big chunks are formatted by numtext, small ones per line: the same bytes."""
    rng = np.random.default_rng(7)
    path = tmp_path / "wide.data"
    with RecordWriter(str(path)) as w:
        for k in range(40):
            n = 50
            start = rng.integers(0, 2 ** int(rng.integers(1, 63)), n, dtype=np.uint64)
            if k % 3 == 0:
                start |= np.uint64(0xFFFF000000000000)  # more than 12 hex digits
            size = rng.integers(0, 2 ** int(rng.integers(1, 46)), n, dtype=np.uint64)
            end = np.minimum(start + size, np.uint64(2**64 - 1))
            nr = rng.integers(0, 2 ** int(rng.integers(1, 32)), n, dtype=np.uint64)
            w.write(10**9 + k, [TargetRegions(k % 2, start, np.maximum(end, start),
                                              nr.astype(np.uint32))])
    src = RecordFile(path, warn=False)
    monkeypatch.setattr(raw, "VECTOR_REGIONS", 1 << 60)
    per_line = text_of(raw.raw_text(src.chunks()))
    monkeypatch.setattr(raw, "VECTOR_REGIONS", 0)
    columns = text_of(raw.raw_text(src.chunks()))
    assert columns == per_line
    assert b"ffff" in columns


def write_large(path, target_mb: int) -> None:
    """About `target_mb` MB of 600-region snapshots, one target (as make_big_record.py)."""
    rng = np.random.default_rng(5)
    with RecordWriter(str(path)) as w:
        for k in range(int(target_mb * 1e6 // (32 + 20 * 600))):
            w.write(5 * 10**12 + k * 100_000_000,
                    [TargetRegions(4242, *regions(rng, 0x7F0000000000, 600))])


PEAK_RSS = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
assert proc.returncode == 0, proc.stderr
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.mark.slow
def test_memory_stays_bounded(tmp_path):
    """Reports over a 120 MB file stay under 100 MiB (the whole file as columns: ~500 MiB)."""
    path = tmp_path / "big.data"
    write_large(path, 120)
    assert path.stat().st_size > 115e6
    for args in (["report", "raw"], ["report", "wss"], ["report", "nr_regions"],
                 ["report", "heats"], ["report", "heats", "--guide"], ["validate"],
                 ["report", "access"], ["report", "access", "--style", "recency-percentiles"],
                 ["adjust", "1000000", "-o", str(tmp_path / "adj.data")]):
        peak_kib = int(subprocess.run(
            [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "damo.cli", *args,
             "-i", str(path)],
            capture_output=True, check=True, text=True).stdout)
        assert peak_kib < 100 * 1024, f"damo {' '.join(args)}: {peak_kib} KiB"


@pytest.mark.parametrize("at_snapshot", [0, 150])
def test_corrupt_file_prints_and_creates_nothing(tmp_path, at_snapshot):
    """A region ending before it starts, in the first or a late chunk: one line, no output."""
    path = tmp_path / "damon.data"
    write_large(path, 2)  # 160 snapshots in two chunks
    data = bytearray(path.read_bytes())
    at = 20 + at_snapshot * (32 + 20 * 600) + 32 + 8  # the end of its first region
    data[at : at + 8] = (5).to_bytes(8, "little")
    path.write_bytes(data)
    (tmp_path / "out.data").write_bytes(b"kept")
    for args in (["report", "raw"], ["report", "raw", "--json"], ["report", "wss"],
                 ["report", "nr_regions"], ["report", "heats"], ["report", "heats", "--guide"],
                 ["report", "access"], ["report", "access", "--style", "cold-memory-tail"],
                 ["adjust", "1000000", "-o", str(tmp_path / "out.data")]):
        proc = subprocess.run([sys.executable, "-m", "damo.cli", *args, "-i", str(path)],
                              capture_output=True, check=False)
        assert proc.returncode == 1 and proc.stdout == b"", args
        assert proc.stderr == (f"damo: error: {path}: snapshot {at_snapshot} has a region "
                               "ending before it starts (corrupt)\n").encode(), args
    assert (tmp_path / "out.data").read_bytes() == b"kept"
    assert not (tmp_path / "out.data.old").exists()


def test_raw_and_json_stream_without_numpy_on_small_files(tmp_path):
    """A small recfmt file is reported without loading numpy (the start-up figure)."""
    path = tmp_path / "damon.data"
    write_multi_target(path, 5, True)
    code = ("import sys, atexit\n"
            "atexit.register(lambda: sys.stderr.write(' '.join(sorted(m for m in "
            "('numpy', 'rich', 'bcc') if m in sys.modules))))\n"
            "from damo.cli import main\n"
            f"main(['report', 'raw', '-i', {str(path)!r}])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert proc.stdout.startswith(b"start_time:")
    help_code = code.replace(f"['report', 'raw', '-i', {str(path)!r}]", "['--help']")
    proc = subprocess.run([sys.executable, "-c", help_code], capture_output=True, check=False)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr


def test_raw_json_is_the_raw_report(tmp_path):
    path = tmp_path / "damon.data"
    write_multi_target(path, 6, False)
    src = RecordFile(path, warn=False)
    doc = json.load(io.BytesIO(text_of(raw.raw_json(src.chunks()))))
    snaps = read_snapshots(path)
    assert doc["start_time_ns"] == int(snaps.end_ns[0])
    flat = [(t["target_id"], r["start"], r["end"], r["nr_accesses"])
            for rec in doc["records"] for t in rec["targets"] for r in t["regions"]]
    owner = np.repeat(snaps.target_id, snaps.nr_regions)
    assert flat == list(zip(owner.tolist(), snaps.start.tolist(), snaps.end.tolist(),
                            snaps.nr_accesses.tolist(), strict=True))


def test_a_pipe_is_read_once_and_reported_whole(tmp_path):
    """`-i /dev/stdin` from a pipe: spooled, so two-pass reports see the whole file."""
    path = tmp_path / "damon.data"
    write_multi_target(path, 40, True)
    for args in (["report", "raw"], ["report", "heats"], ["report", "wss"]):
        direct = subprocess.run([sys.executable, "-m", "damo.cli", *args, "-i", str(path)],
                                capture_output=True, check=True).stdout
        with open(path, "rb") as f:
            cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
            piped = subprocess.run([sys.executable, "-m", "damo.cli", *args, "-i",
                                    "/dev/stdin"], stdin=cat.stdout, capture_output=True,
                                   check=True).stdout
            cat.wait()
        assert piped == direct, args
