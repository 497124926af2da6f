"""`damo record` when its files cannot be written on: a full disk, a read-only
filesystem, a file size limit, a removed file (root, bcc; the filesystems are
mounted by the tests and unmounted whatever happens).

Each ends monitoring cleanly: exit status 1, the summary and then one error
line naming the file, no traceback; the record ends at its last whole record
(the reader warns of nothing) and the sidecar at its last whole message.
"""

import contextlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
from proc_targets import shell_command, start

from damo.records.reader import read_snapshots

REPO = Path(__file__).parents[1]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the BPF sampler and mount need root")
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
# Many small regions and short windows: records of a few KiB, many per second.
FAST = ["-a", "20000", "-n", "200", "-m", "400"]


def record(*args: str, cwd: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "damo.cli", "record", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, **kw)


def umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        umount(path)


@contextlib.contextmanager
def ext4_remount_ro_on_error(tmp_path: Path):
    """An ext4 image on a loop device mounted errors=remount-ro; yields (dir, trigger path)."""
    for tool in ("mkfs.ext4", "losetup"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    image, mnt = tmp_path / "fs.img", tmp_path / "mnt"
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    mnt.mkdir()
    p = subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mnt)],
                       capture_output=True, text=True, check=False)
    if p.returncode:
        pytest.skip(f"cannot mount an ext4 image on a loop device: {p.stderr.strip()}")
    try:
        dev = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mnt)], capture_output=True,
                             text=True, check=True).stdout.strip()
        trigger = Path("/sys/fs/ext4") / os.path.basename(dev) / "trigger_fs_error"
        if not trigger.exists():
            pytest.skip(f"this kernel has no {trigger} to make ext4 fail")
        yield mnt, trigger
    finally:
        umount(mnt)  # a loop device mounted with -o loop is detached with it


def wait_for_size(path: Path, size: int, p: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        if path.exists() and path.stat().st_size >= size:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {size} bytes")


def stop_after(p: subprocess.Popen, path: Path, size: int, fault) -> str:
    """Let the run write `size` bytes to `path`, cause `fault()`, and return its stderr."""
    try:
        wait_for_size(path, size, p)
        fault()
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    return err


def check_error(err: str, p: subprocess.Popen, *messages: str) -> str:
    """Exit status 1, the summary and one error line (one of `messages`); returns the summary."""
    assert p.returncode == 1, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 2, err
    summary, error = lines
    assert error in [f"damo: error: cannot write {m}" for m in messages], err
    assert summary.startswith("damo: recorded process") and "ended by write error" in summary
    return summary


def check_cut_clean(data: Path, err: str, p: subprocess.Popen, *messages: str,
                    fsize_limit: int | None = None) -> int:
    """The run's exit and files after a write fault; returns the number of records kept."""
    summary = check_error(err, p, *messages)
    kept = int(re.search(r"(\d+) records \(\d+ KiB\) kept in", summary).group(1))
    snaps = read_snapshots(str(data))
    assert not snaps.warnings
    assert len(set(snaps.end_ns.tolist())) == kept
    raw = subprocess.run([sys.executable, "-m", "damo.cli", "report", "raw", "-i", str(data)],
                         capture_output=True, text=True, env=ENV, check=False)
    assert raw.returncode == 0 and raw.stderr == "", raw.stderr
    # The sidecar: whole messages only, to its last byte.
    blob = Path(str(data) + ".meta").read_bytes()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(blob)
    messages = list(unpacker)
    assert unpacker.tell() == len(blob)
    assert messages[0]["type"] == "start"
    if messages[-1]["type"] != "end":
        # Only the sidecar's own file refusing a message may leave the end out: the fault
        # was the sidecar's (cut back to its last whole message), or its filesystem is full
        # or read-only, or the size limit was reached by the sidecar too.
        assert f"cannot write {data}.meta: " in err.splitlines()[-1] \
            or sidecar_refused(Path(str(data) + ".meta"), len(blob), fsize_limit), messages[-1]
    else:
        assert messages[-1]["reason"] == "write error"
        assert messages[-1]["nr_records"] == kept
    return kept


def sidecar_refused(meta: Path, size: int, fsize_limit: int | None = None) -> bool:
    """Whether the sidecar's filesystem takes no more (full or read-only), or it is at the limit."""
    # An end message is ~200 bytes: within that of the size limit, it cannot be written.
    if fsize_limit is not None and size > fsize_limit - 512:
        return True
    probe = meta.parent / ".probe"
    try:
        with open(probe, "wb") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return True
    probe.unlink()
    return False


def test_full_disk(tmp_path):
    target, _ = start("half", 16, 120)
    try:
        with tmpfs(tmp_path / "small", "256k") as mnt:
            # The user's own file there stays as it is.
            (mnt / "filler").write_bytes(b"x" * 180_000)
            data = mnt / "run.data"
            p = record(str(target.pid), "-o", str(data), *FAST, cwd=tmp_path)
            try:
                out, err = p.communicate(timeout=120)
            finally:
                p.kill()
            kept = check_cut_clean(data, err, p, f"{data}: No space left on device")
            assert kept >= 3
            assert (mnt / "filler").read_bytes() == b"x" * 180_000
            assert sorted(os.listdir(mnt)) == ["filler", "run.data", "run.data.meta"]
        assert target.poll() is None  # a process damo did not start is left alone
    finally:
        target.kill()
        target.wait()


def test_full_disk_stops_a_started_command_as_sigint_would(tmp_path):
    with tmpfs(tmp_path / "small", "256k") as mnt:
        (mnt / "filler").write_bytes(b"x" * 180_000)
        data = mnt / "run.data"
        p = record(shell_command(tmp_path, "half", 16, 120), "-o", str(data), *FAST,
                   cwd=tmp_path)
        try:
            out, err = p.communicate(timeout=120)
        finally:
            p.kill()
        # Both files are on it: whichever is written next fails first (the sidecar gets
        # the ages of every record, and budget messages).
        check_cut_clean(data, err, p, f"{data}: No space left on device",
                        f"{data}.meta: No space left on device")
        assert "the command was killed by signal 15" in err


def test_filesystem_gone_read_only(tmp_path):
    target, _ = start("half", 16, 120)
    try:
        with ext4_remount_ro_on_error(tmp_path) as (mnt, trigger):
            data = mnt / "run.data"
            p = record(str(target.pid), "-o", str(data), *FAST, cwd=tmp_path)
            # ext4 remounts itself read-only
            err = stop_after(p, data, 20_000, lambda: trigger.write_text("damo test\n"))
            # Both files are on it: whichever is written next fails first (the
            # sidecar gets a message whenever the CPU budget changes its level).
            kept = check_cut_clean(data, err, p, f"{data}: Read-only file system",
                                   f"{data}.meta: Read-only file system")
            assert kept >= 3
    finally:
        target.kill()
        target.wait()


def test_file_size_limit(tmp_path):
    # RLIMIT_FSIZE: the write fails with EFBIG (Python ignores SIGXFSZ).
    target, _ = start("half", 16, 120)
    data = tmp_path / "run.data"
    try:
        p = record(str(target.pid), "-o", str(data), *FAST, cwd=tmp_path,
                   preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                         (40_000, 40_000)))
        out, err = p.communicate(timeout=120)
    finally:
        target.kill()
        target.wait()
    check_cut_clean(data, err, p, f"{data}: File too large", fsize_limit=40_000)
    assert data.stat().st_size <= 40_000


def test_record_file_removed(tmp_path):
    target, _ = start("half", 16, 120)
    data = tmp_path / "run.data"
    try:
        p = record(str(target.pid), "-o", str(data), *FAST, cwd=tmp_path)
        err = stop_after(p, data, 10_000, data.unlink)
    finally:
        target.kill()
        target.wait()
    check_error(err, p, f"{data}: the file was removed")
    assert not data.exists()
    meta = Path(str(data) + ".meta").read_bytes()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(meta)
    messages = list(unpacker)
    assert messages[-1]["type"] == "end" and messages[-1]["error"].endswith("was removed")


def test_sidecar_removed(tmp_path):
    # A target whose mappings change all the time: the sidecar is written every update.
    target, _ = start("churn", 60)
    data = tmp_path / "run.data"
    meta = Path(str(data) + ".meta")
    try:
        p = record(str(target.pid), "-o", str(data), cwd=tmp_path)
        err = stop_after(p, data, 5_000, meta.unlink)
    finally:
        target.kill()
        target.wait()
    summary = check_error(err, p, f"{meta}: the file was removed")
    kept = int(re.search(r"(\d+) records \(\d+ KiB\) kept in", summary).group(1))
    snaps = read_snapshots(str(data))
    assert not snaps.warnings and len(snaps) == kept >= 3
