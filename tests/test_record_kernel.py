"""`damo record --ops kernel`: attaching to the machine's running kdamond, and refusing to
touch it.  The refusals run before anything is written anywhere, sysfs included."""

import os

import numpy as np
import pytest

from damo.linux import damon_sysfs
from damo.records.meta import read_meta
from damo.records.reader import read_snapshots
from tests.conftest import run_damo, running_kdamond

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (BPF, sysfs)")
needs_kdamond = pytest.mark.skipif(
    os.geteuid() != 0 or running_kdamond() is None,
    reason="needs root and a running kdamond (kernel DAMON) to record",
)


def one_line_error(proc, code):
    err = proc.stderr.decode()
    assert proc.returncode == code, err
    assert err.startswith("damo: error: ") and err.count("\n") == 1, err
    return err


@needs_kdamond
def test_attach_records_whole_snapshots(tmp_path):
    kd = running_kdamond()
    [ctx] = kd.contexts[:1]
    duration = 2.4 * ctx.aggr_us / 1e6
    out = tmp_path / "k.data"
    proc = run_damo("record", "--ops", "kernel", "--attach", "--duration", f"{duration:.1f}",
                    "-o", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    assert "kdamond" in proc.stderr.decode()
    snaps = read_snapshots(out)
    assert len(snaps) >= 2
    for i in range(len(snaps)):
        start, end, _ = snaps.regions(i)
        assert np.all(start < end) and np.all(start[1:] >= end[:-1])
        assert ctx.min_nr_regions <= len(start) <= ctx.max_nr_regions
    meta = read_meta(str(out))
    first, last = meta[0], meta[-1]
    assert first["ops"] == "kernel" and first["attach"] is True
    assert first["attrs"]["aggr_us"] == ctx.aggr_us
    assert last["type"] == "end" and last["nr_records"] == len(snaps)
    if last["lost_events"] == 0 and last["dropped_snapshots"] == 0:
        # Every event went into the file: each snapshot has exactly its nr_regions.
        assert last["events"] == int(snaps.nr_regions.sum())
    for report in ("raw", "wss"):
        got = run_damo("report", report, "-i", str(out))
        assert got.returncode == 0 and got.stdout, got.stderr.decode()


@needs_kdamond
def test_refuses_to_start_beside_a_running_kdamond(tmp_path):
    before = {p: p.read_text() for p in damon_sysfs.ADMIN_DIR.rglob("state")}
    out = tmp_path / "k.data"
    proc = run_damo("record", "--ops", "kernel", "paddr", "-o", str(out))
    assert "--attach" in one_line_error(proc, 2)
    assert not out.exists() and not (tmp_path / "k.data.meta").exists()
    assert {p: p.read_text() for p in damon_sysfs.ADMIN_DIR.rglob("state")} == before


@needs_root
@pytest.mark.parametrize(
    "args, message",
    [
        (("--ops", "kernel", "--attach", "paddr"), "give no TARGET"),
        (("--ops", "kernel", "somefile"), "paddr"),
        (("--attach", "1"), "--attach goes with --ops kernel"),
        (("--ops", "kernel", "--attach", "-a", "10", "-s", "20"), "aggregation interval"),
    ],
)
def test_bad_kernel_arguments(tmp_path, args, message):
    out = tmp_path / "k.data"
    proc = run_damo("record", *args, "-o", str(out))
    assert message in one_line_error(proc, proc.returncode)
    assert proc.returncode in (1, 2)
    assert not out.exists()
