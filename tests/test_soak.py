"""A two-minute soak (bench/soak): nothing in `damo record` grows or drifts with time."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

import pytest
from conftest import REPO, need_bpf


def load_bench(name: str):
    """A script under bench/ (no .py suffix) as a module."""
    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))  # the scripts import bench/_venv.py
    loader = importlib.machinery.SourceFileLoader(f"bench_{name}", str(REPO / "bench" / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_minutes_flat(tmp_path):
    need_bpf()
    soak = load_bench("soak")
    fig = soak.soak(2.0, 2.0, tmp_path, churn=True)
    print({k: v for k, v in fig.items() if k != "checks"})
    missed = [name for name, ok in fig["checks"].items() if not ok]
    assert not missed, (missed, fig)
    # At most the budget's longest aggregation interval apart (the spacing check above
    # holds them to the interval in force).
    from damo.ops.vaddr.budget import ladder

    longest = soak.AGGR_S * max(level.scale for level in ladder(20))
    assert fig["records"] >= 0.9 * 120 / longest
