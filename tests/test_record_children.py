"""`damo record --include_child_tasks` and `--max-targets` through the CLI (root, bcc):
child processes join as targets of their own, threads do not, the bound holds."""

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import measured

from damo.core.attrs import Attrs
from damo.records.meta import read_meta
from damo.records.reader import read_snapshots
from damo.workload.wss_accuracy import relative_errors

REPO = Path(__file__).parents[1]
DAMO = [sys.executable, "-m", "damo.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the BPF sampler needs root")

# Two 64 MiB regions: both touched, then one at a time (13 s).
WORKLOAD = """
[[regions]]
name = "a"
size = "64 MiB"

[[regions]]
name = "b"
size = "64 MiB"

[[phases]]
name = "both"
duration_ms = 4000
access = ["a", "b"]

[[phases]]
name = "a only"
duration_ms = 3000
access = ["a"]

[[phases]]
name = "b only"
duration_ms = 3000
access = ["b"]

[[phases]]
name = "a again"
duration_ms = 3000
access = ["a"]
"""


def record(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*DAMO, "record", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=ENV, check=False)


def summary_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("damo: recorded")]
    assert len(lines) == 1, err
    return lines[0]


def cpu_share(err: str) -> float:
    return float(re.search(r"damo used ([\d.]+)% of one CPU", err).group(1)) / 100


def targets_joined(data: Path) -> list[dict]:
    return [m for m in read_meta(str(data)) if m["type"] == "target"]


def test_child_is_a_target_and_its_wss_matches_the_truth(tmp_path):
    (tmp_path / "w.toml").write_text(WORKLOAD)
    truth = tmp_path / "truth.jsonl"
    workload = shlex.join([*DAMO, "workload", str(tmp_path / "w.toml"), "--truth", str(truth)])
    # `; true`: the shell cannot exec the workload, it forks it.  At default
    # settings: the CPU budget lengthens the intervals (fewer snapshots), and
    # what they show of the child must match the truth.
    p = record("--include_child_tasks", f"{workload}; true", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "the command exited with status 0" in p.stderr
    data = tmp_path / "damon.data"
    meta = read_meta(str(data))
    shell = meta[0]["targets"][0]["pid"]
    assert meta[0]["include_child_tasks"] is True and meta[0]["max_targets"] == 64
    joined = targets_joined(data)
    # The shell's child, whose cmdline by now is the workload's (it exec'ed right after fork).
    children = [m for m in joined if m["parent"] == shell]
    assert children, joined
    child = children[0]["id"]
    snaps = read_snapshots(str(data))
    assert not snaps.warnings
    assert {shell, child} <= set(snaps.target_id.tolist())
    errors = relative_errors(str(data), str(truth), Attrs(), check_nr_regions=False,
                             target_id=child)
    # 7 s of workload after a 2 s warm-up: on a loaded machine the budget reaches its
    # longest aggregation interval (1.6 s), so only a few snapshots (5 seen in a full run).
    assert len(errors) >= 3
    median, within = np.median(errors), np.mean(errors <= 0.10)
    print(f"child WSS: median error {median:.2%}, within 10% {within:.1%} "
          f"({summary_line(p.stderr)})")
    assert median <= 0.10
    assert within >= 0.75
    assert "and 1 child process" in summary_line(p.stderr)
    # without the flag, the same command says where the work may be, and records the shell only
    q = record("-o", "shell.data", f"{workload}; true", cwd=tmp_path)
    assert q.returncode == 0, q.stderr
    notes = [line for line in q.stderr.splitlines() if "--include_child_tasks" in line]
    assert len(notes) == 1 and "child process" in notes[0], q.stderr
    assert set(read_snapshots(str(tmp_path / "shell.data")).target_id.tolist()) == \
        {read_meta(str(tmp_path / "shell.data"))[0]["targets"][0]["pid"]}


def test_fifty_short_lived_children(tmp_path):
    """A target forking 50 children in a row, each living 0.25 s (2.5 aggregation intervals)."""
    pids = tmp_path / "pids"
    loop = f"for i in $(seq 50); do sleep 0.25 & echo $! >> {pids}; wait; done"
    t0 = time.monotonic()
    # Every sample (--max-cpu 0): children join at aggregation boundaries, and
    # the default budget lengthens the aggregation interval 4-16x on this host,
    # past these children's lives (docs/recording.md, "The CPU budget").
    p = record("--include_child_tasks", "--max-cpu", "0", loop, cwd=tmp_path)
    wall = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("\n") == 1, p.stderr  # the summary, no error, no note
    sleeps = [int(x) for x in pids.read_text().split()]
    assert len(sleeps) == 50
    data = tmp_path / "damon.data"
    snaps = read_snapshots(str(data))
    assert not snaps.warnings
    recorded = set(snaps.target_id.tolist())
    # 50 of 50 in each of 20 runs beside a CPU hog (bench/spread); a boundary delayed past a
    # child's whole life by the scheduler may miss one: 2 are allowed (docs/testing.md).
    seen = set(sleeps) & recorded
    caught = measured("children_caught_of_50", len(seen))
    assert caught >= 48, sorted(set(sleeps) - recorded)
    meta = read_meta(str(data))
    ended = {m["id"] for m in meta if m["type"] == "target_end"}
    assert seen <= ended
    # An ended child is in no later record; at most a few processes at once.
    last = {tid: snaps.end_ns[snaps.target_id == tid].max() for tid in seen}
    ends = {m["id"]: m["time_ns"] for m in meta if m["type"] == "target_end"}
    assert all(last[tid] <= ends[tid] for tid in seen)
    per_record = np.unique(snaps.end_ns, return_counts=True)[1]
    assert per_record.max() <= 4
    # damo kept up: one record per aggregation interval throughout, at a bounded CPU cost.
    gaps = np.diff(np.unique(snaps.end_ns)) / 1e9
    assert measured("children_gap_p99_s", np.percentile(gaps, 99)) < 0.15
    share = cpu_share(p.stderr)
    print(f"50 children: damo CPU {share:.1%} of one core over {wall:.1f} s "
          f"({summary_line(p.stderr)})")
    assert share < 0.5


def test_threads_are_not_children(tmp_path):
    # Four threads sleep; a fifth forks a child (found at the next all-threads scan).
    threads = ("import subprocess, threading, time\n"
               "ts = [threading.Thread(target=time.sleep, args=(3,)) for _ in range(4)]\n"
               "ts.append(threading.Thread(target=subprocess.run, args=(['sleep', '2.5'],)))\n"
               "[t.start() for t in ts]\n[t.join() for t in ts]\n")
    (tmp_path / "threads.py").write_text(threads)
    p = record("--include_child_tasks", shlex.join([sys.executable, str(tmp_path / "threads.py")]),
               cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    data = tmp_path / "damon.data"
    meta = read_meta(str(data))
    (child,) = targets_joined(data)
    assert child["parent"] == meta[0]["targets"][0]["pid"] and child["cmdline"][0] == "sleep"
    assert set(read_snapshots(str(data)).target_id.tolist()) == \
        {meta[0]["targets"][0]["pid"], child["id"]}
    assert "and 1 child process " in summary_line(p.stderr)


def test_max_targets_bound(tmp_path):
    # Five children at once, three processes at most: the shell and two children.
    p = record("--include_child_tasks", "--max-targets", "3",
               "for i in 1 2 3 4 5; do sleep 1.5 & done; wait", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    notes = [line for line in p.stderr.splitlines() if "--max-targets" in line]
    assert len(notes) == 2, p.stderr  # the note when the bound is hit, and the summary
    assert notes[0].startswith("damo: 3 processes monitored, as many as --max-targets allows")
    # Usually 2 children in and 3 kept out.  Once, on a loaded machine, 3 were
    # in and 2 out (a child left early and let one more in; not explained yet):
    # the bound itself is what the records below check.
    m = re.search(r"(\d+) child process(?:es)? \((\d+) more not monitored: --max-targets 3",
                  summary_line(p.stderr))
    assert m is not None and int(m.group(1)) + int(m.group(2)) == 5, summary_line(p.stderr)
    snaps = read_snapshots(str(tmp_path / "damon.data"))
    assert np.unique(snaps.end_ns, return_counts=True)[1].max() == 3
    assert len(set(snaps.target_id.tolist())) == 3


def test_stopping_early_ends_the_commands_children(tmp_path):
    p = record("--include_child_tasks", "--duration", "1", "sleep 30; true", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "killed by signal 15" in p.stderr
    (child,) = targets_joined(tmp_path / "damon.data")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{child['id']}").exists():
        if Path(f"/proc/{child['id']}/stat").read_text().split(")")[1].split()[0] == "Z":
            break  # ended, not yet reaped by its new parent
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{child['id']}").exists(), "the child outlived the recording"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--include_child_tasks", "--ops", "sim", "x.toml"],
         "damo: error: --include_child_tasks goes with the vaddr operations, not sim"),
        (["--max-targets", "0", "1"], "damo: error: --max-targets must be at least 1, not 0"),
        (["--max-targets", "1", "1", str(os.getpid())],
         "damo: error: 2 pids to monitor, more than --max-targets (1)"),
    ],
)
def test_bad_child_options(tmp_path, args, message):
    p = record(*args, cwd=tmp_path, timeout=60)
    assert p.returncode == 2
    assert p.stderr.startswith(message) and p.stderr.count("\n") == 1, p.stderr
    assert list(tmp_path.iterdir()) == []


def test_children_there_at_the_start_join_at_once(tmp_path):
    # A "server" with two workers already running; damo given only its pid.
    code = ("import subprocess, sys, time\n"
            "ws = [subprocess.Popen(['sleep', '30']) for _ in range(2)]\n"
            "print(*[w.pid for w in ws], flush=True); time.sleep(30)\n")
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(x) for x in server.stdout.readline().split()]
        p = record("--include_child_tasks", "--duration", "1", str(server.pid), cwd=tmp_path)
    finally:
        server.kill()
        server.wait()
    assert p.returncode == 0, p.stderr
    snaps = read_snapshots(str(tmp_path / "damon.data"))
    first = snaps.target_id[snaps.end_ns == snaps.end_ns.min()].tolist()
    assert sorted(first) == sorted([server.pid, *workers])
    meta = read_meta(str(tmp_path / "damon.data"))
    assert sorted(t["pid"] for t in meta[0]["targets"]) == sorted([server.pid, *workers])
    assert {m["id"]: m["parent"] for m in meta if m["type"] == "target"} == \
        {w: server.pid for w in workers}
    # damo did not start them: the duration's end leaves them running
    assert all(Path(f"/proc/{w}").exists() for w in workers)
    for w in workers:
        os.kill(w, 9)


def test_a_child_that_execs_starts_over(tmp_path):
    # The subshell joins as a copy of the shell, then execs python.
    script = tmp_path / "late.py"
    script.write_text("import time\nb = bytearray(32 << 20)\nt = time.time()\n"
                      "while time.time() - t < 2.5:\n    b[::4096] = b'x' * (len(b) // 4096)\n")
    p = record("--include_child_tasks",
               f"(sleep 0.5; exec {shlex.quote(sys.executable)} {shlex.quote(str(script))}); true",
               cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    data = tmp_path / "damon.data"
    meta = read_meta(str(data))
    shell = meta[0]["targets"][0]["pid"]
    subshell = next(m["id"] for m in meta if m["type"] == "target" and m["parent"] == shell)
    maps = [m for m in meta if m["type"] == "maps" and m["target_id"] == subshell]
    paths = [{entry[4] for entry in m["maps"]} for m in maps]  # the path is field 4
    assert not any(sys.executable in ps or "python" in " ".join(ps) for ps in paths[:1])
    assert any("python" in " ".join(ps) for ps in paths[1:]), paths
    # after the exec its regions cover python's busy 32 MiB: hot in the later records
    snaps = read_snapshots(str(data))
    hot = [int(((e - s) * (n > 0)).sum()) for i in np.flatnonzero(snaps.target_id == subshell)
           for s, e, n in [tuple(a.astype(np.int64) for a in snaps.regions(i))]]
    assert max(hot) >= 24 << 20, hot
