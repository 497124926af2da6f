"""Accuracy of the region engine on the bundled workloads, against sim's ground truth.

Each run is a real `damo record --ops sim` (default attributes, a fixed seed)
writing a record file and a truth file, compared by the method of `wss_accuracy`.
"""

from pathlib import Path

import numpy as np
import pytest
from wss_accuracy import relative_errors

from damo.core.attrs import Attrs
from damo.recording import Recording

EXAMPLES = Path(__file__).parents[1] / "examples" / "workloads"
SEEDS = (1, 2, 3)


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
