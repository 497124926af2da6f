"""Accuracy of the region engine on the bundled workloads, against sim's ground truth.

Each run is a real `damo record --ops sim` (default attributes, a fixed seed)
writing a record file and a truth file; the record is read back with the
record reader.  Measured WSS of a snapshot: bytes of its regions with
nr_accesses >= 1, counted inside the workload's regions only.  Truth: bytes
of the regions the active phase accesses.  The first 20 snapshots and those
spanning a phase change are left out.
"""

from pathlib import Path

import numpy as np
import pytest

from damo.commands.record import Recording
from damo.core.attrs import Attrs
from damo.core.context import PAGE_SIZE
from damo.records.reader import read_snapshots
from damo.workload.truth import phase_at, read_truth

EXAMPLES = Path(__file__).parents[1] / "examples" / "workloads"
SEEDS = (1, 2, 3)
WARMUP = 20


def relative_errors(out: str, truth: str, attrs: Attrs) -> np.ndarray:
    snaps = read_snapshots(out)
    runs = read_truth(truth)
    workload = [(r.start, r.end) for r in runs[0].regions]
    window = attrs.aggr_interval * 1000
    errors = []
    for i in range(len(snaps)):
        start, end, nr = (a.astype(np.int64) for a in snaps.regions(i))
        # every snapshot: sorted, non-overlapping, page-aligned, within [min, max]
        assert (end > start).all() and (start[1:] >= end[:-1]).all()
        assert not (start % PAGE_SIZE).any() and not (end % PAGE_SIZE).any()
        assert attrs.min_nr_regions <= len(start) <= attrs.max_nr_regions
        if i < WARMUP:
            continue
        now = int(snaps.end_ns[i])
        run = phase_at(runs, now - window, now)
        if run is None:
            continue
        hot = nr >= 1
        measured = sum(
            int(np.clip(np.minimum(end[hot], e) - np.maximum(start[hot], s), 0, None).sum())
            for s, e in workload
        )
        errors.append(abs(measured - run.wss) / run.wss)
    return np.array(errors)


@pytest.mark.parametrize("workload", ["stairs", "zigzag"])
@pytest.mark.parametrize("seed", SEEDS)
def test_wss_accuracy(tmp_path, workload, seed):
    attrs = Attrs()
    out, truth = str(tmp_path / "damon.data"), str(tmp_path / "truth.jsonl")
    Recording.prepare(
        [str(EXAMPLES / f"{workload}.toml")], "sim", attrs, out, seed=seed, truth=truth
    ).run()
    errors = relative_errors(out, truth, attrs)
    # stairs: 300 snapshots, zigzag: 400; minus warm-up and the phase changes
    assert len(errors) > 250
    median, within = np.median(errors), np.mean(errors <= 0.10)
    print(f"{workload} seed {seed}: median {median:.2%}, within 10% {within:.1%}")
    assert median <= 0.02
    assert within >= 0.90
