"""End to end: a real process with one hot 4 KiB page in 256 MiB, recorded with `damo record`.

`damo workload` touches the page every 5 ms and nothing else of the 256 MiB
(all faulted in first); with the default adjustment (`narrow`) the region
covering the page must shrink to at most 64 KiB within 30 s of the phase's
start (record and truth share CLOCK_MONOTONIC).  The machine's own kdamond
clears Accessed bits of pages it samples now and then (kernel-facts.md), so
from then on the page must be isolated in most snapshots, not in all.

Recorded with `--max-cpu 0` (DAMON's exact sampling), its checks made by the
native loop and, again, in the kernel (`--checks kernel`: counts from the
tick's checks, damo/ops/vaddr/sampling.py's `_tick_samples`).  Issue 16 asks for the
default settings; at the default 1 % budget this host's wake-ups alone cost
more than the budget, the intervals grow 8x (0.8 s aggregations), and
`narrow`'s search isolated the page within the 30 s run in 1 of 3 runs (16.5 s),
about the ~1,500 checks a second the budget leaves make for 256 MiB
(docs/performance.md, "The sample floor and what the budget trades").
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_bpf

from damo.workload.hot_objects import isolation_times

REPO = Path(__file__).parents[1]
DAMO = [sys.executable, "-m", "damo.cli"]
KIB, MIB = 1 << 10, 1 << 20

# The page at 100.37 MiB: not at a 2^k offset, nor at an initial region boundary.
COLD0 = 25695 * 4096
HOT_PAGE = f"""
[[regions]]
name = "cold0"
size = {COLD0}
[[regions]]
name = "hot"
size = 4096
[[regions]]
name = "cold1"
size = {256 * MIB - COLD0 - 4096}
[[phases]]
name = "hot page"
duration_ms = 30000
access = ["hot"]
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the BPF sampler needs root")
@pytest.mark.parametrize("checks", ["native", "kernel"])
def test_hot_page_isolated_in_a_real_process(tmp_path, checks):
    need_bpf()
    workload, truth = tmp_path / "hot.toml", tmp_path / "truth.jsonl"
    workload.write_text(HOT_PAGE)
    command = shlex.join([*DAMO, "workload", str(workload), "--truth", str(truth)])
    p = subprocess.run([*DAMO, "record", "--max-cpu", "0", "--checks", checks, command],
                       cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr
    run = json.loads(truth.read_text().splitlines()[0])
    hot = next(r for r in run["regions"] if r["name"] == "hot")
    (row, spans, accessed, times), = isolation_times(
        tmp_path / "damon.data", [(hot["start"], hot["end"])], [64 * KIB], t0_ns=run["start_ns"])
    first = row[0][0]
    print(f"isolated to <= 64 KiB {first} s after the phase started ({p.stderr.strip()})")
    assert first is not None and first <= 30
    after = [(s, a) for s, a, t in zip(spans, accessed, times, strict=True) if t >= first]
    isolated = [s for s, a in after if a and s <= 64 * KIB]
    print(f"isolated in {len(isolated)} of the {len(after)} snapshots from then")
    assert len(isolated) >= 0.9 * len(after)
