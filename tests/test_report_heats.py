"""heats: the map against a cell-by-cell computation, the guide, the terminal and image outputs."""

import shutil

import numpy as np
import pytest
from conftest import run_damo
from hypothesis import given, settings
from hypothesis import strategies as st

from damo.errors import UsageError
from damo.records.snapshots import from_lists
from damo.records.writer import RecordWriter, TargetRegions
from damo.reports import heatmap_text, heats


def naive_heat(snapshots, a):
    """Each cell's time-by-address weighted mean nr_accesses, cell by cell."""
    ends = [s[0] for s in snapshots]
    mean = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else 0
    starts = [ends[0] - round(mean)] + ends[:-1]
    out = np.zeros((a.tres, a.ares))
    for i in range(a.tres):
        c_t0, c_t1 = a.tmin + i * a.tunit, a.tmin + (i + 1) * a.tunit
        for j in range(a.ares):
            c_a0, c_a1 = a.amin + j * a.aunit, a.amin + (j + 1) * a.aunit
            total = 0
            for (end, _, regions), start in zip(snapshots, starts, strict=True):
                dt = min(end, c_t1) - max(start, c_t0)
                if dt <= 0:
                    continue
                for rs, re, nr in regions:
                    da = min(re, c_a1) - max(rs, c_a0)
                    if da > 0:
                        total += nr * dt * da
            out[i, j] = total / (a.tunit * a.aunit)
    return out


@st.composite
def record(draw):
    n = draw(st.integers(1, 6))
    gaps = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    times = list(np.cumsum(gaps).tolist())
    snapshots = []
    for t in times:
        cuts = sorted(draw(st.sets(st.integers(0, 100), min_size=2, max_size=8)))
        regs = [(s, e, draw(st.integers(0, 9))) for s, e in zip(cuts, cuts[1:], strict=False)]
        snapshots.append((t, 5, regs))
    return snapshots


@settings(max_examples=200, deadline=None)
@given(record(), st.integers(1, 7), st.integers(1, 9), st.integers(-10, 60),
       st.integers(0, 90))
def test_heat_matrix_matches_cells(snapshots, tres, ares, tmin, amin):
    snaps = from_lists(snapshots)
    a = heats.Area(5, tmin, tres, 3, amin, ares, 7)
    np.testing.assert_allclose(heats.heat_matrix(snaps, a), naive_heat(snapshots, a),
                               rtol=1e-12, atol=1e-12)


def test_defaults_come_from_the_guide():
    snaps = from_lists([
        (1000, 1, [(0, 100, 1), (200, 300, 1)]),
        (2000, 1, [(0, 150, 1), (400, 500, 1)]),
        (3000, 2, [(0, 10, 1)]),
        (4000, 2, [(0, 10, 1)]),
    ])
    g = heats.guides(snaps)
    assert [x.target_id for x in g] == [1, 2]
    assert g[0].regions == [(0, 150), (200, 300), (400, 500)]
    assert (g[0].start_ns, g[0].end_ns) == (1000, 2000)
    a = heats.area(snaps, resolution=(10, 7))
    assert (a.target_id, a.tmin, a.tunit, a.amin, a.aunit) == (1, 1000, 100, 0, 21)
    assert (a.tmax, a.amax) == (2000, 147)
    assert heats.area(snaps, target_id=2, resolution=(1, 1)).amax == 10


def test_text_is_time_major_and_relative():
    snaps = from_lists([(0, 1, [(0, 64, 2)]), (100, 1, [(0, 64, 2)])])
    a = heats.area(snaps, resolution=(2, 2))
    heat = heats.heat_matrix(snaps, a)
    text = "".join(heats.heats_text(heat, a))
    assert text == "0\t0\t2.0\n0\t32\t2.0\n50\t0\t2.0\n50\t32\t2.0\n"
    absolute = "".join(heats.heats_text(heat, a, abs_time=True, abs_addr=True))
    assert absolute.splitlines()[-1] == "50\t32\t2.0"


def write_demo(path):
    with RecordWriter(str(path)) as w:
        for k in range(50):
            hot = k // 10 % 2
            start = np.array([0x10000, 0x20000], dtype=np.uint64)
            w.write((k + 1) * 100_000_000, [TargetRegions(
                1, start, start + np.uint64(0x10000),
                np.array([20 * hot, 20 * (1 - hot)], dtype=np.uint32))])


@pytest.mark.parametrize("width", [80, 132])
def test_stdout_heatmap(tmp_path, monkeypatch, width):
    write_demo(tmp_path / "damon.data")
    monkeypatch.setenv("COLUMNS", str(width))
    proc = run_damo("report", "heats", "--heatmap", "stdout", "--stdout_heatmap_color", "flame",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    # Rows are address cells (30), columns time cells filling the terminal's width.
    map_lines = [line for line in lines if line.startswith("\x1b")]
    assert len(map_lines) == heatmap_text.DEFAULT_ROWS
    assert all(len(_strip_ansi(line)) <= width for line in lines[1:])
    digits = [_strip_ansi(line)[: width - heatmap_text.SIDE] for line in map_lines]
    assert all(d.isdigit() for d in digits)
    assert set("".join(digits)) >= {"0", "9"}
    # The two halves of the address range take turns every second, the upper one second.
    top, bottom = digits[0], digits[-1]
    at = [int((t - 0.1) / 4.9 * len(top)) for t in (0.5, 1.5)]
    assert (top[at[0]], bottom[at[0]], top[at[1]], bottom[at[1]]) == ("0", "9", "9", "0")
    legend = [line for line in lines if line.startswith("#")]
    assert any("access frequency" in line for line in legend)
    assert any("mean nr_accesses" in line and "per aggregation" in line for line in legend)
    assert any("each, top down, 0x10000-" in line for line in legend)
    assert any("time 0.1-5.0 s" in line for line in legend)


def _strip_ansi(line):
    out, skip = [], False
    for c in line:
        if c == "\x1b":
            skip = True
        elif skip and c == "m":
            skip = False
        elif not skip:
            out.append(c)
    return "".join(out)


MAGIC = {
    "png": lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"),
    "svg": lambda b: b"<svg" in b[:2000] and b.rstrip().endswith(b"</svg>"),
    "pdf": lambda b: b.startswith(b"%PDF-"),
    "jpeg": lambda b: b.startswith(b"\xff\xd8\xff"),
}


@pytest.mark.skipif(shutil.which("gnuplot") is None, reason="gnuplot is not installed")
@pytest.mark.parametrize("ext", sorted(MAGIC))
def test_heatmap_images(tmp_path, ext):
    write_demo(tmp_path / "damon.data")
    out = tmp_path / f"map.{ext}"
    proc = run_damo("report", "heats", "--heatmap", str(out), "--resol", "50", "0x40",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    assert MAGIC[ext](out.read_bytes())


@pytest.mark.skipif(shutil.which("gnuplot") is None, reason="gnuplot is not installed")
@pytest.mark.parametrize("report", ["wss", "nr_regions"])
def test_distribution_plots(tmp_path, report):
    write_demo(tmp_path / "damon.data")
    out = tmp_path / "dist.svg"
    proc = run_damo("report", report, "--plot", str(out), "-r", "0", "101", "10",
                    "--sortby", "time", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.startswith(b"# <percentile>")
    assert MAGIC["svg"](out.read_bytes())


def test_missing_gnuplot_is_one_line(tmp_path):
    write_demo(tmp_path / "damon.data")
    import os
    import subprocess
    import sys

    env = dict(os.environ, PATH=str(tmp_path))  # no gnuplot on this PATH
    proc = subprocess.run([sys.executable, "-m", "damo.cli", "report", "heats", "--heatmap",
                           "x.png"], cwd=tmp_path, env=env, capture_output=True, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1
    assert "gnuplot is not installed" in err


def naive_unions(regions):
    """Unions of [start, end) ranges: overlapping or touching ones join."""
    out = []
    for start, end in sorted(regions):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [tuple(u) for u in out]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 15), st.integers(0, 9)),
                         min_size=1, max_size=6), min_size=1, max_size=6), st.booleans())
def test_guide_areas_match_naive_unions(snapshots, in_order):
    regions = [[(s, s + size, nr) for s, size, nr in snap] for snap in snapshots]
    if in_order:  # as DAMON writes them: the path that joins runs of touching regions
        regions = [sorted(r) for r in regions]
    snaps = from_lists([(100 * (k + 1), 1, r) for k, r in enumerate(regions)])
    (guide,) = heats.guides(snaps)
    flat = [(s, e, nr, 100 * (k + 1)) for k, r in enumerate(regions) for s, e, nr in r]
    assert guide.regions == naive_unions([(s, e) for s, e, _, _ in flat])
    for area in guide.areas:
        inside = [x for x in flat if area.start <= x[0] and x[1] <= area.end]
        assert area.accesses == sum((e - s) * nr for s, e, nr, _ in inside)
        assert (area.first_ns, area.last_ns) == (min(x[3] for x in inside),
                                                max(x[3] for x in inside))
    # The default area's choice: size x nr_accesses x the time each snapshot covers in the
    # guide's span (100 ns each but the first), from the guide and from a pass of its own.
    timed = [sum((e - s) * nr * 100 for s, e, nr, t in flat
                 if t > 100 and x.start <= s and e <= x.end) for x in guide.areas]
    assert [x.timed_accesses for x in guide.areas] == timed
    assert heats.area_accesses(snaps, guide, guide.start_ns, guide.end_ns).tolist() == timed
    assert heats.area_accesses(snaps, guide, guide.start_ns, guide.end_ns + 1).tolist() == timed


def write_areas(path, with_meta=True):
    """Three region unions, as a process has: a big idle one, a busy small one, a warm one."""
    from damo.records.meta import MetaWriter

    with RecordWriter(str(path)) as w:
        for k in range(30):
            start = np.array([0x10_0000, 0x7000_0000, 0x7010_0000, 0x7FFF_0000], dtype=np.uint64)
            size = np.array([0x4000_0000, 0x10_0000, 0x30_0000, 0x2_0000], dtype=np.uint64)
            w.write((k + 1) * 100_000_000, [TargetRegions(
                9, start, start + size, np.array([0, 18, 6, 3], dtype=np.uint32))])
    if with_meta:
        with MetaWriter(str(path)) as meta:
            meta.write("start", time_ns=0, attrs={"sample_us": 5000, "aggr_us": 100000},
                       targets=[{"id": 9, "pid": 9, "cmdline": ["sort", "-S", "300M"]}])
            meta.write("maps", time_ns=0, target_id=9, maps=[
                [0x10_0000, 0x4010_0000, "rw-p", 0, "[heap]", "00:00", 0],
                [0x7000_0000, 0x7010_0000, "rw-p", 0, "", "00:00", 0],
                [0x7010_0000, 0x7040_0000, "r--p", 0, "/nonexistent/big.txt", "fe:00", 5],
                [0x7FFF_0000, 0x8001_0000, "rw-p", 0, "[stack]", "00:00", 0]])


def test_default_area_holds_the_accesses():
    """The idle 1 GiB heap union is not shown; the busy 4 MiB one is (issue 11, `sort`)."""
    snaps = from_lists([
        (k * 100, 9, [(0x10_0000, 0x4010_0000, 0), (0x7000_0000, 0x7040_0000, 18),
                      (0x7FFF_0000, 0x8001_0000, 3)]) for k in range(1, 11)])
    guide = heats.guides(snaps)[0]
    assert guide.largest_region() == (0x10_0000, 0x4010_0000)
    a = heats.area(snaps, resolution=(10, 16))
    assert (a.amin, a.union) == (0x7000_0000, 1)
    assert heats.area(snaps, resolution=(10, 16), union=2).amin == 0x7FFF_0000
    # Nothing accessed at all: the largest, as before.
    idle = from_lists([(k * 100, 9, [(0, 0x1000, 0), (0x10000, 0x30000, 0)]) for k in (1, 2)])
    assert heats.area(idle, resolution=(1, 16)).amin == 0x10000
    with pytest.raises(UsageError, match="--area"):
        heats.area(snaps, union=3)


@pytest.mark.skipif(shutil.which("gnuplot") is None, reason="gnuplot is not installed")
def test_one_image_per_area_with_names(tmp_path):
    write_areas(tmp_path / "damon.data")
    proc = run_damo("report", "heats", "--heatmap", "h.svg", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "h.area2.svg: area 2" in err and "h.area0" not in err  # the idle heap: no image
    main = (tmp_path / "h.svg").read_text()
    # Title: the target with its command line, the area, the time range.
    assert "target 9 (sort -S 300M)<" in main and "area 1: 0x70000000-" in main
    assert "0.1-3.0 s" in main
    assert "[anon]" in main and "big.txt" in main  # the mappings named on the side
    assert "[stack]" in (tmp_path / "h.area2.svg").read_text()
    proc = run_damo("report", "heats", "--heatmap", "k.png", "--area", "2", cwd=tmp_path)
    assert proc.returncode == 0 and not (tmp_path / "k.area1.png").exists()
    png = (tmp_path / "k.png").read_bytes()
    assert MAGIC["png"](png)
    # The IHDR chunk: width and height of the image, big-endian.
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1200, 900)


@pytest.mark.parametrize("args, message", [
    (["--area", "3"], "--area: target 9 has region unions 0-2 (see --guide), not 3"),
    (["--area", "1", "--amin", "0x7000_0000"], "give --area or --amin/--amax"),
])
def test_bad_area_is_one_line(tmp_path, args, message):
    write_areas(tmp_path / "damon.data")
    proc = run_damo("report", "heats", *args, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and message in err and len(err.splitlines()) == 1, err


def test_terminal_map_names_the_mappings(tmp_path, monkeypatch):
    write_areas(tmp_path / "damon.data")
    monkeypatch.setenv("COLUMNS", "100")
    proc = run_damo("report", "heats", "--heatmap", "stdout", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [_strip_ansi(x) for x in proc.stdout.decode().splitlines()]
    assert lines[0].startswith("target 9 (sort -S 300M), area 1")
    side = [x[100 - heatmap_text.SIDE:] for x in lines[1:31]]
    assert "┬ [anon]" in side[0] and any("┬ big.txt" in x for x in side)
    # 90 % of the samples: nr_accesses 18 of 20 per aggregation, from the sidecar's attributes.
    assert any("9: up to 18 (90% of the samples" in x for x in lines)
    assert all(len(x) <= 100 for x in lines)
