"""Two observers of one target: the per-target lock, and kernel DAMON sampling beside damo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_bpf, running_kdamond
from proc_targets import start
from test_damon_sysfs import make_tree, snapshot
from test_record_edges import record_bg as record
from test_record_edges import started

from damo.errors import TargetError
from damo.linux import damon_sysfs
from damo.linux.observers import TargetLocks, kdamond_note, physical_kdamonds

REPO = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

HOLD = ("import sys, time\n"
        "from pathlib import Path\n"
        "from damo.linux.observers import TargetLocks\n"
        "locks = TargetLocks([int(sys.argv[1])], Path(sys.argv[2]))\n"
        "print('locked', flush=True); time.sleep(60)\n")


def hold(pid: int, directory: Path) -> subprocess.Popen:
    """Another process holding the lock on `pid`, as a second recorder would."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(pid), str(directory)],
                         stdout=subprocess.PIPE, text=True, env=ENV)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_a_second_lock_on_one_target_is_refused_in_one_line(tmp_path):
    target, _ = start("sleep", 30)
    holder = hold(target.pid, tmp_path)
    try:
        with pytest.raises(TargetError) as e:
            TargetLocks([target.pid], tmp_path)
        message = str(e.value)
        assert "\n" not in message
        assert f"process {target.pid} is already being recorded by damo (pid {holder.pid}" \
            in message and "--force" in message
        # Another target is free, and a refused set takes none of its locks.
        other, _ = start("sleep", 30)
        with pytest.raises(TargetError):
            TargetLocks([other.pid, target.pid], tmp_path)
        with TargetLocks([other.pid], tmp_path):
            pass
        other.kill()
        other.wait()
    finally:
        holder.kill()
        holder.wait()
        target.kill()
        target.wait()


def test_the_lock_of_a_killed_recorder_is_taken_over(tmp_path):
    target, _ = start("sleep", 30)
    try:
        holder = hold(target.pid, tmp_path)
        holder.send_signal(signal.SIGKILL)  # no chance to clean up: the file stays
        holder.wait()
        [stale] = list(tmp_path.iterdir())
        assert stale.read_text().strip() == str(holder.pid)
        with TargetLocks([target.pid], tmp_path) as locks:
            assert stale.read_text().strip() == str(os.getpid())
            assert len(locks._held) == 1
        assert not stale.exists()  # released: removed
    finally:
        target.kill()
        target.wait()


def test_lock_files_of_ended_targets_are_swept(tmp_path):
    target, _ = start("sleep", 30)
    holder = hold(target.pid, tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    target.kill()
    target.wait()
    [stale] = list(tmp_path.iterdir())
    held = tmp_path / "pid-1-1.lock"  # an ended target whose recorder still runs: kept
    other = hold(1, tmp_path)
    os.rename(next(p for p in tmp_path.iterdir() if p != stale), held)
    try:
        with TargetLocks([], tmp_path):
            assert not stale.exists() and held.exists()
    finally:
        other.kill()
        other.wait()


def test_a_reused_pid_is_another_target(tmp_path, monkeypatch):
    # The lock's name holds the process's start time: a new process with an old pid is free.
    target, _ = start("sleep", 30)
    try:
        with TargetLocks([target.pid], tmp_path):
            from damo.linux import observers

            real = observers.process_start_ticks
            monkeypatch.setattr(observers, "process_start_ticks", lambda pid: real(pid) + 1)
            with TargetLocks([target.pid], tmp_path):
                pass
    finally:
        target.kill()
        target.wait()


def test_kdamond_on_physical_memory_is_noted_read_only(tmp_path):
    off = make_tree(tmp_path / "off", nr_kdamonds=1, state="off")
    assert physical_kdamonds(off) == [] and kdamond_note(off) is None
    on = make_tree(tmp_path / "on", nr_kdamonds=1, state="on")
    before = snapshot(on)
    assert physical_kdamonds(on) == [(0, 4242, 500000)]
    note = kdamond_note(on)
    assert "kdamond 0, pid 4242" in note and "every 500 ms" in note and "read low" in note
    assert snapshot(on) == before
    assert kdamond_note(tmp_path / "nothing") is None


def test_a_second_damo_record_of_a_pid_says_so_and_exits_1(tmp_path):
    need_bpf()
    target, _ = start("half", 16, 60)
    first = record(str(target.pid), "--duration", "6", "-o", "first.data", cwd=tmp_path)
    try:
        started(tmp_path / "first.data", first)
        second = record(str(target.pid), "--duration", "1", "-o", "second.data", cwd=tmp_path)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1, err
        assert err.count("\n") == 1 and err.startswith(
            f"damo: error: process {target.pid} is already being recorded by damo (pid "
            f"{first.pid}"), err
        assert not (tmp_path / "second.data").exists()
        forced = record(str(target.pid), "--duration", "1", "-o", "forced.data", "--force",
                        cwd=tmp_path)
        _, err = forced.communicate(timeout=60)
        assert forced.returncode == 0, err
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        # The first run is over: its lock went with it.
        third = record(str(target.pid), "--duration", "1", "-o", "third.data", cwd=tmp_path)
        _, err = third.communicate(timeout=60)
        assert third.returncode == 0, err
    finally:
        first.kill()
        target.kill()
        target.wait()


def test_summary_notes_the_machines_kdamond(tmp_path):
    need_bpf()
    kd = running_kdamond()
    if kd is None or not any(c.operations == "paddr" for c in kd.contexts):
        pytest.skip("no kernel DAMON monitors the physical address space here")
    before = {p: p.read_text() for p in damon_sysfs.ADMIN_DIR.rglob("state")}
    target, _ = start("sleep", 30)
    try:
        p = record(str(target.pid), "--duration", "1", cwd=tmp_path)
        _, err = p.communicate(timeout=60)
    finally:
        target.kill()
        target.wait()
    assert p.returncode == 0, err
    assert err.count("\n") == 1
    assert f"kernel DAMON (kdamond {kd.index}, pid {kd.pid}) monitored the physical " \
        "address space" in err and "access counts may read low" in err
    assert {p: p.read_text() for p in damon_sysfs.ADMIN_DIR.rglob("state")} == before
