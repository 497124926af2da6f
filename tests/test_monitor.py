"""`damo monitor`: the live view's parts, its record, and the view in a real terminal (tmux)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from damo.reports import live_view
from tests.conftest import REPO, measured, need_bpf, run_damo

ZIGZAG = REPO / "examples" / "workloads" / "zigzag.toml"
# Percent an aggregation interval of the real-process monitor may be off, loaded: the
# bench/spread maximum with a margin (docs/testing.md); damo validate's default is 15.
LOADED_TOLERANCE = 60


def arr(*values, dtype=np.uint64):
    return np.array(values, dtype=dtype)


def test_idle_tracker_by_hand():
    t = live_view.IdleTracker(start_ns=0)
    s, e = arr(0, 100, 200), arr(100, 200, 300)
    t.saw(s, e, arr(1, 0, 0, dtype=np.uint32))
    t.paint(10)
    t.saw(s, e, arr(0, 0, 3, dtype=np.uint32))
    t.saw(arr(0, 150), arr(150, 300), arr(0, 0, dtype=np.uint32))
    t.paint(20)
    # New regions: 0-150 and 150-300, none accessed now.
    idle = t.idle(arr(0, 150), arr(150, 300), arr(0, 0, dtype=np.uint32), 50)
    assert [(r.start, r.end, r.idle_ns, r.never) for r in idle] == [
        (0, 100, 40, False), (100, 200, 50, True), (200, 300, 30, False)]
    # Accessed regions are not idle; the pieces of one idle region stay apart by idle time.
    idle = t.idle(s, e, arr(0, 5, 0, dtype=np.uint32), 50)
    assert [(r.start, r.end) for r in idle] == [(0, 100), (200, 300)]
    top = live_view.longest_idle(idle + [live_view.Range(400, 500, 0, 99, False)], 2, 1)
    assert [r.start for r in top] == [400, 0]


def test_hottest_wss_and_heat():
    s, e = arr(0, 4096, 8192, 12288), arr(4096, 8192, 12288, 20480)
    nr = arr(5, 5, 0, 20, dtype=np.uint32)
    hot = live_view.hottest(s, e, nr, 5)
    assert [(r.start, r.end, r.nr_accesses) for r in hot] == [(12288, 20480, 20), (0, 8192, 5)]
    assert live_view.wss_bytes(s, e, nr) == 16384
    # 20 KiB in 5 rows of 4 KiB: 5/20, 5/20, 0, 1, 1.
    assert live_view.heat_column(s, e, nr, 5, 20) == pytest.approx([0.25, 0.25, 0, 1, 1])
    assert live_view.heat_char(0) == " " and live_view.heat_char(1.0) == "@"


def test_monitor_without_terminal_prints_frames_and_records_as_record(tmp_path):
    mon = tmp_path / "m.data"
    result = run_damo("monitor", "--ops", "sim", "--seed", "4", str(ZIGZAG), "--duration", "3",
                      "-o", str(mon))
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert out.count("damo monitor  simulated") == 3  # one frame a second
    assert "WSS 200 MiB" in out and "hottest" in out and "longest idle" in out
    assert b"ended by duration" in result.stderr
    rec = tmp_path / "r.data"
    assert run_damo("record", "--ops", "sim", "--seed", "4", str(ZIGZAG), "--duration", "3",
                    "-o", str(rec)).returncode == 0
    assert mon.read_bytes() == rec.read_bytes()  # the view changes nothing of the record
    assert run_damo("validate", "-i", str(mon)).returncode == 0


def test_monitor_options(tmp_path):
    for bad in (["--refresh", "-1"], ["--top", "0"], ["--ops", "kernel"], ["--format", "x"]):
        result = run_damo("monitor", *bad, "--ops" if bad[0] != "--ops" else "--top",
                          "sim" if bad[0] != "--ops" else "3", str(ZIGZAG))
        assert result.returncode == 2, (bad, result.stderr)
        assert result.stderr.count(b"\n") == 1
    assert not list(tmp_path.iterdir())


class Tmux:
    """A tmux server of this test's own, one window 100 x 40."""

    def __init__(self, tmp: Path):
        if shutil.which("tmux") is None:
            pytest.skip("needs tmux (scripts/setup.sh installs it)")
        import stat

        if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
            # tmux's server cannot daemonize then (seen when a tool renamed it away).
            pytest.skip("/dev/null is not a character device on this machine: tmux cannot start")
        self.base = ["tmux", "-L", f"damo-test-{os.getpid()}-{tmp.name}"]
        self.tmp = tmp

    def start(self, command: str) -> None:
        env = f"PYTHONPATH={REPO} DAMO_CACHE_DIR={os.environ.get('DAMO_CACHE_DIR', '')}"
        script = self.tmp / "run.sh"
        # The shell lives on after a Ctrl-C (its trap is reset for the command it runs).
        script.write_text(f"trap : INT\ncd {self.tmp}\nenv {env} {command} 2> {self.tmp}/err\n"
                          f"echo $? > {self.tmp}/rc\nsleep 600\n")
        subprocess.run([*self.base, "new-session", "-d", "-s", "t", "-x", "100", "-y", "40",
                        f"sh {script}"], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "t"], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never showed; screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "t", *keys], check=True)

    def exit_status(self, timeout: float = 30) -> int:
        rc = self.tmp / "rc"
        deadline = time.monotonic() + timeout
        while not rc.exists() or not rc.read_text().strip():
            assert time.monotonic() < deadline, f"did not end; screen:\n{self.screen()}"
            time.sleep(0.1)
        return int(rc.read_text())

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.close()


def elapsed(screen: str) -> float:
    return float(screen.splitlines()[1].split()[0])


def drive(tmux: Tmux, command: str, key: str = "q") -> str:
    """Start `command`, see it draw and refresh, end it with `key`; the screen after."""
    tmux.start(command)
    first = tmux.wait_for("longest idle")
    assert "damo monitor" in first and "hottest" in first and "heat:" in first
    t0 = elapsed(first)
    deadline = time.monotonic() + 30
    while elapsed(tmux.wait_for("longest idle")) < t0 + 1:  # a later frame replaced it
        assert time.monotonic() < deadline, tmux.screen()
        time.sleep(0.2)
    tmux.keys(key)
    assert tmux.exit_status() == 0, (tmux.tmp / "err").read_text()
    return tmux.screen()


def long_workload(tmp_path: Path) -> Path:
    path = tmp_path / "long.toml"
    path.write_text('[[regions]]\nname = "a"\nsize = "64 MiB"\n\n[[regions]]\nname = "b"\n'
                    'size = "64 MiB"\n\n[[phases]]\nname = "a"\nduration_ms = 3600000\n'
                    'access = ["a"]\n')
    return path


def test_monitor_in_a_terminal_sim(tmux, tmp_path):
    """Draws, refreshes, quits on q (the sim, in virtual time: no root needed)."""
    out = tmp_path / "s.data"
    after = drive(tmux, f"{sys.executable} -m damo.cli monitor --ops sim --seed 1 --refresh 0.5 "
                        f"-o {out} {long_workload(tmp_path)}")
    err = (tmp_path / "err").read_text()
    assert "ended by quit" in err
    assert "damo monitor" in after  # the last frame stays on the screen
    assert run_damo("validate", "-i", str(out)).returncode == 0


def test_monitor_in_a_terminal_real_process(tmux, tmp_path):
    """A real process: names, RSS, q ends it and its record validates."""
    need_bpf()
    out = tmp_path / "p.data"
    target = subprocess.Popen([sys.executable, "-m", "damo.cli", "workload", str(ZIGZAG)],
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        time.sleep(1.0)
        after = drive(tmux, f"{sys.executable} -m damo.cli monitor -o {out} {target.pid}")
    finally:
        target.kill()
        target.wait()
    # The hot 100 MiB regions are anonymous; idle ranges are named by mapping.
    assert "RSS" in after and "[anon]" in after
    assert any(name in after for name in ("[heap]", "[stack]", "python", ".so"))
    err = (tmp_path / "err").read_text()
    assert "ended by quit" in err and f"process {target.pid}" in err
    # Loaded, aggregations wait for their regions' missing checks: the sidecar's wait
    # messages explain those gaps (damo validate takes them off); the spread of the
    # rest and the waits are bench/spread's figures.
    from damo.records.meta import read_meta
    from damo.records.reader import RecordFile
    from damo.reports.validate import spacing

    ends = np.unique(np.concatenate([c.columns().end_ns for c in RecordFile(str(out)).chunks()]))
    measured("monitor_gap_max_unexplained", float(spacing(str(out), ends).max()))
    measured("monitor_waits", sum(m.get("type") == "wait" for m in read_meta(str(out)) or []))
    strict = run_damo("validate", "--json", "-i", str(out))
    problems = json.loads(strict.stdout)["problems"]
    assert {p["kind"] for p in problems} <= {"interval"}, problems  # all else exact
    # An aggregation ends at its deadline whatever damo does in between (tested in
    # test_native_loop.py), but a loaded machine may wake the loop late, with nothing
    # of damo's around it: the intervals within LOADED_TOLERANCE (docs/testing.md).
    loose = run_damo("validate", "--tolerance", str(LOADED_TOLERANCE), "-i", str(out))
    assert loose.returncode == 0, (problems, loose.stdout)


def test_monitor_ctrl_c_in_a_terminal(tmux, tmp_path):
    out = tmp_path / "c.data"
    drive(tmux, f"{sys.executable} -m damo.cli monitor --ops sim -o {out} "
                f"{long_workload(tmp_path)}", key="C-c")
    assert "ended by signal" in (tmp_path / "err").read_text()
    assert run_damo("validate", "-i", str(out)).returncode == 0
