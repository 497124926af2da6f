"""`damo record --ops sim`: the record and truth files, bad input, signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from damo.core.attrs import Attrs
from damo.core.clock import VirtualClock
from damo.core.context import Context
from damo.errors import AttrsError, UsageError, WorkloadError
from damo.recording import Recording
from damo.records import recfmt
from damo.records.reader import read_snapshots
from damo.workload.truth import read_truth

ROOT = Path(__file__).parents[1]
STAIRS = str(ROOT / "examples" / "workloads" / "stairs.toml")
ZIGZAG = str(ROOT / "examples" / "workloads" / "zigzag.toml")


def record(tmp_path, *targets, name="damon.data", **kw):
    out = str(tmp_path / name)
    kw.setdefault("attrs", Attrs())
    rec = Recording.prepare(list(targets), kw.pop("ops", "sim"), out=out, **kw)
    rec.run()
    return rec, out


def test_dbgfs_aggregate_record_size(tmp_path):
    """dbgfs-test.h damon_dbgfs_test_aggregate: one aggregation of 3 targets x 3 regions."""
    ctx = Context(Attrs(), clock=VirtualClock(), min_region=1)
    ctx.set_targets([1, 2, 3])
    saddr = [[10, 20, 30], [5, 42, 49], [13, 33, 55]]
    eaddr = [[15, 27, 40], [31, 45, 55], [23, 44, 66]]
    accesses = [[42, 95, 84], [10, 20, 30], [0, 1, 2]]
    for it, t in enumerate(ctx.targets):
        for ir in range(3):
            t.add_region(saddr[it][ir], eaddr[it][ir], accesses[it][ir])
    out = str(tmp_path / "damon.data")
    rec = Recording(ctx, out, duration_ns=1, truth=None)
    rec.run()
    sr = 8 + 8 + 4  # start, end, nr_accesses
    sp = 8 + 4 + 3 * sr  # target id, nr_regions, regions
    sz = 16 + 4 + 3 * sp  # timespec, nr_targets, targets
    assert rec.nr_records == 1
    assert os.path.getsize(out) == recfmt.HEADER_SIZE + sz
    snaps = read_snapshots(out)
    assert snaps.target_id.tolist() == [1, 2, 3]
    assert snaps.end_ns.tolist() == [100_000_000] * 3
    for i in range(3):
        start, end, nr = snaps.regions(i)
        assert (start.tolist(), end.tolist(), nr.tolist()) == (saddr[i], eaddr[i], accesses[i])


def test_record_stairs_with_truth(tmp_path):
    truth = str(tmp_path / "truth.jsonl")
    rec, out = record(tmp_path, STAIRS, seed=1, truth=truth)
    snaps = read_snapshots(out)
    # 30 s of phases at 100 ms per aggregation, virtual time from 0
    assert len(snaps) == rec.nr_records == 300
    assert snaps.end_ns.tolist() == [i * 100_000_000 for i in range(1, 301)]
    assert (snaps.target_id == 1).all()
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    runs = read_truth(truth)
    assert [r.phase for r in runs] == ["all"] + [f"{c} only" for c in "abcdefghij"]
    assert runs[0].start_ns == 0 and runs[-1].end_ns == 30_000_000_000
    assert all(a.end_ns == b.start_ns for a, b in zip(runs, runs[1:], strict=False))
    assert runs[0].wss == 100 << 20 and runs[3].wss == 10 << 20
    line = json.loads(Path(truth).read_text().splitlines()[1])
    assert set(line) == {"phase", "start_ns", "end_ns", "regions"}
    assert set(line["regions"][0]) == {"name", "start", "end", "probability"}
    # records cover the truth regions
    start, end, _ = snaps.regions(0)
    assert start[0] <= runs[0].regions[0].start and runs[0].regions[-1].end <= end[-1]


def test_same_seed_same_file(tmp_path):
    _, a = record(tmp_path, ZIGZAG, name="a", seed=7, duration=3)
    _, b = record(tmp_path, ZIGZAG, name="b", seed=7, duration=3)
    _, c = record(tmp_path, ZIGZAG, name="c", seed=8, duration=3)
    assert Path(a).read_bytes() == Path(b).read_bytes()
    assert Path(a).read_bytes() != Path(c).read_bytes()


def test_duration_and_attrs(tmp_path):
    attrs = Attrs(10_000, 200_000, 1_000_000, 5, 50)
    truth = str(tmp_path / "t")
    rec, out = record(tmp_path, ZIGZAG, attrs=attrs, duration=12.5, truth=truth)
    snaps = read_snapshots(out)
    # stops at the first aggregation at or after 12.5 s
    assert snaps.end_ns[-1] == 12_600_000_000 and len(snaps) == 63
    assert snaps.nr_regions.max() <= 50
    runs = read_truth(truth)
    # the unfinished phase is logged up to the stop
    assert [(r.phase, r.end_ns) for r in runs] == [("both", 10**10), ("a only", 12_600_000_000)]


@pytest.mark.parametrize("requests, last_ns", [(1, 1_300_000_000), (2, 1_200_000_000)])
def test_stop_request_finishes_the_window(tmp_path, requests, last_ns):
    """One request (SIGINT) closes the current window; a second one stops at once."""
    out = str(tmp_path / "d")
    rec = Recording.prepare([ZIGZAG], "sim", Attrs(), out)

    def after_sampling(ctx):
        if ctx.clock.now_ns() == 1_250_000_000:
            for _ in range(requests):
                rec.request_stop()

    rec.ctx.callbacks.after_sampling = after_sampling
    rec.run()
    snaps = read_snapshots(out)
    assert snaps.end_ns[-1] == last_ns and not snaps.warnings


def test_existing_output_is_kept(tmp_path):
    old = tmp_path / "damon.data"
    old.write_bytes(b"precious")
    record(tmp_path, ZIGZAG, duration=0.5)
    assert (tmp_path / "damon.data.old").read_bytes() == b"precious"
    assert old.read_bytes().startswith(recfmt.MAGIC)


@pytest.mark.parametrize(
    "kw, error, message",
    [
        (dict(ops="vaddr", truth="t.jsonl"), UsageError, "--truth needs operations"),
        (dict(ops="kernel"), UsageError, "unknown operations 'kernel'"),
        (dict(attrs=Attrs(min_nr_regions=2)), AttrsError, "at least 3"),
        (dict(attrs=Attrs(aggr_interval=1000)), AttrsError, "shorter than"),
        (dict(duration=0), UsageError, "--duration"),
        (dict(seed=-1), UsageError, "--seed"),
        (dict(adjust="bogus"), UsageError, "unknown --adjust 'bogus'"),
        (dict(duration=float("inf")), UsageError, "--duration"),
        (dict(truth="no/such/dir/t.jsonl"), UsageError, "no directory no/such/dir"),
    ],
)
def test_bad_input_leaves_no_file(tmp_path, kw, error, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        record(tmp_path, ZIGZAG, **kw)
    assert list(tmp_path.iterdir()) == []


def test_bad_workload_leaves_no_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[regions]]\nname = "a"\nsize = "1 MB"\n')
    with pytest.raises(WorkloadError, match="bad.toml:3: size of region 'a'"):
        record(tmp_path, str(bad))
    with pytest.raises(UsageError, match="one workload file"):
        record(tmp_path, ZIGZAG, STAIRS)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]


def damo(*args, cwd, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "damo.cli", "record", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_cli_runs_and_reports(tmp_path):
    p = damo("--ops", "sim", ZIGZAG, "-o", "z.data", "--duration", "2", "--seed", "1", cwd=tmp_path)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "20 records" in err and out == ""
    assert len(read_snapshots(str(tmp_path / "z.data"))) == 20


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--ops", "sim", "missing.toml"], 1, "damo: error: cannot read workload missing.toml"),
        (["--ops", "sim", ZIGZAG, "-n", "2"], 2, "damo: error: min_nr_regions (2)"),
        (["--ops", "sim", ZIGZAG, "-m", "5"], 2, "damo: error: invalid nr_regions"),
        ([ZIGZAG, "--truth", "t"], 2, "damo: error: --truth needs operations"),
        (["--ops", "sim", ZIGZAG, "--adjust", "x"], 2, "damo: error: unknown --adjust 'x'"),
        (["--ops", "kernel", "--attach", "--adjust", "seed"], 2, "damo: error: --adjust goes"),
        (["--ops", "sim", ZIGZAG, "--max-cpu", "-1"], 2, "damo: error: --max-cpu must be 0"),
        (["--ops", "sim", ZIGZAG, "--max-cpu", "101"], 2, "damo: error: --max-cpu must be 0"),
    ],
)
def test_cli_bad_input_one_line(tmp_path, args, code, message):
    p = damo(*args, cwd=tmp_path)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code
    assert err.startswith(message) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_sigint_ends_a_looping_run_cleanly(tmp_path):
    w = tmp_path / "loop.toml"
    w.write_text(
        "loop = true\n" + Path(ZIGZAG).read_text().split("\n", 1)[1]  # drop the comment line
    )
    p = damo("--ops", "sim", str(w), "-o", "l.data", "--truth", "l.truth", cwd=tmp_path)
    data = tmp_path / "l.data"
    deadline = time.monotonic() + 30
    while (not data.exists() or data.stat().st_size < 100_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    snaps = read_snapshots(str(data))
    assert not snaps.warnings  # ends at a record boundary
    assert len(snaps) > 10
    runs = read_truth(str(tmp_path / "l.truth"))
    assert runs[-1].end_ns >= snaps.end_ns[-1]
    assert np.all(np.diff(snaps.end_ns) == 100_000_000)


def test_adjust_is_chosen_and_noted(tmp_path):
    """`--adjust seed` runs the seed's merge and split (no region state) and the
    sidecar says which adjustment ran; the default is narrow."""
    from damo.records.meta import read_meta

    for mode in ("seed", "narrow"):
        kw = {} if mode == "narrow" else {"adjust": mode}
        rec, out = record(tmp_path, ZIGZAG, name=f"{mode}.data", seed=3, duration=3, **kw)
        start = next(m for m in read_meta(out) if m["type"] == "start")
        assert start["adjust"] == mode and rec.ctx.adjust == mode
    # narrow samples cold memory in more pieces; the snapshots differ
    assert read_snapshots(str(tmp_path / "seed.data")).nr_records == 30
    a, b = (tmp_path / "seed.data").read_bytes(), (tmp_path / "narrow.data").read_bytes()
    assert a != b
