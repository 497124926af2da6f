"""report footprints and wss --footprints: exact tables from a sidecar; missing footprints."""

import numpy as np
import pytest
from conftest import run_damo

from damo.records.meta import MetaWriter, read_meta
from damo.records.writer import RecordWriter, TargetRegions

MiB = 1 << 20


def write(tmp_path, footprints=True):
    """Ten snapshots of target 5: WSS k MiB; RSS (10 + k) MiB, VSZ 100 MiB, at the same times."""
    path = tmp_path / "damon.data"
    with RecordWriter(str(path)) as w, MetaWriter(str(path)) as meta:
        meta.write("start", time_ns=0, targets=[{"id": 5, "pid": 5}])
        for k in range(10):
            t = (k + 1) * 100_000_000
            w.write(t, [TargetRegions(5, np.array([0], np.uint64),
                                      np.array([max(k, 1) * MiB], np.uint64),
                                      np.array([1 if k else 0], np.uint32))])
            if footprints:
                meta.write("footprints", time_ns=t, targets=[[5, 100 * MiB, (10 + k) * MiB]])
    return path


def test_distribution_in_wss_format(tmp_path):
    write(tmp_path)
    proc = run_damo("report", "footprints", "rss", "-r", "0", "101", "50", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == (
        "# <percentile> <rss>\n# target_id\t5\n"
        f"# avr:\t{int(14.5 * MiB)}\n0\t{10 * MiB}\n50\t{15 * MiB}\n100\t{19 * MiB}\n")
    vsz = run_damo("report", "footprints", "vsz", "-s", "time", cwd=tmp_path)
    assert vsz.stdout.decode().splitlines()[3] == f"0\t{100 * MiB}"


def test_wss_with_rss_beside(tmp_path):
    write(tmp_path)
    proc = run_damo("report", "wss", "--footprints", "-s", "time", "-r", "0", "101", "50",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "# <percentile> <wss> <rss> <wss/rss>"
    # Snapshot k has WSS k MiB (0 for the first) and RSS 10 + k MiB: row = the same snapshot.
    assert lines[3:] == [f"0\t0\t{10 * MiB}\t0.000", f"50\t{5 * MiB}\t{15 * MiB}\t0.333",
                         f"100\t{9 * MiB}\t{19 * MiB}\t0.474"]
    by_size = run_damo("report", "wss", "--footprints", cwd=tmp_path).stdout.decode()
    assert by_size.splitlines()[-1] == f"100\t{9 * MiB}\t{19 * MiB}\t0.474"


def test_wss_windows_take_the_rss_of_their_last_snapshot(tmp_path):
    write(tmp_path)
    proc = run_damo("report", "wss", "--footprints", "-s", "time", "--work_time", "300000",
                    "--exclude_samples", "0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    # Windows of 3 snapshots (the last one of 1): they end at snapshots 2, 5, 8 and 9.
    rss = [int(line.split("\t")[2]) for line in proc.stdout.decode().splitlines()[3:]]
    assert rss == [12 * MiB, 15 * MiB, 18 * MiB, 19 * MiB, 19 * MiB]


@pytest.mark.parametrize("setup, args, message, code", [
    ("none", ["report", "footprints", "rss"], "damon.data.meta: no such file", 1),
    ("empty", ["report", "footprints", "rss"], "damon.data.meta: no footprints", 1),
    ("empty", ["report", "wss", "--footprints"], "damon.data.meta: no footprints", 1),
    ("full", ["report", "footprints", "pss"], "expected vsz or rss, not 'pss'", 2),
    ("full", ["report", "wss", "--footprints", "--json"], "--json does not go with --footprints",
     2),
])
def test_missing_footprints_are_one_line(tmp_path, setup, args, message, code):
    path = write(tmp_path, footprints=setup == "full")
    if setup == "none":
        (tmp_path / "damon.data.meta").unlink()
    proc = run_damo(*args, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == code and message in err and len(err.splitlines()) == 1, err
    assert proc.stdout == b""
    assert path.exists()


def cut_sidecar_in_half(path) -> None:
    meta = path.with_name(path.name + ".meta")
    blob = meta.read_bytes()
    meta.write_bytes(blob[: len(blob) // 2])


def test_sidecar_cut_in_half_says_what_is_missing_and_pairs_nothing_stale(tmp_path):
    path = write(tmp_path)
    cut_sidecar_in_half(path)
    kept = [m for m in read_meta(str(path)) if m["type"] == "footprints"]
    assert 2 <= len(kept) < 10
    proc = run_damo("report", "wss", "--footprints", "-s", "time", "-r", "0", "101", "10",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("damo: warning: ")
    assert f"no footprint for {10 - len(kept)} of 10 snapshots" in err
    assert "none after" in err and "cut short" in err
    rows = [line.split("\t") for line in proc.stdout.decode().splitlines()[3:]]
    assert len(rows) == 11
    for p, wss, rss, ratio in rows:
        k = min(int(p) // 10, 9)  # snapshot k: WSS k MiB, RSS (10 + k) MiB when read
        assert int(wss) == (k * MiB if k else 0)
        if k < len(kept):
            assert int(rss) == (10 + k) * MiB
        else:  # never the last surviving reading
            assert (rss, ratio) == ("-", "-")
    # The mean RSS is over the snapshots that have one.
    avr = proc.stdout.decode().splitlines()[2].split("\t")
    assert int(avr[2]) == int(sum((10 + k) * MiB for k in range(len(kept))) / len(kept))

    fp = run_damo("report", "footprints", "rss", cwd=tmp_path)
    assert fp.returncode == 0
    assert fp.stderr.decode() == err  # the same line: what is missing
    assert f"# avr:\t{int(sum((10 + k) * MiB for k in range(len(kept))) / len(kept))}" in \
        fp.stdout.decode()


def test_whole_sidecar_no_warning(tmp_path):
    write(tmp_path)
    for args in (("wss", "--footprints"), ("footprints", "rss")):
        proc = run_damo("report", *args, cwd=tmp_path)
        assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode()
