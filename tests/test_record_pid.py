"""`damo record PID...` and `damo record "COMMAND"` through the CLI (root, bcc)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from proc_targets import shell_command, start

from damo.core.attrs import Attrs
from damo.core.context import PAGE_SIZE
from damo.ops.common import monitored_ranges
from damo.ops.vaddr import NOT_VMAS
from damo.records.meta import read_meta
from damo.records.reader import read_snapshots

REPO = Path(__file__).parents[1]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the BPF sampler needs root")


def damo(*args, cwd, preamble="", **kw) -> subprocess.Popen:
    """`damo record ARGS` in a fresh interpreter; `preamble` runs first (to simulate a machine)."""
    code = f"{preamble}\nfrom damo.cli import main\nmain()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "record", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, **kw,
    )


def finish(p: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    out, err = p.communicate(timeout=timeout)
    return out, err


def test_pid_record_sidecar_and_summary(tmp_path, monkeypatch):
    target, (addr, size) = start("half", 16, 60)
    # Truly idle: numpy's OpenBLAS worker thread would wake now and then.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    other, _ = start("sleep", 60)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    (tmp_path / "damon.data").write_bytes(b"precious")
    try:
        p = damo(str(target.pid), str(other.pid), "--duration", "2", "-s", "10000", "-a",
                 "200000", cwd=tmp_path)
        out, err = finish(p)
    finally:
        for t in (target, other):
            t.kill()
            t.wait()
    assert p.returncode == 0, err
    assert out == ""
    data = tmp_path / "damon.data"
    assert (tmp_path / "damon.data.old").read_bytes() == b"precious"
    assert data.stat().st_mode & 0o777 == 0o600
    snaps = read_snapshots(str(data))
    assert not snaps.warnings
    assert set(snaps.target_id.tolist()) == {target.pid, other.pid}
    assert 9 <= len(snaps) // 2 <= 11  # 2 s at 200 ms, two targets per record
    # Each target's counts are its own (they share the sampler's arrays, a slice each):
    # the touched half of one is hot; the sleeping one reads cold throughout.  (Not
    # all of the half every time: with 20 samples per window, DAMON's merge threshold
    # can keep a few MiB of hot memory inside a big region that reads cold.)
    hot, asleep = [], []
    for i in range(2, len(snaps)):
        s, e, n = (a.astype(np.int64) for a in snaps.regions(i))
        if snaps.target_id[i] == other.pid:
            asleep.append(int(n.max()))
        else:
            keep = n >= 1
            hot.append(int(np.clip(np.minimum(e[keep], addr + size // 2)
                                   - np.maximum(s[keep], addr), 0, None).sum()))
    assert np.median(hot) >= 0.4 * (size // 2), hot
    assert max(asleep) <= 2, asleep
    # one summary paragraph
    assert err.count("\n") == 1 and err.startswith("damo: recorded process")
    assert "records" in err and "ended by duration" in err and "of one CPU" in err
    meta = read_meta(str(data))
    assert [m["type"] for m in meta][0] == "start" and meta[-1]["type"] == "end"
    first = meta[0]
    assert first["attrs"]["sample_us"] == 10000 and first["attrs"]["aggr_us"] == 200000
    assert first["ops"] == "vaddr" and first["kernel"] == os.uname().release
    assert first["damo_version"] and first["clock"] == "CLOCK_MONOTONIC"
    assert [t["pid"] for t in first["targets"]] == [target.pid, other.pid]
    assert "half" in first["targets"][0]["cmdline"]
    maps = [m for m in meta if m["type"] == "maps"]
    assert {m["target_id"] for m in maps} == {target.pid, other.pid}
    assert any(s <= addr and addr + size <= e for m in maps for s, e, *_ in m["maps"])
    assert meta[-1]["reason"] == "duration" and meta[-1]["nr_records"] == len(snaps) // 2


def test_sigint_leaves_a_valid_record(tmp_path):
    target, _ = start("half", 16, 60)
    try:
        p = damo(str(target.pid), "-o", "s.data", cwd=tmp_path)
        data = tmp_path / "s.data"
        deadline = time.monotonic() + 30
        while (not data.exists() or data.stat().st_size < 3000) and time.monotonic() < deadline:
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = finish(p)
    finally:
        target.kill()
        target.wait()
    assert p.returncode == 0, err
    assert "ended by signal" in err
    snaps = read_snapshots(str(data))
    assert not snaps.warnings and len(snaps) >= 3
    raw = subprocess.run([sys.executable, "-m", "damo.cli", "report", "raw", "-i", str(data)],
                         capture_output=True, text=True, cwd=tmp_path, check=False)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout.count(f"target_id:  {target.pid}\n") == len(snaps)
    assert read_meta(str(data))[-1]["reason"] == "signal"


def test_command_exit_ends_the_record(tmp_path):
    p = damo(shell_command(tmp_path, "sleep", 1.5, 3), cwd=tmp_path)
    out, err = finish(p)
    assert p.returncode == 0, err
    assert "ended by target exit" in err and "the command exited with status 3" in err
    snaps = read_snapshots(str(tmp_path / "damon.data"))
    assert not snaps.warnings and 8 <= len(snaps) <= 20
    meta = read_meta(str(tmp_path / "damon.data"))
    assert meta[0]["command"].endswith("sleep 1.5 3")
    # the record's target id is the pid damo started, which ran python (the shell exec'ed it)
    pid = int(snaps.target_id[0])
    assert meta[0]["targets"][0]["pid"] == pid and "python" in meta[0]["targets"][0]["cmdline"][0]
    assert meta[-1]["reason"] == "target exit"


def test_damo_runs_one_blas_thread_the_command_keeps_its_environment(tmp_path):
    # damo does no linear algebra: numpy's OpenBLAS gets one thread (an idle
    # worker thread costs ~1 % of a core); the command it records must not
    # inherit that.
    p = damo(f"/bin/sh -c 'env > {tmp_path}/env.txt'", cwd=tmp_path)
    out, err = finish(p)
    assert p.returncode == 0, err
    env = (tmp_path / "env.txt").read_text()
    assert "OPENBLAS_NUM_THREADS" not in env and "PYTHONPATH=" in env
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    # damo's own process: one thread (no BLAS worker) while it records
    q = damo(shell_command(tmp_path, "sleep", 2), cwd=tmp_path)
    deadline = time.monotonic() + 10
    threads = None
    while time.monotonic() < deadline and q.poll() is None:
        time.sleep(0.2)
        try:
            if "numpy" in Path(f"/proc/{q.pid}/maps").read_text():
                time.sleep(0.5)
                threads = len(os.listdir(f"/proc/{q.pid}/task"))
                break
        except OSError:
            break
    finish(q)
    assert threads == 1


def test_duration_ends_the_command(tmp_path):
    p = damo(shell_command(tmp_path, "sleep", 60), "--duration", "1", cwd=tmp_path)
    out, err = finish(p)
    assert p.returncode == 0, err
    assert "killed by signal 15" in err


def test_mapping_churn_regions_follow(tmp_path):
    """A target mapping and unmapping memory for 20 s: no errors; regions follow its maps."""
    p = damo(shell_command(tmp_path, "churn", 20), cwd=tmp_path)
    out, err = finish(p)
    assert p.returncode == 0, err
    assert "exited with status 0" in err
    data = str(tmp_path / "damon.data")
    snaps = read_snapshots(data)
    # 200 at the nominal 100 ms; the default CPU budget lengthens the
    # aggregation interval where this host's wake-ups alone cost more than it
    assert not snaps.warnings and len(snaps) >= 20
    maps = [m for m in read_meta(data) if m["type"] == "maps"]
    assert len(maps) >= 10  # the mappings changed again and again
    times = np.array([m["time_ns"] for m in maps])
    checked = 0
    for i in range(len(snaps)):
        # the latest maps read before this snapshot: regions cover its ranges exactly
        k = int(np.searchsorted(times, snaps.end_ns[i], side="right")) - 1
        if k < 0:
            continue
        vmas = [(s, e) for s, e, _, _, path, *_ in maps[k]["maps"] if path not in NOT_VMAS]
        want = monitored_ranges(vmas, PAGE_SIZE, Attrs().min_nr_regions)
        start, end, _ = (a.astype(np.int64) for a in snaps.regions(i))
        # the union of the regions, as ranges
        cuts = np.flatnonzero(start[1:] != end[:-1])
        got = list(zip([start[0], *start[cuts + 1]], [*end[cuts], end[-1]], strict=True))
        assert [(int(s), int(e)) for s, e in got] == want, i
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize(
    "args, message",
    [
        (["999999999"], "damo: error: process 999999999 does not exist"),
        (["no-such-command-xyz --now"], "damo: error: command not found: no-such-command-xyz"),
        (["sleep", "1"], "damo: error: give pids, or one command string in quotes"),
        (["1", "-n", "2"], "damo: error: min_nr_regions (2) must be at least 3"),
        (["1", "-m", "70000"],
         "damo: error: -m/--maxr: the vaddr operations sample at most 65533 regions, not 70000"),
    ],
)
def test_bad_targets_fail_with_one_line_and_no_file(tmp_path, args, message):
    p = damo(*args, cwd=tmp_path)
    out, err = finish(p, 60)
    assert p.returncode != 0
    assert err.startswith(message) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_kernel_thread_is_refused(tmp_path):
    kthreadd = 2
    p = damo(str(kthreadd), cwd=tmp_path)
    out, err = finish(p, 60)
    assert p.returncode == 1
    assert "has no address space" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "preamble, message",
    [
        # no BTF: the preflight's path, pointed elsewhere before it is imported
        (
            "import pathlib, damo.linux.btf as b; b.VMLINUX_BTF = pathlib.Path('/no/btf')",
            "damo: error: no BTF at /no/btf: damo needs a kernel built with CONFIG_DEBUG_INFO_BTF",
        ),
        # no bcc (no system site directory holds it) and nothing compiled yet
        (
            "import damo.linux.bcc_env as e; e.SYSTEM_SITE_DIRS = ()",
            "damo: error: bcc is not installed: install the python3-bpfcc package",
        ),
    ],
    ids=["no-btf", "no-bcc"],
)
def test_missing_platform_parts(tmp_path, tmp_path_factory, monkeypatch, preamble, message):
    monkeypatch.setenv("DAMO_CACHE_DIR", str(tmp_path_factory.mktemp("cold-cache")))
    target, _ = start("sleep", 60)
    try:
        p = damo(str(target.pid), cwd=tmp_path, preamble=preamble)
        out, err = finish(p, 60)
    finally:
        target.kill()
        target.wait()
    assert p.returncode == 1
    assert err.startswith(message) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_recording_keeps_bcc_out_of_the_monitor(tmp_path, tmp_path_factory, monkeypatch, cache):
    # Warm: the compiled programs are cached, and recording neither needs nor
    # imports bcc (none can be found).  Cold: bcc compiles in a child process.
    preamble = "import atexit, sys\n"
    if cache == "warm":
        from damo.sampler.walker import walker

        walker()  # warms the cache this test's damo uses, if no earlier run did
        preamble += "import damo.linux.bcc_env as e; e.SYSTEM_SITE_DIRS = ()\n"
    else:
        monkeypatch.setenv("DAMO_CACHE_DIR", str(tmp_path_factory.mktemp("cold-cache")))
    preamble += "atexit.register(lambda: print('bcc imported:', 'bcc' in sys.modules))"
    target, _ = start("sleep", 60)
    try:
        p = damo(str(target.pid), "--duration", "0.5", cwd=tmp_path, preamble=preamble)
        out, err = finish(p, 60)
    finally:
        target.kill()
        target.wait()
    assert p.returncode == 0, err
    assert out == "bcc imported: False\n"
    assert err.startswith("damo: recorded process") and err.count("\n") == 1, err
    assert len(read_snapshots(str(tmp_path / "damon.data"))) >= 4
    if cache == "cold":  # compiled for the next start
        assert len(list((Path(os.environ["DAMO_CACHE_DIR"]) / "bpf").glob("*.json"))) == 1
    # What starting and running cost, in the sidecar.
    meta = read_meta(str(tmp_path / "damon.data"))
    assert 0 < meta[0]["startup_cpu_s"] and 0 < meta[-1]["cpu_s"]
    assert meta[-1]["peak_rss_bytes"] > 10 << 20


def test_status_line_on_a_terminal(tmp_path):
    import pty

    target, _ = start("sleep", 60)
    leader, follower = pty.openpty()
    try:
        p = subprocess.Popen(
            [sys.executable, "-m", "damo.cli", "record", str(target.pid), "--duration", "1.2"],
            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the damo side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        p.wait(60)
    finally:
        os.close(leader)
        target.kill()
        target.wait()
    assert p.returncode == 0
    text = b"".join(chunks).decode()
    # Redrawn in place (carriage return, erase line), the first word bold, erased
    # before the summary.
    assert "\r\x1b[K\x1b[1mrecording\x1b[0m " in text, text
    assert "snapshots" in text and "damo CPU" in text
    status_end = text.rindex("\r\x1b[K")
    assert text[status_end + 4:].startswith("damo: recorded process"), text


def test_unusable_cache_directory(tmp_path, monkeypatch):
    # The compiled program and the offsets are cached; without a cache directory
    # nothing can be compiled: one line that says what to do.
    monkeypatch.setenv("DAMO_CACHE_DIR", "/proc/no-such-dir/damo")
    target, _ = start("sleep", 60)
    try:
        p = damo(str(target.pid), cwd=tmp_path)
        out, err = finish(p, 60)
    finally:
        target.kill()
        target.wait()
    assert p.returncode == 1
    assert err == ("damo: error: cannot create damo's cache directory /proc/no-such-dir/damo: "
                   "No such file or directory (set DAMO_CACHE_DIR to a writable directory)\n")
    assert list(tmp_path.iterdir()) == []


def test_not_root(tmp_path):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    os.chmod(tmp_path, 0o777)
    p = subprocess.run(
        [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         sys.executable, "-m", "damo.cli", "record", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path)},
    )
    assert p.returncode == 1
    assert p.stderr.startswith("damo: error: damo needs root") and p.stderr.count("\n") == 1, \
        p.stderr
    assert list(tmp_path.iterdir()) == []
