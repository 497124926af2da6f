"""`damo report footprints` and `wss --footprints`: what the process held, beside what it touched.

`damo record` writes each process target's VSZ and RSS into the sidecar once
per aggregation (``footprints`` messages, `damo.records.meta`).  The
footprints report is their distribution in `wss`'s format; `wss --footprints`
puts beside each snapshot's working set the RSS read at the end of the same
aggregation, and the share of the RSS the working set is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from damo.errors import RecordFormatError
from damo.reports import spans

KINDS = ("vsz", "rss")


class Footprints:
    """Per target: times (int64 ns) and VSZ, RSS (uint64 bytes) in time order."""

    def __init__(self, messages: list[dict] | None):
        rows: dict[int, list[tuple[int, int, int]]] = {}
        for msg in messages or []:
            if msg.get("type") != "footprints":
                continue
            for entry in msg.get("targets") or []:
                tid, vsz, rss = entry[:3]
                rows.setdefault(int(tid), []).append((int(msg["time_ns"]), int(vsz), int(rss)))
        self.series: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for tid, values in rows.items():
            values.sort()
            arr = np.array(values, dtype=np.int64).reshape(-1, 3)
            self.series[tid] = (arr[:, 0], arr[:, 1].astype(np.uint64),
                                arr[:, 2].astype(np.uint64))

    @classmethod
    def of_record(cls, record_path: str) -> Footprints:
        """The footprints in `record_path`'s sidecar; RecordFormatError when there are none."""
        from damo.records.meta import meta_path, read_meta

        messages = read_meta(record_path)
        if messages is None:
            raise RecordFormatError(f"{meta_path(record_path)}: no such file (footprints are "
                                    "in the sidecar `damo record` writes next to the record)")
        found = cls(messages)
        if not found.series:
            raise RecordFormatError(f"{meta_path(record_path)}: no footprints (written by damo "
                                    "record for process targets, since version 0.1)")
        return found

    def per_target(self, kind: str) -> list[tuple[int, np.ndarray]]:
        column = 1 + KINDS.index(kind)
        return [(tid, series[column]) for tid, series in self.series.items()]

    def rss_at(self, target_id: int, times: np.ndarray) -> np.ndarray | None:
        """The RSS read last at or before each time (the first one before any)."""
        series = self.series.get(target_id)
        if series is None:
            return None
        at = np.maximum(np.searchsorted(series[0], times, side="right") - 1, 0)
        return series[2][at]


def check_kind(kind: str) -> None:
    from damo.errors import UsageError

    if kind not in KINDS:
        raise UsageError(f"expected vsz or rss, not {kind!r}")


def wss_times(source: Any, work_time_us: int, exclude: int) -> dict[int, np.ndarray]:
    """Per target, the end time of each value `wss.values_per_target` gives for the same
    arguments: each snapshot's, or with windows, the last snapshot's of each window.

    One pass over the snapshot headers of `source` (one number per snapshot kept).
    """
    ends: dict[int, list[int]] = {}
    for chunk in source.chunks():
        for tid, ns in zip(spans.ints(chunk.target_id), spans.ints(chunk.end_ns), strict=True):
            ends.setdefault(tid, []).append(ns)
    result = {}
    for tid, values in ends.items():
        times = np.array(values, dtype=np.int64)
        size = spans.shots_per_window(
            spans.Span(tid, len(values), values[0], values[-1]), work_time_us)
        if size > 1:
            # Windows of `size` after the first `exclude`; the last may be shorter.
            kept = times[exclude:]
            last = np.arange(size - 1, len(kept), size)
            if len(kept) % size:
                last = np.append(last, len(kept) - 1)
            times = kept[last]
        result[tid] = times
    return result


def beside_table(rows: list[tuple[int, np.ndarray, np.ndarray | None]], points: list[int],
                 by_size: bool) -> str:
    """`wss --footprints`: per target, percentile rows of WSS, the RSS of the same moment and
    WSS/RSS; sorted by WSS when `by_size`, else in time order."""
    lines = ["# <percentile> <wss> <rss> <wss/rss>"]
    for tid, wss, rss in rows:
        n = len(wss)
        order = np.argsort(wss, kind="stable") if by_size else np.arange(n)
        lines.append(f"# target_id\t{tid}")
        if rss is None:
            lines.append("# no footprints of this target in the sidecar")
            rss = np.zeros(n, dtype=np.uint64)
        wss_avr = int(int(wss.sum(dtype=np.uint64)) / n)
        rss_avr = int(int(rss.sum(dtype=np.uint64)) / n)
        lines.append(f"# avr:\t{wss_avr}\t{rss_avr}\t{_ratio(wss_avr, rss_avr)}")
        for p in points:
            k = int(order[min(int(p / 100.0 * n), n - 1)])
            lines.append(f"{p}\t{int(wss[k])}\t{int(rss[k])}\t{_ratio(int(wss[k]), int(rss[k]))}")
    return "\n".join(lines) + "\n"


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.3f}" if whole > 0 else "-"


def emit_beside(source: Any, record_path: str, per_target: list[tuple[int, np.ndarray]],
                points: list[int], by_size: bool, plot_path: str | None, work_time_us: int,
                exclude: int) -> None:
    """Print `wss --footprints` (and with `plot_path`, draw WSS and RSS per target)."""
    from damo.reports.output import write_chunks

    if plot_path is not None:
        from damo.reports import plot

        plot.terminal_for(plot_path)
    found = Footprints.of_record(record_path)
    times = wss_times(source, work_time_us, exclude)
    rows = [(tid, values, found.rss_at(tid, times[tid])) for tid, values in per_target]
    write_chunks([beside_table(rows, points, by_size)])
    if plot_path is not None:
        from damo.reports.dist import pick

        series = []
        for tid, wss, rss in rows:
            series.append((f"target {tid} wss", pick(wss, points, by_size)))
            if rss is not None:
                series.append((f"target {tid} rss", pick(rss, points, by_size)))
        plot.distribution_image(series, plot_path, "percentile" if by_size else
                                "runtime (percent)", "size", sizes=True)
