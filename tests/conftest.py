"""Shared test helpers: the conformance fixtures folder and running the `damo` CLI."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
CONFORMANCE = REPO / ".." / "shared" / "conformance"


@pytest.fixture
def conformance_dir() -> Path:
    """The shared conformance fixtures (read only); skips when they are absent."""
    if not (CONFORMANCE / "README.md").is_file():
        pytest.skip(f"conformance fixtures not found at {CONFORMANCE.resolve()}")
    return CONFORMANCE.resolve()


def run_damo(*args: str, cwd: Path | str | None = None,
             stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the `damo` CLI in a fresh interpreter; stdout and stderr are captured as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "damo.cli", *args],
        cwd=cwd, input=stdin, capture_output=True, check=False, timeout=300,
    )


@pytest.fixture
def damo_cli():
    """`run_damo` as a fixture, for tests that prefer fixtures to imports."""
    return run_damo


def need_bpf() -> None:
    """Skip, with the reason, unless this process can load BPF programs and advise others."""
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root (BPF and process_madvise)")
    from damo.errors import PlatformError
    from damo.linux import bcc_env

    try:
        bcc_env.import_bcc()
    except PlatformError as e:
        pytest.skip(str(e))


def running_kdamond():
    """The first kdamond kernel DAMON runs here (read-only), or None."""
    from damo.linux import damon_sysfs

    try:
        return next((kd for kd in damon_sysfs.read_kdamonds() if kd.running), None)
    except Exception:  # noqa: BLE001 - no DAMON sysfs at all, or not readable
        return None
