"""Which source `damo record` records from, and the options each source refuses.

The automatic choice (`damo.sources.choice`) is tested once per reason on a
fake DAMON sysfs tree (tests/test_damon_sysfs.py's), read only; the
refusals of `--ops kernel` run before anything starts, so they need no
kernel DAMON, no root and no BPF.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from damo.core.attrs import Attrs
from damo.core.intervals import AUTOTUNE
from damo.sources import SOURCE_OPTIONS, RecordOptions
from damo.sources.choice import why_not_kernel
from tests.conftest import run_damo
from tests.test_damon_sysfs import kallsyms, make_tree, snapshot

REPO = Path(__file__).parents[1]

# One value per option kernel DAMON does not take, as `damo record` is given it.
ENGINE_OPTIONS = {
    "seed": ("--seed", "1"),
    "truth": ("--truth", "t.jsonl"),
    "colocate": ("--colocate",),
    "include_child_tasks": ("--include_child_tasks",),
    "max_targets": ("--max-targets", "2"),
    "max_cpu": ("--max-cpu", "2"),
    "adjust": ("--adjust", "seed"),
    "force": ("--force",),
    "intervals_goal": ("--monitoring_intervals_goal", "4%", "3", "5ms", "10s"),
    "checks": ("--checks", "native"),
}
VALUES = {"seed": 1, "truth": "t.jsonl", "colocate": True, "include_child_tasks": True,
          "max_targets": 2, "max_cpu": 2.0, "adjust": "seed", "attach": True,
          "force": True, "intervals_goal": AUTOTUNE,
          "checks": "native"}


@pytest.mark.parametrize("option", sorted(ENGINE_OPTIONS))
def test_kernel_refuses_what_it_does_not_take(tmp_path, option):
    proc = run_damo("record", "--ops", "kernel", "1", *ENGINE_OPTIONS[option], "-o", "k.data",
                    cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    flag = ENGINE_OPTIONS[option][0]
    assert err.startswith(f"damo: error: {flag} ") and err.endswith(", not kernel\n"), err
    assert err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_every_option_kernel_refuses_is_tested():
    assert set(ENGINE_OPTIONS) | {"attach"} == set(SOURCE_OPTIONS) == set(VALUES)


@pytest.mark.parametrize("option", ["attach", "truth"])
def test_vaddr_refuses_what_it_does_not_take(tmp_path, option):
    flags = ("--attach",) if option == "attach" else ENGINE_OPTIONS[option]
    proc = run_damo("record", "--ops", "vaddr", "1", *flags, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert err.startswith(f"damo: error: {flags[0]} ") and err.endswith(", not vaddr\n"), err


@pytest.mark.parametrize("option", ["max_targets", "colocate", "attach", "force"])
def test_sim_refuses_what_it_does_not_take(tmp_path, option):
    flags = ("--attach",) if option == "attach" else ENGINE_OPTIONS[option]
    workload = str(REPO / "examples" / "workloads" / "zigzag.toml")
    proc = run_damo("record", "--ops", "sim", workload, *flags, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1, err
    assert err.startswith(f"damo: error: {flags[0]} ") and err.endswith(", not sim\n"), err
    assert list(tmp_path.iterdir()) == []


# the automatic choice, one reason at a time


@pytest.fixture
def free(tmp_path):
    """A free interface of a kernel whose DAMON has vaddr, and its kallsyms."""
    admin = make_tree(tmp_path / "free")
    (admin / "kdamonds/0/contexts/0/avail_operations").write_text("vaddr paddr\n")
    return admin, kallsyms(tmp_path, "damon_va_init", "damon_pa_init")


def options(targets=("1",), **given):
    return RecordOptions(list(targets), Attrs(), **given)


def test_pids_on_a_free_interface_with_vaddr_go_to_kernel_damon(free):
    if os.geteuid() != 0:
        pytest.skip("needs root: without it the choice is the sampler's (tested below)")
    before = snapshot(free[0])
    assert why_not_kernel(options(["1", "2"]), *free) is None
    assert snapshot(free[0]) == before, "choosing must not write"


def test_ops_given(free):
    assert why_not_kernel(options(ops="vaddr"), *free) == "--ops vaddr"


@pytest.mark.parametrize("option", sorted(VALUES))
def test_an_option_kernel_damon_does_not_take(free, option):
    assert why_not_kernel(options(**{option: VALUES[option]}), *free) == \
        f"{SOURCE_OPTIONS[option]} given"


def test_default_values_given_explicitly_still_count(free):
    # `--max-cpu 2` and `--adjust narrow` are the defaults, but the user asked.
    assert why_not_kernel(options(max_cpu=2.0), *free) == "--max-cpu given"
    assert why_not_kernel(options(adjust="narrow"), *free) == "--adjust given"


@pytest.mark.parametrize("targets", [[], ["sleep 1"], ["1", "x"]])
def test_not_pids(free, targets):
    assert why_not_kernel(options(targets), *free) == "not pids"


def test_no_sysfs_interface(free, tmp_path):
    assert why_not_kernel(options(), tmp_path / "none", free[1]) == \
        "the kernel has no DAMON sysfs interface"


def test_interface_in_use(free, tmp_path):
    busy = make_tree(tmp_path / "busy", nr_kdamonds=1, state="on")
    assert why_not_kernel(options(), busy, free[1]) == \
        "kernel DAMON's sysfs interface is in use (1 kdamond(s))"


def test_no_vaddr_operations(tmp_path):
    paddr_only = make_tree(tmp_path / "paddr-only")
    assert why_not_kernel(options(), paddr_only, kallsyms(tmp_path, "damon_pa_init")) == \
        "the kernel's DAMON has no vaddr operations"


def test_no_bcc(free, monkeypatch):
    from damo.linux import bcc_env

    if os.geteuid() != 0:
        pytest.skip("not root: that reason comes first")
    monkeypatch.delitem(sys.modules, "bcc", raising=False)
    monkeypatch.setattr(bcc_env, "SYSTEM_SITE_DIRS", ())  # a machine without python3-bpfcc
    if __import__("importlib").util.find_spec("bcc") is not None:
        pytest.skip("bcc is importable from the environment itself")
    assert why_not_kernel(options(), *free).startswith("bcc is not installed")


def test_not_root(free):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    if os.geteuid() != 0:
        pytest.skip("needs root to drop it")
    with tempfile.TemporaryDirectory() as tmp:  # readable by nobody, unlike pytest's tmp_path
        os.chmod(tmp, 0o755)
        admin = shutil.copytree(free[0], Path(tmp) / "admin")
        syms = shutil.copy(free[1], Path(tmp) / "kallsyms")
        code = ("from pathlib import Path; from damo.core.attrs import Attrs\n"
                "from damo.sources import RecordOptions\n"
                "from damo.sources.choice import why_not_kernel\n"
                f"print(why_not_kernel(RecordOptions(['1'], Attrs()), Path('{admin}'), "
                f"Path('{syms}')))")
        p = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            sys.executable, "-c", code], cwd=tmp, capture_output=True,
                           text=True, timeout=60, check=False,
                           env={**os.environ, "PYTHONPATH": str(REPO), "HOME": tmp})
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("damo needs root"), p.stdout


@pytest.mark.parametrize("flags", [("--max-cpu", "1"), ("--max-targets", "4")])
def test_damo_record_keeps_pids_off_kernel_damon_for_an_option(tmp_path, flags):
    """End to end: with the interface free and vaddr offered, the option alone keeps the sampler."""
    from tests.conftest import need_bpf
    from tests.proc_targets import start
    from tests.test_record_kernel import fake_admin_with_vaddr, run_damo_code

    need_bpf()
    admin = fake_admin_with_vaddr(tmp_path / "sysfs", 1)
    assert why_not_kernel(options(), admin) is None, "without the option: kernel DAMON"
    before = snapshot(admin)
    code = (f"import pathlib, damo.linux.damon_sysfs as d; d.ADMIN_DIR = pathlib.Path('{admin}')\n"
            "from damo.cli import main\nmain()")
    target, _ = start("sleep", 60)
    try:
        out = tmp_path / "p.data"
        proc = run_damo_code(code, "record", str(target.pid), *flags, "--duration", "0.5",
                             "-o", str(out))
    finally:
        target.kill()
        target.wait()
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "kernel DAMON" not in err and err.startswith("damo: recorded process"), err
    assert snapshot(admin) == before
    from damo.records.meta import read_meta

    start_message = read_meta(str(out))[0]
    assert start_message["ops"] == "vaddr"
    if flags[0] == "--max-targets":
        assert start_message["max_targets"] == 4
