"""`damo workload`: real processes, checked from outside (maps, pagemap, Accessed bits)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from damo.workload.load import parse
from damo.workload.truth import read_truth
from tests.conftest import measured, need_bpf

PAGE = 4096
MIB = 1 << 20

LAYOUT = """\
[[regions]]
name = "a"
size = "2 MiB"
gap_before = "16 MiB"

[[regions]]
name = "b"
size = "1 MiB"
gap_before = "64 MiB"

[[regions]]
name = "c"
size = "3 KiB"
"""

# c is never accessed: its pages are present only because of the fault-in.
ONCE = LAYOUT + """
[[phases]]
name = "a warm"
duration_ms = 300
access = ["a"]

[[phases]]
name = "b hot"
duration_ms = 400
access = [{ region = "b", probability = 0.5 }, "a"]

[[phases]]
name = "idle"
duration_ms = 200
access = []
"""

LOOPED = "loop = true\n" + LAYOUT + """
[[phases]]
name = "one"
duration_ms = 150
access = ["a"]

[[phases]]
name = "two"
duration_ms = 150
access = ["b"]
"""


def _workload(tmp_path: Path, text: str) -> str:
    path = tmp_path / "w.toml"
    path.write_text(text)
    return str(path)


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "damo.cli", "workload", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    """Wait until the truth file holds `n` whole lines."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"damo workload exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"no {n} truth lines within {timeout} s")


def _maps(pid: int) -> list[tuple[int, int]]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            lo, hi = line.split()[0].split("-")
            out.append((int(lo, 16), int(hi, 16)))
    return out


def _covered(maps: list[tuple[int, int]], start: int, end: int) -> int:
    """Bytes of `[start, end)` that some mapping covers."""
    return sum(max(0, min(hi, end) - max(lo, start)) for lo, hi in maps)


def _vm_flags(pid: int, addr: int) -> list[str]:
    """The VmFlags of the mapping holding `addr` (/proc/PID/smaps)."""
    inside = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split()[0]
            if "-" in first and not first.endswith(":"):
                lo, hi = (int(x, 16) for x in first.split("-"))
                inside = lo <= addr < hi
            elif inside and first == "VmFlags:":
                return line.split()[1:]
    return []


def _present(pid: int, start: int, end: int) -> np.ndarray:
    """Per page of `[start, end)`: present in memory (/proc/PID/pagemap bit 63)."""
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        entries = np.frombuffer(f.read((end - start) // PAGE * 8), dtype=np.uint64)
    return (entries >> np.uint64(63)) == 1


def test_layout_pages_and_truth(tmp_path):
    truth = tmp_path / "t.jsonl"
    started = time.monotonic_ns()
    proc = _start(_workload(tmp_path, ONCE), "--truth", str(truth), "--stats")
    try:
        _wait_lines(truth, 1, proc)
        regions = {r.name: r for r in read_truth(str(truth))[0].regions}
        a, b, c = regions["a"], regions["b"], regions["c"]
        maps = _maps(proc.pid)
        for r in (a, b, c):
            assert _covered(maps, r.start, r.end) == r.end - r.start, r
            assert _present(proc.pid, r.start, r.end).all(), f"{r.name} not faulted in"
            assert "nh" in _vm_flags(proc.pid, r.start), "transparent huge pages not refused"
        # the gaps are really unmapped, not reserved
        assert _covered(maps, b.start - 64 * MIB, b.start) == 0
        assert _covered(maps, a.start - 16 * MIB, a.start) == 0
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    assert "ticks in" in stderr and "touching" in stderr, stderr

    runs = read_truth(str(truth))
    assert [r.phase for r in runs] == ["a warm", "b hot", "idle"]
    assert runs[0].start_ns > started
    for run, ms in zip(runs, (300, 400, 200), strict=True):
        assert measured("phase_error_ms", abs((run.end_ns - run.start_ns) / 1e6 - ms)) < 50, run
    for prev, run in zip(runs, runs[1:], strict=False):
        assert run.start_ns == prev.end_ns
    # real addresses, page-rounded sizes, gaps, file order
    for run in runs:
        a, b, c = run.regions
        assert [r.name for r in run.regions] == ["a", "b", "c"]
        assert a.start % PAGE == 0 and a.end - a.start == 2 * MIB
        assert b.start - a.end == 64 * MIB and b.end - b.start == MIB
        assert c.start == b.end and c.end - c.start == PAGE
        assert (a.start, b.start, c.start) == tuple(r.start for r in runs[0].regions)
    probs = [[r.probability for r in run.regions] for run in runs]
    assert probs == [[1.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_with_a_complete_truth(tmp_path, sig):
    truth = tmp_path / "t.jsonl"
    proc = _start(_workload(tmp_path, LOOPED), "--truth", str(truth))
    try:
        _wait_lines(truth, 3, proc)
        time.sleep(0.07)  # inside a phase
        sent = time.monotonic_ns()
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert proc.stderr.read() == ""
    runs = read_truth(str(truth))
    assert len(runs) >= 4
    assert [r.phase for r in runs] == (["one", "two"] * len(runs))[: len(runs)]
    for prev, run in zip(runs, runs[1:], strict=False):
        assert run.start_ns == prev.end_ns
    for run in runs[:-1]:
        assert measured("phase_error_ms", abs((run.end_ns - run.start_ns) / 1e6 - 150)) < 50, run
    last = runs[-1]
    # the interrupted phase is cut where the signal arrived
    assert 0 < last.end_ns - last.start_ns < 150e6
    assert measured("signal_cut_error_ms", abs(last.end_ns - sent) / 1e6) < 50


BAD_TOML = '[[regions]]\nname = "a"\nsize = "1 MiB"\n[[phases]]\nname = "p"\n' \
    'duration_ms = 100\naccess = ["nope"]\n'


@pytest.mark.parametrize(
    "case",
    ["missing", "not toml", "unknown region", "truth dir missing", "truth is a dir", "tick 0",
     "too big"],
)
def test_bad_input_one_line_no_file(tmp_path, case):
    good = ONCE
    truth = tmp_path / "t.jsonl"
    args = [_workload(tmp_path, good), "--truth", str(truth)]
    if case == "missing":
        args[0] = str(tmp_path / "absent.toml")
    elif case == "not toml":
        args[0] = _workload(tmp_path, "[[regions]\nname =")
    elif case == "unknown region":
        args[0] = _workload(tmp_path, BAD_TOML)
    elif case == "truth dir missing":
        truth = tmp_path / "no" / "t.jsonl"
        args[2] = str(truth)
    elif case == "truth is a dir":
        truth = tmp_path / "d"
        truth.mkdir()
        args[2] = str(truth)
    elif case == "tick 0":
        args += ["--tick", "0"]
    elif case == "too big":
        args[0] = _workload(tmp_path, good.replace('"2 MiB"', '"64 TiB"'))
    before = sorted(os.listdir(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "damo.cli", "workload", *args],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("damo: error: "), proc.stderr
    assert sorted(os.listdir(tmp_path)) == before


def test_bad_workload_keeps_an_existing_truth(tmp_path):
    truth = tmp_path / "t.jsonl"
    truth.write_text("precious\n")
    proc = subprocess.run(
        [sys.executable, "-m", "damo.cli", "workload", _workload(tmp_path, BAD_TOML),
         "--truth", str(truth)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1 and "unknown region 'nope'" in proc.stderr
    assert truth.read_text() == "precious\n"
    assert not (tmp_path / "t.jsonl.old").exists()


def test_layout_offsets_follow_the_file():
    w = parse(LAYOUT + '[[phases]]\nname = "p"\nduration_ms = 1\naccess = []\n')
    assert [(s.name, lo, hi) for s, lo, hi in w.layout()] == [
        ("a", 16 * MIB, 18 * MIB),
        ("b", 82 * MIB, 83 * MIB),
        ("c", 83 * MIB, 83 * MIB + PAGE),
    ]


# Accessed bits, read and cleared from outside with the BPF page sampler.

TOUCH = """\
[[regions]]
name = "a"
size = "4 MiB"

[[regions]]
name = "b"
size = "4 MiB"
gap_before = "8 MiB"

[[regions]]
name = "c"
size = "4 MiB"

[[phases]]
name = "warm"
duration_ms = 300
access = ["a", "b", "c"]

[[phases]]
name = "a and half of b"
duration_ms = 2500
access = ["a", { region = "b", probability = 0.5 }]

[[phases]]
name = "c only"
duration_ms = 2500
access = ["c"]
"""
TICK_US = 20_000


def _young_after(sampler, addrs: np.ndarray, wait_s: float) -> np.ndarray:
    """Clear the pages' Accessed bits, wait, and say which were accessed since."""
    st = sampler.walk(addrs)
    assert st.present.all()
    young = np.flatnonzero(st.young)
    uncleared = sampler.clear_young(addrs[young], st.leaf_size[young])
    assert not uncleared.any()
    time.sleep(wait_s)
    return sampler.walk(addrs).young


def test_accessed_regions_are_touched_and_others_not(tmp_path):
    need_bpf()
    from damo.sampler.page_sampler import PageSampler

    truth = tmp_path / "t.jsonl"
    proc = _start(_workload(tmp_path, TOUCH), "--truth", str(truth), "--tick", str(TICK_US),
                  "--seed", "1")
    try:
        _wait_lines(truth, 1, proc)  # "warm" is over: "a and half of b" runs for 2.5 s
        first = read_truth(str(truth))[0]
        pages = {
            r.name: np.arange(r.start, r.end, PAGE, dtype=np.uint64) for r in first.regions
        }
        with PageSampler(proc.pid) as sampler:
            addrs = np.concatenate([pages["a"], pages["b"], pages["c"]])
            n = len(pages["a"])
            windows = [_young_after(sampler, addrs, TICK_US / 1e6) for _ in range(2)]
            _wait_lines(truth, 2, proc)
            then = _young_after(sampler, addrs, TICK_US / 1e6)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    runs = read_truth(str(truth))
    assert [r.phase for r in runs] == ["warm", "a and half of b", "c only"]
    assert then is not None
    for young in windows:
        a, b, c = young[:n], young[n : 2 * n], young[2 * n :]
        assert a.mean() > 0.99
        # each page with chance 0.5 per tick; the window holds one or two ticks
        assert 0.35 < measured("half_b_young_mean", b.mean()) < 0.9, b.mean()
        assert not c.any()
    # fresh draws each tick: the two windows saw different pages of b
    b1, b2 = windows[0][n : 2 * n], windows[1][n : 2 * n]
    assert (b1 != b2).mean() > 0.1
    assert not then[: 2 * n].any()
    assert then[2 * n :].mean() > 0.99
