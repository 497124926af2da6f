"""`damo report wss`: the working set size of each snapshot, as a percentile table.

A snapshot's working set is the total size of its regions accessed at least
`acc_thres` times and at least `sz_thres` bytes big.  With `work_time`
(microseconds) longer than the snapshot interval, consecutive snapshots are
first aggregated into windows of that length, after skipping the first
`exclude` snapshots.  One pass over the file, chunk by chunk, keeping one
number per snapshot (two passes when windows are needed: their length comes
from the targets' mean snapshot intervals).
"""

from typing import Any

import numpy as np

from damo.records.snapshots import Snapshots
from damo.reports import aggregate, dist, spans


def wss_per_snapshot(snaps: Snapshots, indices: np.ndarray, acc_thres: int,
                     sz_thres: int) -> np.ndarray:
    flat, owner = snaps.region_index(indices)
    sizes = snaps.end[flat] - snaps.start[flat]
    counted = np.where((snaps.nr_accesses[flat] >= acc_thres) & (sizes >= sz_thres), sizes, 0)
    total = np.zeros(len(flat) + 1, dtype=np.uint64)
    np.cumsum(counted, out=total[1:])
    ends = np.cumsum(snaps.nr_regions[indices])
    return total[ends] - total[ends - snaps.nr_regions[indices]]


def _window_wss(window: tuple[np.ndarray, np.ndarray, np.ndarray], acc_thres: int,
                sz_thres: int) -> int:
    start, end, nr = window
    sizes = end - start
    return int(sizes[(nr >= acc_thres) & (sizes >= sz_thres)].sum())


def values_per_target(source: Any, acc_thres: int, sz_thres: int, work_time_us: int,
                      exclude: int) -> dict[int, np.ndarray]:
    """Every target's working set sizes, in order of first appearance.

    One pass gives each snapshot's size and each target's span; a target
    whose snapshots are shorter than `work_time_us` takes a second pass,
    aggregating them into windows.
    """
    found: dict[int, spans.Span] = {}
    parts: dict[int, list] = {}
    for chunk in source.chunks():
        snaps = chunk.columns()
        for tid in snaps.target_ids():
            indices = snaps.of_target(tid)
            span = found.get(tid)
            if span is None:
                span = found[tid] = spans.Span(tid, 0, int(snaps.end_ns[indices[0]]), 0)
                parts[tid] = []
            span.nr_snapshots += len(indices)
            span.last_ns = int(snaps.end_ns[indices[-1]])
            parts[tid].append(wss_per_snapshot(snaps, indices, acc_thres, sz_thres))
    sizes = {tid: spans.shots_per_window(span, work_time_us) for tid, span in found.items()}
    windows = {tid: aggregate.Windows(size, exclude) for tid, size in sizes.items() if size > 1}
    if windows:
        for tid in windows:
            parts[tid] = []
        for chunk in source.chunks():
            snaps = chunk.columns()
            for tid in windows:
                for i in snaps.of_target(tid):
                    done = windows[tid].add(*snaps.regions(int(i)))
                    if done is not None:
                        parts[tid].append(np.array([_window_wss(done, acc_thres, sz_thres)],
                                                   dtype=np.uint64))
        for tid, window in windows.items():
            done = window.finish()
            if done is not None:
                parts[tid].append(np.array([_window_wss(done, acc_thres, sz_thres)],
                                           dtype=np.uint64))
    return {tid: np.concatenate(p) if p else np.zeros(0, dtype=np.uint64)
            for tid, p in parts.items()}


def per_target(source: Any, acc_thres: int, sz_thres: int, work_time_us: int,
               exclude: int) -> list[tuple[int, np.ndarray]]:
    values = values_per_target(source, acc_thres, sz_thres, work_time_us, exclude)
    return dist.rows(values, exclude)
