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
    # The ring holds ~13 s of events at kernel DAMON's defaults: a run of a few aggregations
    # loses none. Every event then went into the file, except those of the snapshots cut
    # short at the start or the end (dropped whole, each fewer than max_nr_regions events).
    assert last["lost_events"] == 0, last
    written = int(snaps.nr_regions.sum())
    assert written <= last["events"] <= written + last["dropped_snapshots"] * ctx.max_nr_regions
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


def fake_admin_with_vaddr(root, kdamond_pid: int):
    """A free DAMON sysfs tree (tests/test_damon_sysfs.py's) whose kernel offers vaddr."""
    from tests.test_damon_sysfs import make_tree

    admin = make_tree(root)
    (admin / "kdamonds/0/contexts/0/avail_operations").write_text("vaddr fvaddr paddr\n")
    # What the "started" kdamond's pid reads: the machine's real one, whose
    # tracepoint events then stand in for those of a kdamond of our own.
    (admin / "kdamonds/0/pid").write_text(f"{kdamond_pid}\n")
    return admin


@needs_kdamond
def test_pids_go_through_kernel_damon_where_it_has_vaddr(tmp_path):
    # The real interface is busy (never written); a fake tree stands in for a free one.
    from tests.proc_targets import start
    from tests.test_damon_sysfs import snapshot

    admin = fake_admin_with_vaddr(tmp_path / "sysfs", running_kdamond().pid)
    preamble = f"import pathlib, damo.linux.damon_sysfs as d; d.ADMIN_DIR = pathlib.Path('{admin}')"
    code = f"{preamble}\nfrom damo.cli import main\nmain()"
    target, _ = start("sleep", 60)
    real_before = {p: p.read_text() for p in damon_sysfs.ADMIN_DIR.rglob("state")}
    try:
        out = tmp_path / "k.data"
        proc = run_damo_code(code, "record", str(target.pid), "--duration", "1", "-o", str(out))
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        assert err.startswith("damo: recording through kernel DAMON (this kernel has its vaddr "
                              "operations and its sysfs interface is free)"), err
        ctx = admin / "kdamonds/0/contexts/0"
        # damo's kdamond was configured for the pid, started, then stopped and removed.
        assert (ctx / "operations").read_text() == "vaddr\n"
        assert (ctx / "targets/0/pid_target").read_text() == f"{target.pid}\n"
        assert (admin / "kdamonds/0/state").read_text() == "off\n"
        assert (admin / "kdamonds/nr_kdamonds").read_text() == "0\n"
        meta = read_meta(str(out))
        assert meta[0]["ops"] == "kernel" and meta[0]["attach"] is False
        assert meta[-1]["reason"] == "duration"
        # --ops vaddr keeps damo's own sampler and leaves kernel DAMON alone.
        before = snapshot(admin)
        proc = run_damo_code(code, "record", str(target.pid), "--ops", "vaddr", "--duration",
                             "0.5", "-o", str(out))
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        assert "kernel DAMON" not in err and err.startswith("damo: recorded process")
        assert snapshot(admin) == before
        assert read_meta(str(out))[0]["ops"] == "vaddr"
    finally:
        target.kill()
        target.wait()
    assert {p: p.read_text() for p in damon_sysfs.ADMIN_DIR.rglob("state")} == real_before


def run_damo_code(code: str, *args: str):
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, check=False,
                          timeout=120, env={**os.environ,
                                            "PYTHONPATH": str(Path(__file__).parents[1])})
