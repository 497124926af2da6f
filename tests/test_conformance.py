"""Every case of ../shared/conformance/README.md, run through the real CLI."""

import shutil

import pytest
from conftest import run_damo

EXACT = {
    "raw": ["report", "raw"],
    "nr_regions": ["report", "nr_regions"],
    "nr_regions_1_101_1": ["report", "nr_regions", "-r", "1", "101", "1"],
    "wss": ["report", "wss"],
    "wss_1_101_1": ["report", "wss", "-r", "1", "101", "1"],
    "wss_sortby_time_0_101_5": ["report", "wss", "--sortby", "time", "-r", "0", "101", "5"],
    "wss_work_time_1s": ["report", "wss", "-r", "1", "101", "1", "--work_time", "1000000"],
    "heats_guide": ["report", "heats", "--guide"],
    "perf_script_raw": ["report", "raw", "-i", "perf.data.script"],
    "perf_script_wss": ["report", "wss", "-i", "perf.data.script"],
}
NUMERIC = {
    "heats": ["report", "heats"],
    "heats_tres10_ares10": ["report", "heats", "--tres", "10", "--ares", "10"],
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact(conformance_dir, name):
    proc = run_damo(*EXACT[name], cwd=conformance_dir)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == (conformance_dir / "expected" / name).read_bytes()


def assert_heats_close(got: bytes, expected: bytes) -> None:
    got_lines = got.decode().splitlines()
    expected_lines = expected.decode().splitlines()
    assert len(got_lines) == len(expected_lines)
    for lineno, (g, e) in enumerate(zip(got_lines, expected_lines, strict=True), 1):
        gt, ga, gh = g.split("\t")
        et, ea, eh = e.split("\t")
        assert (int(gt), int(ga)) == (int(et), int(ea)), f"line {lineno}: {g!r} vs {e!r}"
        assert float(gh) == pytest.approx(float(eh), rel=1e-9, abs=1e-12), f"line {lineno}"


@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_numeric(conformance_dir, name):
    proc = run_damo(*NUMERIC[name], cwd=conformance_dir)
    assert proc.returncode == 0, proc.stderr.decode()
    assert_heats_close(proc.stdout, (conformance_dir / "expected" / name).read_bytes())


def test_adjust_then_raw(conformance_dir, tmp_path):
    # The fixtures folder is read-only: run in a copy so the default names work.
    shutil.copy(conformance_dir / "damon.data", tmp_path / "damon.data")
    proc = run_damo("adjust", "1000000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    proc = run_damo("report", "raw", "-i", "damon.adjusted.data", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == (conformance_dir / "expected" / "adjust_1000000_raw").read_bytes()


def test_resol_spellings_match(conformance_dir):
    """damo 1.x --resol/--time_range/--address_range mean the same as --tres etc."""
    guide = run_damo("report", "heats", "--guide", cwd=conformance_dir).stdout.decode()
    time_line = guide.splitlines()[1]  # time: START-END (LEN)
    start, end = time_line.split()[1].split("-")
    old = run_damo("report", "heats", "--tres", "10", "--ares", "0xa", "--tmin", start,
                   "--tmax", end, "--amin", "0x7f9381923000", "--amax", "0x7f938ddfc000",
                   cwd=conformance_dir)
    new = run_damo("report", "heats", "--resol", "10", "10", "--time_range", start, end,
                   "--address_range", str(0x7F9381923000), str(0x7F938DDFC000),
                   cwd=conformance_dir)
    assert old.returncode == 0, old.stderr.decode()
    assert old.stdout == new.stdout
    assert_heats_close(old.stdout,
                       (conformance_dir / "expected" / "heats_tres10_ares10").read_bytes())
