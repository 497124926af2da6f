"""Edges of `damo record`: commands that fail at once, pids that exit mid-record (root, bcc)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import need_bpf
from proc_targets import start

from damo.records.meta import read_meta
from damo.records.reader import read_snapshots

REPO = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the BPF sampler needs root")


def record(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "damo.cli", "record", *args], cwd=cwd,
                          capture_output=True, text=True, env=ENV, timeout=timeout, check=False)


def reap(p: subprocess.Popen) -> threading.Thread:
    """Wait for a target in the background, as its real parent would (no zombie left)."""
    t = threading.Thread(target=p.wait, daemon=True)
    t.start()
    return t


def broken_elf(tmp_path: Path) -> Path:
    path = tmp_path / "broken"
    path.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"garbage, not a header")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("command, status", [("false", 1), ("BROKEN", 126)])
def test_a_command_that_fails_at_once_fails_the_run(tmp_path, command, status):
    need_bpf()
    if command == "BROKEN":
        command = str(broken_elf(tmp_path))
    p = record(command, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.startswith("damo: ")]
    summary, error = lines
    assert f"the command exited with status {status}" in summary
    assert "of one CPU" not in summary  # no CPU share over nothing
    assert error == (f"damo: error: the command {command!r} exited with status {status} "
                     "before anything was recorded")


def test_a_command_that_succeeds_at_once_is_not_a_failure(tmp_path):
    need_bpf()
    p = record("true", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "the command exited with status 0" in p.stderr and "error" not in p.stderr


def started(data: Path, p: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until `damo record` monitors (its sidecar exists: the start message is written)."""
    meta = Path(str(data) + ".meta")
    deadline = time.monotonic() + timeout
    while not meta.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert meta.exists(), p.stderr.read() if p.poll() is not None else "no sidecar"


def record_bg(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "damo.cli", "record", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def test_pid_that_exits_mid_record(tmp_path):
    need_bpf()
    target, _ = start("half", 16, 60)
    waiter = reap(target)
    data = tmp_path / "damon.data"
    p = record_bg(str(target.pid), cwd=tmp_path)
    try:
        started(data, p)
        time.sleep(2)  # recorded for a while (~20 aggregations), then it exits
        target.kill()
        t0 = time.monotonic()
        _, err = p.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        p.kill()
        target.kill()
        waiter.join(10)
    assert p.returncode == 0, err
    assert "ended by target exit" in err and "error" not in err
    assert took < 10  # ended by the exit, not hanging on
    snaps = read_snapshots(str(data))
    # 2 s at the default budget's intervals (up to 16x the nominal 0.1 s).
    assert not snaps.warnings and len(snaps) >= 2
    assert set(snaps.target_id.tolist()) == {target.pid}
    meta = read_meta(str(data))
    assert meta[-1]["type"] == "end" and meta[-1]["reason"] == "target exit"
    assert meta[-1]["nr_records"] == len(np.unique(snaps.end_ns))
    valid = subprocess.run([sys.executable, "-m", "damo.cli", "validate", "-i", str(data)],
                           capture_output=True, text=True, env=ENV, check=False)
    assert valid.returncode == 0, valid.stdout + valid.stderr


def test_several_pids_one_exits(tmp_path):
    need_bpf()
    short, _ = start("half", 16, 60)
    long_, _ = start("half", 16, 60)
    waiter = reap(short)
    data = tmp_path / "damon.data"
    p = record_bg(str(short.pid), str(long_.pid), "--duration", "6", cwd=tmp_path)
    try:
        started(data, p)
        time.sleep(2)
        short.kill()
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
        short.kill()
        long_.kill()
        long_.wait()
        waiter.join(10)
    assert p.returncode == 0, err
    assert "ended by duration" in err and "error" not in err
    snaps = read_snapshots(str(data))
    assert not snaps.warnings
    ends_short = snaps.end_ns[snaps.target_id == short.pid]
    ends_long = snaps.end_ns[snaps.target_id == long_.pid]
    # The one that exited is recorded until it exits, then leaves the records; the other
    # goes on to the end, one snapshot every record.
    assert len(ends_short) >= 5
    assert ends_short.max() < ends_long.max() - 1.5e9
    assert len(ends_long) == len(np.unique(snaps.end_ns))
    meta = read_meta(str(data))
    assert meta[-1]["type"] == "end" and meta[-1]["reason"] == "duration"
    # The one still running had its working set measured throughout (half of 16 MiB busy).
    late = snaps.end_ns >= ends_short.max() + 1e9
    for i in np.flatnonzero(late & (snaps.target_id == long_.pid))[-3:]:
        start_, end_, nr = snaps.regions(int(i))
        assert int(((end_ - start_) * (nr > 0)).sum()) >= 4 << 20
