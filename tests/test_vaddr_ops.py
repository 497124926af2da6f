"""The `vaddr` operations on real processes (root, bcc), and their command-string helpers."""

import os

import numpy as np
import pytest
from conftest import run_damo
from proc_targets import shell_command, start

from damo.core.attrs import Attrs
from damo.errors import TargetError, UsageError
from damo.ops.vaddr import check_command, is_simple_command, parse_targets
from damo.ops.vaddr import shell_command as sh_command
from damo.recording import Recording
from damo.records.meta import read_meta
from damo.records.reader import read_snapshots

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the BPF sampler needs root")


def record(tmp_path, targets, duration=None, attrs=None, colocate=False):
    out = str(tmp_path / "damon.data")
    rec = Recording.prepare(targets, None, attrs or Attrs(), out, duration, colocate=colocate)
    rec.run()
    return rec, read_snapshots(out)


def inside(snaps, i, lo, hi):
    """Regions of snapshot i wholly inside [lo, hi): (start, end, nr_accesses)."""
    s, e, n = (a.astype(np.int64) for a in snaps.regions(i))
    keep = (s >= lo) & (e <= hi)
    return s[keep], e[keep], n[keep]


def overlap(snaps, i, lo, hi, min_accesses):
    """Bytes of [lo, hi) in regions of snapshot i with at least `min_accesses`."""
    s, e, n = (a.astype(np.int64) for a in snaps.regions(i))
    hot = n >= min_accesses
    return int(np.clip(np.minimum(e[hot], hi) - np.maximum(s[hot], lo), 0, None).sum())


@needs_root
@pytest.mark.parametrize("colocate", [False, True])
def test_touched_half_is_hot_the_rest_cold(tmp_path, colocate):
    p, (addr, size) = start("half", 64, 30)
    try:
        rec, snaps = record(tmp_path, [str(p.pid)], duration=3, colocate=colocate)
    finally:
        p.kill()
        p.wait()
    assert set(snaps.target_id.tolist()) == {p.pid}  # target ids are the pids
    assert (rec.ctx.ops.cpu.moves > 0) == colocate  # followed the target's CPU, or never moved
    # The CPU budget lengthens the aggregation interval where wake-ups alone
    # cost more than it (30 records at the nominal 100 ms, 4x longer at 1 %).
    assert len(snaps) == rec.nr_records >= 8
    half = addr + size // 2
    hot_bytes = []
    cold_bytes = []
    for i in range(10, len(snaps)):
        hot_bytes.append(overlap(snaps, i, addr, half, 1))
        cold_bytes.append(overlap(snaps, i, half, addr + size, 5))
    assert np.median(hot_bytes) >= 0.9 * (size // 2), hot_bytes
    # the untouched half reads cold (a region across the boundary may carry a little)
    assert np.median(cold_bytes) <= 0.1 * (size // 2), cold_bytes


@needs_root
def test_shared_pages_are_not_counted(tmp_path):
    """Pages shared with a child after fork keep their Accessed bit: no evidence of access."""
    from damo.sampler import PageSampler

    p, (addr, size, child) = start("shared", 32, 30)
    try:
        with PageSampler(p.pid) as s:
            pages = np.arange(addr, addr + size, 4096 * 64, dtype=np.uint64)
            # the premise: young, and MADV_COLD cannot clear them (the machine's own
            # kdamond may have cleared a few bits since they were written)
            young = s.walk(pages).young
            assert young.mean() > 0.8
            pages = pages[young]
            assert s.clear_young(pages, np.full(len(pages), 4096, dtype=np.uint64)).all()
        rec, snaps = record(tmp_path, [str(p.pid)], duration=2)
    finally:
        p.kill()
        p.wait()
    total = sum(int(inside(snaps, i, addr, addr + size)[2].sum()) for i in range(len(snaps)))
    assert total == 0


@needs_root
def test_exec_in_a_compound_command_starts_over(tmp_path):
    """sh stays the parent of `sleep; exec ...` until the exec: the new address space is found."""
    cmd = "sleep 0.5; exec " + shell_command(tmp_path, "half", 32, 3)
    assert not is_simple_command(cmd)
    rec, snaps = record(tmp_path, [cmd])
    meta = read_meta(rec.out)
    maps = [m for m in meta if m["type"] == "maps"]
    # the shell's maps first, then the python's after the exec
    assert any("dash" in str(m["maps"]) for m in maps[:1])
    assert any("python" in str(m["maps"]) for m in maps[1:])
    assert rec.ctx.ops.command_status == 0
    # after the exec, some region is hot (the touched half of 32 MiB)
    last = len(snaps) - 1
    s, e, n = (a.astype(np.int64) for a in snaps.regions(last - 2))
    assert int((e - s)[n >= 5].sum()) >= 8 << 20


def test_parse_targets():
    assert parse_targets(["12", "34"]) == ([12, 34], None)
    assert parse_targets(["sleep 1"]) == ([], "sleep 1")
    with pytest.raises(UsageError, match="one command string in quotes"):
        parse_targets(["sleep", "1"])
    with pytest.raises(UsageError, match="twice"):
        parse_targets(["12", "12"])


@pytest.mark.parametrize(
    "cmd, simple",
    [
        ("sleep 1", True),
        ("FOO=1 ./run --x 'a b' > out.txt", True),
        ("sleep 1; true", False),
        ("a && b", False),
        ("a | b", False),
        ("(a)", False),
        ("if true; then a; fi", False),
        ("echo 'a;b'", True),
        ("a\nb", False),
    ],
)
def test_simple_commands_are_exec_ed(cmd, simple):
    assert is_simple_command(cmd) is simple
    assert sh_command(cmd) == (f"exec {cmd}" if simple else cmd)


def test_an_exec_is_not_doubled():
    assert sh_command("exec sleep 1") == "exec sleep 1"


def test_check_command(tmp_path):
    check_command("sleep 1")
    check_command("FOO=1 sleep 1")
    check_command("cd / && ls")  # a builtin first: the shell will say
    with pytest.raises(TargetError, match="command not found: no-such-cmd-xyz"):
        check_command("no-such-cmd-xyz --flag")
    with pytest.raises(TargetError, match="command not found: /no/such"):
        check_command("/no/such arg")
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(TargetError, match="not executable"):
        check_command(str(f))
    with pytest.raises(TargetError, match="unbalanced quotes"):
        check_command("echo 'a")
    with pytest.raises(UsageError, match="empty"):
        check_command("   ")


def test_colocate_is_for_vaddr_only(tmp_path):
    p = run_damo("record", "--colocate", "--ops", "sim", "examples/workloads/zigzag.toml",
                 "-o", str(tmp_path / "o"))
    assert p.returncode == 2
    assert p.stderr.decode().strip() == \
        "damo: error: --colocate goes with the vaddr operations, not sim"
    assert not (tmp_path / "o").exists()
