"""Importing the system bcc from the venv, and compiling with the minimal header tree."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import missing

from damo.errors import PlatformError
from damo.linux import bcc_env


def _need_bcc():
    try:
        return bcc_env.import_bcc()
    except PlatformError as e:
        missing(str(e))


def test_import_from_venv_keeps_system_site_off_the_path():
    # A fresh interpreter, so nothing imported earlier helps. Only bcc's own "not installed"
    # is a reason to skip; any other exception in the child is a failure with its traceback.
    code = textwrap.dedent("""
        import sys
        from damo.errors import PlatformError
        from damo.linux import bcc_env
        try:
            bcc = bcc_env.import_bcc()
        except PlatformError as e:
            print("MISSING", e); raise SystemExit
        print(hasattr(bcc, "BPF"), any("dist-packages" in p for p in sys.path))
    """)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=False)
    assert child.returncode == 0, child.stderr
    out = child.stdout.strip()
    if out.startswith("MISSING"):
        missing(out.removeprefix("MISSING "))
    assert out == "True False"


def test_missing_bcc_names_the_package(monkeypatch):
    monkeypatch.setattr(bcc_env, "SYSTEM_SITE_DIRS", ("/nonexistent",))
    monkeypatch.delitem(sys.modules, "bcc", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "dist-packages" not in p])
    with pytest.raises(PlatformError, match="python3-bpfcc"):
        bcc_env.import_bcc()


def test_header_tree_written_once_into_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMO_CACHE_DIR", str(tmp_path))
    root = bcc_env.header_tree()
    assert root.parent == tmp_path
    for rel in bcc_env.header_files():
        assert (root / rel).is_file()
    assert (root / "include/linux/kconfig.h").read_text().strip()
    again = bcc_env.header_tree()
    assert again == root


def test_trivial_program_compiles_without_kernel_headers(tmp_path, monkeypatch):
    bcc = _need_bcc()
    if os.path.exists(f"/lib/modules/{os.uname().release}/build"):
        pytest.skip("kernel headers installed: would not prove the header tree suffices")
    monkeypatch.setenv("DAMO_CACHE_DIR", str(tmp_path))
    bcc_env.setup()
    assert os.environ["BCC_KERNEL_SOURCE"].startswith(str(tmp_path))
    b = bcc.BPF(text=b"int f(void *ctx) { u64 x = bpf_ktime_get_ns(); return x > 1; }")
    try:
        assert len(b.dump_func(b"f")) >= 16  # some BPF instructions came out
    finally:
        b.cleanup()


def test_without_header_tree_bcc_fails(tmp_path, monkeypatch):
    # The control: the tree is what makes compiling work here.
    bcc = _need_bcc()
    if os.path.exists(f"/lib/modules/{os.uname().release}/build"):
        pytest.skip("kernel headers installed")
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(tmp_path))
    with pytest.raises(Exception, match="Failed to compile"):
        bcc.BPF(text=b"int f(void *ctx) { return 0; }")
