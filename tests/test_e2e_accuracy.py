"""End to end: `damo record "damo workload FILE --truth T"` with default settings, WSS vs truth.

Default settings include the CPU budget (`--max-cpu 2`): what it trades must
not cost the record its meaning.  The real generator touches every page of
each accessed region every 5 ms; the record and the truth share
CLOCK_MONOTONIC, so the sim accuracy method applies as is.  The machine's
own kdamond clears Accessed bits of pages it samples now and then, and a
real process has mappings beyond the workload's.

Issue 9's target is a median relative error of at most 5 % and at least
85 % of snapshots within 10 % for every workload at the default budget.
zigzag meets it.  On the project's VM the 2 % budget leaves about 2 checks
per region per aggregation, and the regions at the edge of the working set
resolve more slowly: in the merged tree (native loop, budget, `narrow`
stepping aside under the budget) stairs measured 4.9-13.5 % median error
and 43-72 % within 10 % in four runs (0.12 % and 85 % at --max-cpu 0); the
many-region workload 7-16 % and 34-64 % (2.2 % and
59 % even at --max-cpu 0: 10 s phases are too short for the adaptive regions
to resolve 200 interleaved pieces).  Their bounds below guard what this
version reaches, short of the target: docs/performance.md has the figures.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wss_accuracy import accuracy

from damo.core.attrs import Attrs

REPO = Path(__file__).parents[1]
# workload -> (median WSS error, median hot+ and median missed bytes, at most)
BOUNDS = {"zigzag": (0.02, 0.05), "stairs": (0.02, 0.05), "many": (0.02, 0.05)}
EXAMPLES = REPO / "examples" / "workloads"
DAMO = [sys.executable, "-m", "damo.cli"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the BPF sampler needs root")


def many_regions_workload(path: Path, nr: int = 200, seconds: float = 10) -> Path:
    """`nr` 1 MiB regions, every other one busy, then the others: ~nr/2 hot regions apart."""
    lines = [f'[[regions]]\nname = "r{i}"\nsize = "1 MiB"\n' for i in range(nr)]
    for name, parity in (("even", 0), ("odd", 1), ("even again", 0)):
        names = ", ".join(f'"r{i}"' for i in range(parity, nr, 2))
        lines.append(f'[[phases]]\nname = "{name}"\nduration_ms = {round(seconds * 1000)}\n'
                     f"access = [{names}]\n")
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("workload, snapshots", [("zigzag", 400), ("stairs", 300),
                                                 ("many", 300)])
def test_wss_accuracy_real(tmp_path, workload, snapshots):
    truth = tmp_path / "truth.jsonl"
    path = many_regions_workload(tmp_path / "many.toml") if workload == "many" else \
        EXAMPLES / f"{workload}.toml"
    command = shlex.join([*DAMO, "workload", str(path), "--truth", str(truth)])
    p = subprocess.run([*DAMO, "record", command], cwd=tmp_path, capture_output=True,
                       text=True, timeout=240, check=False,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr
    assert "the command exited with status 0" in p.stderr
    acc = accuracy(str(tmp_path / "damon.data"), str(truth), Attrs(), check_nr_regions=False)
    errors = acc.errors
    print(f"{workload}: {acc.summary()}, {len(errors)} snapshots, 90th percentile "
          f"{np.percentile(errors, 90):.2%} ({p.stderr.strip()})")
    # all phases but the warm-up and the snapshots spanning a phase change; the
    # budget may lengthen the aggregation interval up to 4x at the default 1 %
    assert len(errors) > snapshots * 0.8 / 4
    max_median, max_wrong = BOUNDS[workload]
    assert np.median(errors) <= max_median
    assert np.median(acc.hot_plus) <= max_wrong
    assert np.median(acc.missed) <= max_wrong
