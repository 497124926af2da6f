"""Checks before monitoring real processes: each failure is one actionable line."""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

from damo.errors import PlatformError, TargetError
from damo.linux import bcc_env, btf

TRACEFS = Path("/sys/kernel/tracing")


def check_arch() -> None:
    machine = platform.machine()
    if machine != "x86_64":
        raise PlatformError(f"unsupported architecture {machine}: damo's page-table walk "
                            "supports x86-64 only for now")


def check_root() -> None:
    if os.geteuid() != 0:
        raise PlatformError("damo needs root to load BPF programs and advise other processes: "
                            "run it with sudo")


def check_btf(path: Path = btf.VMLINUX_BTF) -> None:
    if not path.exists():
        raise PlatformError(f"no BTF at {path}: damo needs a kernel built with "
                            "CONFIG_DEBUG_INFO_BTF=y")


def check_bcc() -> None:
    bcc_env.import_bcc()


def _mount_tracefs(target: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"nodev", str(target).encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def check_tracefs(path: Path = TRACEFS, mount: bool = True) -> None:
    """tracefs is mounted at `path` (mounted there now when `mount` and possible)."""
    if (path / "events").is_dir():
        return
    if mount and path.is_dir():
        try:
            _mount_tracefs(path)
        except OSError as e:
            raise PlatformError(f"tracefs is not mounted and mounting it failed ({e.strerror}): "
                                f"run 'mount -t tracefs nodev {path}'") from None
        if (path / "events").is_dir():
            return
    raise PlatformError(f"tracefs is not mounted: run 'mount -t tracefs nodev {path}'")


def check_pid(pid: int) -> None:
    if pid <= 0 or not Path(f"/proc/{pid}").is_dir():
        raise TargetError(f"process {pid} does not exist")


def check_all(pids: list[int] = (), tracefs: bool = False) -> None:
    """Every check the BPF sampler needs, cheapest first; tracefs only for tracepoint users.

    Not bcc: the sampler's compiled programs are cached, and a warm start
    loads them without it (importing bcc maps LLVM, ~40 MiB); compiling says
    in one line when bcc is missing.
    """
    check_arch()
    check_root()
    check_btf()
    if tracefs:
        check_tracefs()
    for pid in pids:
        check_pid(pid)
