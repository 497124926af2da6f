"""Kernel DAMON sysfs control, against a fake sysfs tree in a temporary folder.

The real interface on these machines belongs to a kdamond damo did not start,
so writing is only ever exercised here; reading is also checked on the real tree.
"""

from pathlib import Path

import pytest

from damo.errors import DamoError, PlatformError, UsageError
from damo.linux import damon_sysfs
from damo.linux.damon_sysfs import OwnKdamond, read_kdamonds

ATTRS = dict(
    sample_us=5000, aggr_us=100000, update_us=1000000, min_nr_regions=10, max_nr_regions=1000
)


def make_tree(root: Path, nr_kdamonds: int = 0, state: str = "off") -> Path:
    """The layout of admin/ with one kdamond's worth of directories, as plain files."""
    admin = root / "admin"
    files = {
        "kdamonds/nr_kdamonds": str(nr_kdamonds),
        "kdamonds/0/state": state,
        "kdamonds/0/pid": "4242" if state == "on" else "-1",
        "kdamonds/0/contexts/nr_contexts": "1",
        "kdamonds/0/contexts/0/operations": "paddr",
        "kdamonds/0/contexts/0/avail_operations": "paddr",
        "kdamonds/0/contexts/0/monitoring_attrs/intervals/sample_us": "500000",
        "kdamonds/0/contexts/0/monitoring_attrs/intervals/aggr_us": "5000000",
        "kdamonds/0/contexts/0/monitoring_attrs/intervals/update_us": "60000000",
        "kdamonds/0/contexts/0/monitoring_attrs/nr_regions/min": "1024",
        "kdamonds/0/contexts/0/monitoring_attrs/nr_regions/max": "8192",
        "kdamonds/0/contexts/0/targets/nr_targets": "1",
        "kdamonds/0/contexts/0/targets/0/pid_target": "0",
    }
    for rel, text in files.items():
        path = admin / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return admin


def snapshot(admin: Path) -> dict[str, str]:
    return {str(p.relative_to(admin)): p.read_text() for p in admin.rglob("*") if p.is_file()}


def test_read_running_kdamond(tmp_path):
    admin = make_tree(tmp_path, nr_kdamonds=1, state="on")
    [kd] = read_kdamonds(admin)
    assert kd.running and kd.pid == 4242
    [ctx] = kd.contexts
    intervals = (ctx.sample_us, ctx.aggr_us, ctx.update_us)
    assert (ctx.operations, intervals) == ("paddr", (500000, 5000000, 60000000))
    assert (ctx.min_nr_regions, ctx.max_nr_regions, ctx.target_pids) == (1024, 8192, (0,))


def test_start_writes_attrs_and_stop_restores(tmp_path):
    admin = make_tree(tmp_path)
    with OwnKdamond(ops="paddr", admin=admin, **ATTRS) as kd:
        ctx = admin / "kdamonds/0/contexts/0"
        assert (admin / "kdamonds/nr_kdamonds").read_text() == "1\n"
        assert (admin / "kdamonds/0/state").read_text() == "on\n"
        assert (ctx / "monitoring_attrs/intervals/sample_us").read_text() == "5000\n"
        assert (ctx / "monitoring_attrs/intervals/aggr_us").read_text() == "100000\n"
        assert (ctx / "monitoring_attrs/nr_regions/min").read_text() == "10\n"
        assert (ctx / "monitoring_attrs/nr_regions/max").read_text() == "1000\n"
        assert kd.index == 0
    assert (admin / "kdamonds/0/state").read_text() == "off\n"
    assert (admin / "kdamonds/nr_kdamonds").read_text() == "0\n"


def test_vaddr_targets_written(tmp_path):
    admin = make_tree(tmp_path)
    (admin / "kdamonds/0/contexts/0/avail_operations").write_text("vaddr fvaddr paddr\n")
    with OwnKdamond(ops="vaddr", target_pids=(1234,), admin=admin, **ATTRS):
        ctx = admin / "kdamonds/0/contexts/0"
        assert (ctx / "operations").read_text() == "vaddr\n"
        assert (ctx / "targets/0/pid_target").read_text() == "1234\n"


@pytest.mark.parametrize("state", ["on", "off"])
def test_refuses_when_a_kdamond_exists(tmp_path, state):
    admin = make_tree(tmp_path, nr_kdamonds=1, state=state)
    before = snapshot(admin)
    with pytest.raises(UsageError, match="--attach"):
        with OwnKdamond(ops="paddr", admin=admin, **ATTRS):
            pass
    assert snapshot(admin) == before, "refusal must not write anything"


def test_missing_operations_refused_and_undone(tmp_path):
    admin = make_tree(tmp_path)
    with pytest.raises(PlatformError, match="vaddr"):
        with OwnKdamond(ops="vaddr", target_pids=(1,), admin=admin, **ATTRS):
            pass
    assert (admin / "kdamonds/nr_kdamonds").read_text() == "0\n"
    assert (admin / "kdamonds/0/state").read_text() == "off\n"


def test_restore_on_write_error(tmp_path):
    admin = make_tree(tmp_path)
    # A directory where a file should be makes that write fail midway.
    target_file = admin / "kdamonds/0/contexts/0/targets/nr_targets"
    target_file.unlink()
    target_file.mkdir()
    with pytest.raises(DamoError, match="nr_targets"):
        with OwnKdamond(ops="paddr", admin=admin, **ATTRS):
            pass
    assert (admin / "kdamonds/nr_kdamonds").read_text() == "0\n"
    assert (admin / "kdamonds/0/state").read_text() == "off\n"


def test_restore_on_error_inside(tmp_path):
    admin = make_tree(tmp_path)
    with pytest.raises(RuntimeError):
        with OwnKdamond(ops="paddr", admin=admin, **ATTRS):
            raise RuntimeError("recording failed")
    assert (admin / "kdamonds/0/state").read_text() == "off\n"
    assert (admin / "kdamonds/nr_kdamonds").read_text() == "0\n"


def test_missing_interface(tmp_path):
    with pytest.raises(PlatformError, match="CONFIG_DAMON_SYSFS"):
        read_kdamonds(tmp_path)


@pytest.mark.skipif(
    not (damon_sysfs.ADMIN_DIR / "kdamonds/nr_kdamonds").exists(),
    reason="this kernel has no DAMON sysfs interface",
)
def test_read_real_interface_read_only():
    for kd in read_kdamonds():
        for ctx in kd.contexts:
            assert ctx.sample_us > 0 and ctx.aggr_us >= ctx.sample_us
            assert 0 < ctx.min_nr_regions <= ctx.max_nr_regions


def kallsyms(tmp_path: Path, *names: str) -> Path:
    """A /proc/kallsyms of these text symbols."""
    path = tmp_path / "kallsyms"
    path.write_text("".join(f"ffffffff81000000 t {name}\n" for name in ("_text", *names)))
    return path


def test_offered_operations_from_a_context_or_the_kernels_symbols(tmp_path):
    admin = make_tree(tmp_path)
    (admin / "kdamonds/0/contexts/0/avail_operations").write_text("vaddr fvaddr paddr\n")
    none = kallsyms(tmp_path)
    assert damon_sysfs.offered_operations(admin, none) == {"vaddr", "fvaddr", "paddr"}
    # A free interface has no context to ask: the symbols of mm/damon/{vaddr,paddr}.c say.
    free = tmp_path / "free"
    (free / "kdamonds").mkdir(parents=True)
    (free / "kdamonds/nr_kdamonds").write_text("0\n")
    assert damon_sysfs.offered_operations(free, none) == set()
    assert damon_sysfs.offered_operations(free, kallsyms(
        tmp_path, "damon_pa_check_accesses", "damon_va_check_accesses")) == {"vaddr", "paddr"}
    assert damon_sysfs.offered_operations(free, tmp_path / "no-kallsyms") == set()


def test_why_no_own_kdamond(tmp_path):
    with_vaddr = kallsyms(tmp_path, "damon_va_init", "damon_pa_init")
    without = tmp_path / "paddr-only"
    without.write_text("ffffffff81000000 t damon_pa_init\n")
    free = make_tree(tmp_path / "free")
    (free / "kdamonds/0/contexts/0/avail_operations").write_text("vaddr paddr\n")
    before = snapshot(free)
    assert damon_sysfs.why_no_own_kdamond("vaddr", free, with_vaddr) is None
    assert snapshot(free) == before, "asking must not write"
    paddr_only = make_tree(tmp_path / "paddr-only-tree")
    assert damon_sysfs.why_no_own_kdamond("vaddr", paddr_only, without) == \
        "the kernel's DAMON has no vaddr operations"
    busy = make_tree(tmp_path / "busy", nr_kdamonds=1, state="on")
    (busy / "kdamonds/0/contexts/0/avail_operations").write_text("vaddr paddr\n")
    assert damon_sysfs.why_no_own_kdamond("vaddr", busy, with_vaddr) == \
        "kernel DAMON's sysfs interface is in use (1 kdamond(s))"
    assert damon_sysfs.why_no_own_kdamond("vaddr", tmp_path / "none", with_vaddr) == \
        "the kernel has no DAMON sysfs interface"


def test_this_machines_busy_interface_means_the_sampler():
    # The machine's own kdamond holds the real interface: damo records pids itself.
    from damo.sources.choice import why_not_for_processes

    kd = next((kd for kd in read_kdamonds()), None) \
        if (damon_sysfs.ADMIN_DIR / "kdamonds/nr_kdamonds").exists() else None
    reason = why_not_for_processes(["1"])
    if kd is not None:
        assert reason == f"kernel DAMON's sysfs interface is in use ({len(read_kdamonds())} " \
            "kdamond(s))"
    assert reason is not None or "vaddr" in damon_sysfs.offered_operations()
    assert why_not_for_processes(["sleep 1"]) == "not pids"
