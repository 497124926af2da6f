"""Seeded fuzzing of every record reader (bench/fuzz): 2,000 inputs, each a one-line answer."""

from __future__ import annotations

import io
import time

from conftest import measured
from test_soak import load_bench

from damo.errors import RecordFormatError


def test_seeded_two_thousand_inputs():
    fuzz = load_bench("fuzz")
    names = [n for group in ("recfmt", "perf", "json", "sidecar") for n in fuzz.GROUPS[group]]
    assert {"json", "json_compressed"} <= set(names)
    result = fuzz.fuzz(2000, 20260, names)
    assert result["failures"] == [], "\n".join(result["failures"][:20])
    # The "no hang past 2 s", wall-clock: the slowest input's spread is bench/spread's.
    assert measured("fuzz_slowest_input_s", result["slowest_s"]) < 2.0
    assert result["peak_rss_mib"] - result["base_rss_mib"] <= 128


def test_the_harness_catches_tracebacks_hangs_and_long_messages(monkeypatch):
    # The control: readers that misbehave in each way are reported, one line each.
    fuzz = load_bench("fuzz")

    def traceback_reader(path: str) -> None:
        raise KeyError("time_ns")

    def hanging_reader(path: str) -> None:
        time.sleep(5)

    def two_lines(path: str) -> None:
        raise RecordFormatError("first\nsecond")

    seed = fuzz.READERS["recfmt2"]
    for name, reader in (("tb", traceback_reader), ("hang", hanging_reader),
                         ("long", two_lines)):
        monkeypatch.setitem(fuzz.READERS, name, (seed[0], seed[1], "data", reader))
    out = io.StringIO()
    result = fuzz.fuzz(3, 1, ["tb", "hang", "long"], timeout=0.2, out=out)
    lines = out.getvalue().splitlines()
    assert len(result["failures"]) == 3 and lines == result["failures"]
    assert "traceback: KeyError" in lines[0]
    assert "no answer within 0.2 s" in lines[1]
    assert "message not one line" in lines[2]
