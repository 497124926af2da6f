"""Bad input to every report: one line on stderr, the right exit status, no traceback."""

import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_damo

from damo.records import recfmt
from damo.records.writer import RecordWriter, TargetRegions

REPORTS = [["report", "raw"], ["report", "heats"], ["report", "heats", "--guide"],
           ["report", "wss"], ["report", "nr_regions"], ["adjust", "1000000"]]


def one_error_line(proc, status=1) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("damo: error: "), err
    return err


def write_good(path, nr_records=30):
    with RecordWriter(str(path)) as w:
        for k in range(nr_records):
            regions = np.array([0x1000, 0x5000, 0x9000], dtype=np.uint64)
            w.write((k + 1) * 100_000_000, [TargetRegions(
                42, regions[:-1], regions[1:], np.array([k % 5, 1], dtype=np.uint32))])


BAD_CONTENT = {
    "empty": b"",
    "garbage": bytes(range(256)) * 10,
    "wrong magic": b"damon_recfmt_vex" + struct.pack("<i", 2) + b"\0" * 40,
    "unknown version": recfmt.MAGIC + struct.pack("<i", 7) + b"\0" * 40,
    "count past eof": recfmt.header() + struct.pack("<qqIQI", 1, 0, 1, 5, 0xFFFFFFFF),
}


@pytest.mark.parametrize("what", sorted(BAD_CONTENT))
@pytest.mark.parametrize("cmd", REPORTS, ids=" ".join)
def test_bad_file(tmp_path, cmd, what):
    path = tmp_path / "bad.data"
    path.write_bytes(BAD_CONTENT[what])
    err = one_error_line(run_damo(*cmd, "-i", str(path), cwd=tmp_path))
    assert str(path) in err
    assert not (tmp_path / "damon.adjusted.data").exists()


@pytest.mark.parametrize("cmd", REPORTS, ids=" ".join)
def test_missing_default_input(tmp_path, cmd):
    err = one_error_line(run_damo(*cmd, cwd=tmp_path))
    assert "damon.data: no such file" in err


@pytest.mark.parametrize("cmd", REPORTS, ids=" ".join)
def test_truncated_file_warns_once_and_works(tmp_path, cmd):
    path = tmp_path / "damon.data"
    write_good(path)
    path.write_bytes(path.read_bytes()[:-9])
    proc = run_damo(*cmd, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert err.count("\n") == 1 and err.startswith("damo: warning: ") and "truncated" in err


@pytest.mark.parametrize("args", [
    ["report", "heats", "--tres", "0"],
    ["report", "heats", "--tres", "ten"],
    ["report", "heats", "--amin", "0xzz"],
    ["report", "heats", "--tres", "5", "--resol", "5", "5"],
    ["report", "heats", "--heatmap", "map.gif"],
    ["report", "heats", "--tid", "7"],
    ["report", "heats", "--heatmap", "stdout", "--stdout_heatmap_color", "pink"],
    ["report", "heats", "--tmin", "500", "--tmax", "600"],
    ["report", "heats", "--amin", "0x1000", "--amax", "0x1010"],
    ["report", "wss", "--sortby", "name"],
    ["report", "wss", "-r", "0", "100", "0"],
    ["report", "wss", "-t", "-1"],
    ["report", "nr_regions", "--plot", "x.bmp"],
    ["adjust", "0"],
    ["adjust", "soon"],
    ["adjust", "100", "-o", "damon.data"],
])
def test_bad_options(tmp_path, args):
    write_good(tmp_path / "damon.data")
    before = (tmp_path / "damon.data").read_bytes()
    one_error_line(run_damo(*args, cwd=tmp_path), status=2)
    assert (tmp_path / "damon.data").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damon.data"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("cmd", REPORTS[:5], ids=" ".join)
def test_full_disk_is_one_line(tmp_path, cmd):
    write_good(tmp_path / "damon.data")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "damo.cli", *cmd], cwd=tmp_path,
                              stdout=full, stderr=subprocess.PIPE, check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode() == "damo: error: cannot write the report: No space left on device\n"


def test_reader_going_away_is_quiet(tmp_path):
    write_good(tmp_path / "damon.data", nr_records=2000)
    proc = subprocess.Popen([sys.executable, "-m", "damo.cli", "report", "raw"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"start_time:")
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""
