"""What reports need to know about each target before their main pass over a file.

`spans(source)` is one pass over the snapshot headers only (no region
columns): per target, in order of first appearance, how many snapshots it has
and the times of its first and last one.  The mean snapshot interval, which
places the first snapshot in time and sizes the aggregation windows, follows.
A *source* is a `damo.records.reader.RecordFile` or a whole `Snapshots`: both
have ``chunks()``.
"""

from dataclasses import dataclass
from typing import Any


@dataclass
class Span:
    target_id: int
    nr_snapshots: int
    first_ns: int
    last_ns: int

    @property
    def mean_interval_ns(self) -> float:
        """Mean time between consecutive snapshots (0.0 if fewer than two)."""
        if self.nr_snapshots < 2:
            return 0.0
        return float(self.last_ns - self.first_ns) / (self.nr_snapshots - 1)

    @property
    def first_start_ns(self) -> int:
        """Start of the first snapshot: it is given the mean interval."""
        return self.first_ns - round(self.mean_interval_ns)


def spans(source: Any, check: bool = False) -> dict[int, Span]:
    """Span of every target, in order of first appearance.

    With `check`, the regions are read too (as numpy columns), so that this
    pass finds every problem of the file before a report writes anything.
    """
    result: dict[int, Span] = {}
    for chunk in source.chunks():
        if check:
            chunk.columns()
        ends = ints(chunk.end_ns)
        for tid, ns in zip(ints(chunk.target_id), ends, strict=True):
            span = result.get(tid)
            if span is None:
                result[tid] = Span(tid, 1, ns, ns)
            else:
                span.nr_snapshots += 1
                span.last_ns = ns
    return result


def starts_of(ends: Any) -> Any:
    """Start of each of one target's snapshots, from all its end times (a numpy array).

    A snapshot covers the time since the previous one; the first is given the
    mean interval (`Span.first_start_ns`).  For a target held whole in memory.
    """
    starts = ends.copy()
    if len(ends):
        starts[1:] = ends[:-1]
        starts[0] = Span(0, len(ends), int(ends[0]), int(ends[-1])).first_start_ns
    return starts


def ints(values: Any) -> list[int]:
    """Per-snapshot values of a chunk (lists, or numpy arrays) as a list of ints."""
    return values if isinstance(values, list) else values.tolist()


def shots_per_window(span: Span, window_us: int) -> int:
    """How many snapshots of a target make one window of `window_us` microseconds."""
    interval = span.mean_interval_ns
    if interval <= 0:
        return 1
    return max(round(window_us * 1000 / interval), 1)
