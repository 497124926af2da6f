"""`--monitoring_intervals_goal`: DAMON's intervals auto-tuning, on sim (no root)."""

import subprocess
import sys
from pathlib import Path

import pytest

from damo.core.intervals import AUTOTUNE, IntervalsGoal, adaptation_bp, parse_goal
from damo.errors import UsageError
from damo.records.meta import read_meta

REPO = Path(__file__).parents[1]
ZIGZAG = REPO / "examples" / "workloads" / "zigzag.toml"


def test_goal_words_parse_as_the_kernel_takes_them():
    assert parse_goal(["4%", "3", "5ms", "10s"]) == AUTOTUNE == IntervalsGoal(400, 3, 5000,
                                                                               10_000_000)
    assert parse_goal(["250", "1", "1000", "2000"]) == IntervalsGoal(250, 1, 1000, 2000)
    for bad in (["0", "3", "5ms", "10s"], ["4%", "0", "5ms", "10s"], ["4%", "3", "1s", "5ms"],
                ["x", "3", "5ms", "10s"], ["4%", "3", "5 parsecs", "10s"]):
        with pytest.raises(UsageError):
            parse_goal(bad)


def test_the_feedback_doubles_at_most_and_halves_at_most():
    assert adaptation_bp(10_000) == 10_000  # on the goal: unchanged
    assert adaptation_bp(0) == 20_000  # nothing seen: twice as long
    assert adaptation_bp(5_000) == 15_000
    assert adaptation_bp(15_000) == 7_500  # over: shrink, rescaled to [50 %, 100 %]
    assert adaptation_bp(10 ** 6) == 5_000


def record(tmp_path, *goal):
    out = tmp_path / "d.data"
    p = subprocess.run([sys.executable, "-m", "damo.cli", "record", "--ops", "sim", str(ZIGZAG),
                        "--duration", "20", "-o", str(out), *goal], capture_output=True,
                       text=True, timeout=120, env={"PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr
    return [m for m in read_meta(str(out)) if m["type"] == "intervals"]


def test_an_unmet_goal_lengthens_both_intervals_ratio_kept(tmp_path):
    # zigzag accesses about half of its bytes: a 90 % goal is never met.
    chosen = record(tmp_path, "--monitoring_intervals_goal", "90%", "3", "5ms", "50ms")
    assert chosen and all(m["aggr_us"] == 20 * m["sample_us"] for m in chosen)
    samples = [m["sample_us"] for m in chosen]
    assert samples[0] > 5_000 and max(samples) == 50_000  # longer, up to the maximum
    assert chosen[0]["score_bp"] < 10_000 and chosen[0]["goal_bp"] == 9000


def test_autotune_keeps_a_busy_target_at_the_shortest_intervals(tmp_path):
    # More than 4 % of zigzag's possible access events are seen: at 5 ms already.
    assert record(tmp_path, "--monitoring_intervals_autotune") == []


def test_a_bad_goal_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "damo.cli", "record", "--ops", "sim", str(ZIGZAG),
                        "--monitoring_intervals_goal", "4%", "3", "10s", "5ms"],
                       capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "MIN_SAMPLE" in p.stderr
