"""End to end: `damo record "damo workload FILE --truth T"`, WSS, hot+ and missed vs truth.

The real generator touches every page of each accessed region every 5 ms;
the record and the truth share CLOCK_MONOTONIC, so the sim accuracy method
applies as is (tests/wss_accuracy.py: the median relative WSS error, and the
median over snapshots of the bytes reported hot outside the truth, hot+,
and of the truth bytes missed, each relative to the true WSS).  The
machine's own kdamond clears Accessed bits of pages it samples now and then,
and a real process has mappings beyond the workload's.

At default settings the CPU budget is 1 % of a core.  On this project's VMs
a wake-up every 5 ms and the per-aggregation Python alone cost more, so the
budget takes fewer samples an aggregation (down to 3) and then lengthens
both intervals (to 400-800 ms aggregations here).  zigzag and gapped meet
issue 16's bounds there (median error <= 2 %, hot+ and missed <= 5 %).
many (200 interleaved 1 MiB regions, 10 s phases) and stairs (2.5 s phases)
are held to bounds a little wider than the spread measured (bench/accuracy,
paired runs on a shared host): many 1.01-4.37 % median error over sixteen
runs of two trees on the day of issue 16's check-to-clear gap (hot+ 1.42-5.13 %,
missed at most 1.25 %; ten runs of an earlier version had 0.77-2.07 %, hot+ at
most 2.9 %), stairs 0.66-3.36 % over three (hot+ at most 0.7 %, missed
0.04 %).  Before the ladder took fewer samples ahead of longer
aggregations and `narrow` kept regions apart across a phase change, many
measured 4-51 % and stairs 0.8-12 % (docs/performance.md has the figures).
many is also held to issue 9's bounds at `--max-cpu 0`, and nothing accessed
may be missed at any setting.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from damo.core.attrs import Attrs
from damo.workload.wss_accuracy import accuracy

REPO = Path(__file__).parents[1]
# (workload, damo record options) -> (median WSS error, median hot+, median missed), at most
BOUNDS = {
    ("zigzag", ""): (0.02, 0.05, 0.05),
    ("gapped", ""): (0.02, 0.05, 0.05),
    ("stairs", ""): (0.05, 0.05, 0.05),
    ("many", ""): (0.05, 0.07, 0.05),
    ("many", "--max-cpu 0"): (0.05, 0.05, 0.05),
}
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


@pytest.mark.parametrize("workload, options", list(BOUNDS))
def test_wss_accuracy_real(tmp_path, workload, options):
    truth = tmp_path / "truth.jsonl"
    path = many_regions_workload(tmp_path / "many.toml") if workload == "many" else \
        EXAMPLES / f"{workload}.toml"
    command = shlex.join([*DAMO, "workload", str(path), "--truth", str(truth)])
    p = subprocess.run([*DAMO, "record", *shlex.split(options), command], cwd=tmp_path,
                       capture_output=True, text=True, timeout=240, check=False,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr
    assert "the command exited with status 0" in p.stderr
    acc = accuracy(str(tmp_path / "damon.data"), str(truth), Attrs(), check_nr_regions=False)
    errors = acc.errors
    print(f"{workload} {options or '(defaults)'}: {acc.summary()}, {len(errors)} snapshots, "
          f"90th percentile {np.percentile(errors, 90):.2%} ({p.stderr.strip()})")
    # All phases but the warm-up and the snapshots spanning a phase change; the
    # budget may lengthen the aggregation interval up to 16x (stairs: 9 left once).
    assert len(errors) >= 5
    max_median, max_hot_plus, max_missed = BOUNDS[workload, options]
    assert np.median(errors) <= max_median
    assert np.median(acc.hot_plus) <= max_hot_plus
    assert np.median(acc.missed) <= max_missed
