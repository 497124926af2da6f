"""Other observers of a target's Accessed bits: another `damo record`, the kernel's own DAMON.

Every observer clears the Accessed bits it samples, so the bits one observer clears
are those another was about to read: both count fewer accesses than happened.

- Two `damo record` runs of one process: a lock per target makes the second refuse
  (`TargetLocks`), unless the user forces it. The lock is an flock(2) on a file under
  /run/damo named after the pid and the process's start time (a reused pid is another
  process). The kernel drops an flock when its holder dies, however it dies, so a
  recorder killed with SIGKILL leaves a file whose lock the next recorder takes over.
- A kdamond monitoring the physical address space (`paddr`) samples every process's
  pages too; damo can only read its sysfs files (never write them: it is not damo's)
  and say in the run's summary that counts may read low (`kdamond_note`).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from damo.errors import TargetError

LOCK_DIRS = (Path("/run/damo"), )


def lock_dir() -> Path:
    """Where target locks live: /run/damo (root), else the user's runtime directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    candidates = [*LOCK_DIRS, *([Path(runtime) / "damo"] if runtime else []),
                  Path(tempfile.gettempdir()) / f"damo-{os.geteuid()}"]
    for d in candidates:
        try:
            d.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK | os.X_OK):
            return d
    raise TargetError("no directory for target locks is writable (/run/damo, "
                      "$XDG_RUNTIME_DIR/damo, the temporary directory): use --force to "
                      "record without a lock")


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (/proc/PID/stat field 22)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[19])


class TargetLocks:
    """Exclusive locks on the given pids for the life of this object (or until `release`)."""

    def __init__(self, pids: list[int], directory: Path | None = None):
        self.directory = directory if directory is not None else lock_dir()
        self._held: list[tuple[Path, int]] = []
        self._sweep()
        try:
            for pid in pids:
                self._take(pid)
        except BaseException:
            self.release()
            raise

    def _sweep(self) -> None:
        """Remove the lock files of ended targets that no recorder holds (SIGKILLed ones)."""
        for path in self.directory.glob("pid-*-*.lock"):
            try:
                _, pid, start = path.stem.split("-")
                if process_start_ticks(int(pid)) == int(start):
                    continue  # the target lives: its lock stays (held or not)
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except (ValueError, OSError):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
            except OSError:
                pass  # held: its recorder removes it
            finally:
                os.close(fd)

    def _path(self, pid: int) -> Path:
        return self.directory / f"pid-{pid}-{process_start_ticks(pid) or 0}.lock"

    def _take(self, pid: int) -> None:
        path = self._path(pid)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise TargetError(
                    f"process {pid} is already being recorded by damo (pid {holder}; lock "
                    f"{path}): two recorders clear each other's Accessed bits and both read "
                    "low; --force records it anyway") from None
            except OSError:
                os.close(fd)
                raise
            # The holder before us may have removed the file between our open and our lock:
            # a lock on a removed file guards nothing, so lock the file that is there now.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        # Ours now, whoever held it before (a dead recorder's lock is free): say who holds it.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._held.append((path, fd))

    def release(self) -> None:
        """Give the locks up; the files go too (a waiting run locks a file of its own)."""
        for path, fd in self._held:
            try:
                path.unlink()
            except OSError:
                pass
            os.close(fd)
        self._held = []

    def __enter__(self) -> TargetLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def physical_kdamonds(admin: Path | None = None) -> list[tuple[int, int | None, int]]:
    """Running kdamonds with a `paddr` context, read-only: (index, pid, sample_us) each."""
    from damo.linux import damon_sysfs

    try:
        kdamonds = damon_sysfs.read_kdamonds(admin if admin is not None else
                                             damon_sysfs.ADMIN_DIR)
    except Exception:  # noqa: BLE001 - no DAMON sysfs, or not readable: none to tell of
        return []
    return [(kd.index, kd.pid, ctx.sample_us) for kd in kdamonds if kd.running
            for ctx in kd.contexts if ctx.operations == "paddr"]


def kdamond_note(admin: Path | None = None) -> str | None:
    """A clause for the run's summary when kernel DAMON samples physical memory beside damo."""
    found = physical_kdamonds(admin)
    if not found:
        return None
    index, pid, sample_us = found[0]
    return (f"kernel DAMON (kdamond {index}, pid {pid}) monitored the physical address space "
            f"beside damo, clearing the Accessed bits it samples every {sample_us / 1000:g} ms: "
            "access counts may read low (docs/recording.md, \"Two observers\")")
