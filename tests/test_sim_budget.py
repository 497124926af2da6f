"""The CPU budget on `sim`, against ground truth (no root).

sim applies the vaddr operations' budget the same way (damo.ops.vaddr.budget:
steady regions checked less often down to the floor, then both intervals
longer; counts from the checks made) to the CPU a real recording would use
(damo.ops.sim.COSTS).  What the budget trades is then measured against the
truth, deterministically.
"""

from pathlib import Path

import numpy as np
import pytest

from damo.core.attrs import Attrs
from damo.ops.vaddr.budget import SAMPLE_FLOOR
from damo.recording import Recording
from damo.records.meta import read_meta
from damo.records.reader import read_snapshots
from damo.workload.wss_accuracy import accuracy

EXAMPLES = Path(__file__).parents[1] / "examples" / "workloads"


def record(tmp_path, workload: str, max_cpu: float, seed: int = 1):
    out, truth = str(tmp_path / "damon.data"), str(tmp_path / "truth.jsonl")
    rec = Recording.prepare([str(EXAMPLES / f"{workload}.toml")], "sim", Attrs(), out,
                            seed=seed, truth=truth, max_cpu=max_cpu)
    least = []
    write = rec.record  # the recording is the sink of every aggregation's record

    def note(now, targets):
        # The checks made of each region in the aggregation that ended.
        least.append(min((int(c.min()) for c in rec.ctx.ops._checks.values()), default=99))
        return write(now, targets)

    rec.record = note
    rec.run()
    return rec, out, truth, least


@pytest.mark.parametrize("workload", ["zigzag", "stairs"])
def test_the_budget_keeps_the_floor_and_the_truth(tmp_path, workload):
    rec, out, truth, least = record(tmp_path, workload, 1.0)
    b = rec.ctx.ops.budget
    # This host's wake-ups alone cost more than 1 %: the intervals lengthen,
    assert b.level > 0 and b._scale_max > 1
    budget = [m for m in read_meta(out) if m["type"] == "budget"]
    assert any(m["aggr_us"] > 100_000 for m in budget)
    # ...the sampling interval alone first (fewer samples, never under the
    # floor), then both, at the floor's samples...
    assert all(m["aggr_us"] // m["sample_us"] == m["samples_per_aggr"] >= SAMPLE_FLOOR
               for m in budget)
    assert all(m["samples_per_aggr"] == SAMPLE_FLOOR for m in budget if m["aggr_us"] > 100_000)
    # ...the modelled CPU holds the budget in the steady state, or the ladder
    # has nothing cheaper (stairs keeps up to 100 MiB busy: its clears)...
    assert b.usage is not None and (b.usage <= 1.0 * 1.3 or b.level == len(b.levels) - 1)
    # ...every region of every aggregation got its floor of checks...
    assert min(least) >= SAMPLE_FLOOR
    # ...counts keep their units...
    snaps = read_snapshots(out)
    assert max(int(snaps.regions(i)[2].max()) for i in range(len(snaps))) == 20
    # ...and the snapshots still match the truth.
    a = accuracy(out, truth, Attrs())
    print(f"{workload} at 1 %: {a.summary()}, {len(a.errors)} snapshots; {b.summary()}")
    # Phases of 2.5-5 s against aggregations of up to 1.6 s: few snapshots lie
    # inside one phase (the trade: time resolution).
    assert len(a.errors) >= 5
    assert np.median(a.errors) <= 0.02
    assert np.median(a.hot_plus) <= 0.05 and np.median(a.missed) <= 0.05


def test_without_a_budget_sim_takes_every_sample(tmp_path):
    rec, out, _, least = record(tmp_path, "zigzag", 0)
    assert rec.ctx.ops.budget is None
    assert min(least[1:]) == 20  # every sample of every aggregation
    assert not [m for m in read_meta(out) if m["type"] == "budget"]


def test_a_generous_budget_stays_nominal(tmp_path):
    rec, out, _, least = record(tmp_path, "zigzag", 50)
    assert rec.ctx.ops.budget.level == 0
    assert min(least[1:]) == 20
