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
            times, vsz, rss = zip(*values, strict=True)
            self.series[tid] = (np.array(times, dtype=np.int64), np.array(vsz, dtype=np.uint64),
                                np.array(rss, dtype=np.uint64))

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
        """The RSS read at each time (written with the snapshot ending then), 0 where none was.

        `matched(target_id, times)` says which times have one: a sidecar cut short has
        none for its later snapshots, and an older reading is never paired with them.
        """
        series = self.series.get(target_id)
        if series is None:
            return None
        at, ok = self._match(series[0], times)
        return np.where(ok, series[2][at], np.uint64(0)).astype(np.uint64)

    def matched(self, target_id: int, times: np.ndarray) -> np.ndarray:
        """Per time, whether a footprint of the target was read at it (bool array)."""
        series = self.series.get(target_id)
        if series is None:
            return np.zeros(len(times), dtype=bool)
        return self._match(series[0], times)[1]

    @staticmethod
    def _match(read_ns: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # damo record reads the footprints at the end of each aggregation and stamps them
        # with the snapshot's end time: the reading at or just before a time belongs to it
        # when it is closer than half the spacing of the readings.
        times = np.asarray(times, dtype=np.int64)
        at = np.searchsorted(read_ns, times, side="right") - 1
        spacing = int(np.median(np.diff(read_ns))) if len(read_ns) > 1 else 0
        ok = at >= 0
        clipped = np.maximum(at, 0)
        ok &= times - read_ns[clipped] <= spacing // 2
        return clipped, ok


def missing_note(meta: str, target_id: int, times: np.ndarray, ok: np.ndarray,
                 first_ns: int) -> str | None:
    """One warning line when footprints are missing for some of a target's snapshots."""
    if ok.all() or len(times) == 0:
        return None
    missing = int((~ok).sum())
    span = f"{(times[0] - first_ns) / 1e9:.1f}-{(times[-1] - first_ns) / 1e9:.1f} s"
    if not ok.any():
        where = f"none in the record's {span}"
    else:
        last_ok = int(times[ok][-1])
        tail = ok[np.searchsorted(times, last_ok, side="right"):]
        where = (f"none after {(last_ok - first_ns) / 1e9:.1f} s of the record's {span}: the "
                 "sidecar was cut short" if not tail.any() and not ok[-1]
                 else f"gaps within the record's {span}")
    return (f"damo: warning: {meta}: target {target_id}: no footprint for {missing} of "
            f"{len(times)} snapshots ({where}); those are left out, not paired with "
            "older readings")


def warn_missing(record_path: str, found: Footprints, times: dict[int, np.ndarray]) -> None:
    """Print `missing_note` for every target of the record whose footprints do not cover it."""
    import sys

    from damo.records.meta import meta_path

    first = min((int(t[0]) for t in times.values() if len(t)), default=0)
    for tid in sorted(times):
        note = missing_note(meta_path(record_path), tid, times[tid], found.matched(tid,
                            times[tid]), first)
        if note is not None:
            print(note, file=sys.stderr)


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


def beside_table(rows: list[tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]],
                 points: list[int], by_size: bool) -> str:
    """`wss --footprints`: per target, percentile rows of WSS, the RSS of the same moment and
    WSS/RSS; sorted by WSS when `by_size`, else in time order. Where no RSS was read at a
    snapshot's moment (`ok` false), its RSS and ratio read "-" and the mean leaves it out."""
    lines = ["# <percentile> <wss> <rss> <wss/rss>"]
    for tid, wss, rss, ok in rows:
        n = len(wss)
        order = np.argsort(wss, kind="stable") if by_size else np.arange(n)
        lines.append(f"# target_id\t{tid}")
        if rss is None:
            lines.append("# no footprints of this target in the sidecar")
            rss = np.zeros(n, dtype=np.uint64)
            ok = np.zeros(n, dtype=bool)
        if ok is None:
            ok = np.ones(n, dtype=bool)
        wss_avr = int(int(wss.sum(dtype=np.uint64)) / n)
        if ok.any():
            rss_avr = int(int(rss[ok].sum(dtype=np.uint64)) / int(ok.sum()))
            wss_ok = int(int(wss[ok].sum(dtype=np.uint64)) / int(ok.sum()))
            lines.append(f"# avr:\t{wss_avr}\t{rss_avr}\t{_ratio(wss_ok, rss_avr)}")
        else:
            lines.append(f"# avr:\t{wss_avr}\t-\t-")
        for p in points:
            k = int(order[min(int(p / 100.0 * n), n - 1)])
            if ok[k]:
                lines.append(f"{p}\t{int(wss[k])}\t{int(rss[k])}\t"
                             f"{_ratio(int(wss[k]), int(rss[k]))}")
            else:
                lines.append(f"{p}\t{int(wss[k])}\t-\t-")
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
    rows = [(tid, values, found.rss_at(tid, times[tid]), found.matched(tid, times[tid]))
            for tid, values in per_target]
    warn_missing(record_path, found, {tid: times[tid] for tid, *_ in rows
                                      if tid in found.series})
    write_chunks([beside_table(rows, points, by_size)])
    if plot_path is not None:
        from damo.reports.dist import pick

        series = []
        for tid, wss, rss, ok in rows:
            series.append((f"target {tid} wss", pick(wss, points, by_size)))
            if rss is not None and ok.any():
                series.append((f"target {tid} rss", pick(rss[ok], points, by_size)))
        plot.distribution_image(series, plot_path, "percentile" if by_size else
                                "runtime (percent)", "size", sizes=True)
