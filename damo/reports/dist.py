"""Percentile tables shared by `wss` and `nr_regions` (the format of DAMON's usage.rst).

::

    # <percentile> <what>
    # target_id\t<id>
    # avr:\t<integer mean>
    <percentile>\t<value>
"""

import sys
from collections.abc import Sequence

import numpy as np

from damo.errors import UsageError
from damo.reports.output import write_chunks

DEFAULT_PERCENTILES = (0, 25, 50, 75, 100)


def percentiles(range_args: Sequence[int] | None) -> list[int]:
    """`-r START STOP STEP` as Python's range, or the default quartiles."""
    if not range_args:
        return list(DEFAULT_PERCENTILES)
    start, stop, step = range_args
    if step == 0:
        raise UsageError("--range: STEP must not be 0")
    values = list(range(start, stop, step))
    if any(p < 0 for p in values):
        raise UsageError("--range: percentiles must not be negative")
    return values


def rows(values: dict[int, np.ndarray], skip: int) -> list[tuple[int, np.ndarray]]:
    """(target id, values) of the targets that have values, in the order given.

    A target left with no value (all its snapshots skipped) gets a warning, not a row.
    """
    result = []
    for tid, v in values.items():
        if len(v):
            result.append((tid, v))
        else:
            print(f"damo: warning: target {tid}: no snapshot left after skipping {skip}",
                  file=sys.stderr)
    return result


def pick(values: np.ndarray, points: list[int], by_size: bool) -> list[tuple[int, int]]:
    """(percentile, value) for each point, sorting `values` first if `by_size`.

    Percentile ``p`` picks element ``int(p / 100 * n)`` (the last one at and
    beyond 100), so without sorting it shows how a value changed over time.
    """
    ordered = (np.sort(values, kind="stable") if by_size else values).tolist()
    n = len(ordered)
    return [(p, ordered[min(int(p / 100.0 * n), n - 1)]) for p in points]


def table(what: str, per_target: list[tuple[int, np.ndarray]], points: list[int],
          by_size: bool) -> str:
    lines = [f"# <percentile> <{what}>"]
    for tid, values in per_target:
        total = int(values.sum(dtype=np.uint64))
        lines.append(f"# target_id\t{tid}")
        lines.append(f"# avr:\t{int(total / len(values))}")
        lines.extend(f"{p}\t{v}" for p, v in pick(values, points, by_size))
    return "\n".join(lines) + "\n"


def table_json(report: str, per_target: list[tuple[int, np.ndarray]], points: list[int],
               by_size: bool) -> str:
    """The table as one JSON object (docs/reports.md, "JSON output")."""
    import json

    return json.dumps({
        "report": report,
        "version": 1,
        "sort": "size" if by_size else "time",
        "targets": [{
            "target_id": tid,
            "nr_values": len(values),
            "average": int(int(values.sum(dtype=np.uint64)) / len(values)),
            "percentiles": [{"percentile": p, "value": v}
                            for p, v in pick(values, points, by_size)],
        } for tid, values in per_target],
    }) + "\n"


def emit(report: str, what: str, per_target: list[tuple[int, np.ndarray]], points: list[int],
         by_size: bool, plot_path: str | None, ylabel: str, sizes: bool,
         as_json: bool = False) -> None:
    """Print the table (or its JSON); with `plot_path`, also draw it (one line per target)."""
    if plot_path is not None:
        from damo.reports import plot

        plot.terminal_for(plot_path)  # a bad file name fails before any output
    if as_json:
        write_chunks([table_json(report, per_target, points, by_size)])
    else:
        write_chunks([table(what, per_target, points, by_size)])
    if plot_path is not None:
        series = [(f"target {tid}", pick(v, points, by_size)) for tid, v in per_target]
        xlabel = "percentile" if by_size else "runtime (percent)"
        plot.distribution_image(series, plot_path, xlabel, ylabel, sizes)
