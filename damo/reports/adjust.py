"""`damo adjust`: re-aggregate a record file into longer windows, written as recfmt v2.

The first `skip` snapshots of each target are dropped (regions are not adapted
yet), the rest cut into windows of about `aggr_us` (a whole number of
snapshots, from the target's mean snapshot interval) and each window
aggregated (see `damo.reports.aggregate`).  Window ``k`` of every target goes
into record ``k``, time-stamped ``start + k * aggr_us`` where ``start`` is the
first record's time, as DAMON's own adjust tool does.

Two passes: the targets' spans (window lengths, and so how many windows each
target has), then the aggregation, writing record ``k`` as soon as every
target that has a window ``k`` has finished it.
"""

from collections import deque
from typing import Any

from damo.records.writer import RecordWriter, TargetRegions
from damo.reports import aggregate, spans

U64_MASK = (1 << 64) - 1


def adjust(source: Any, aggr_us: int, skip: int, output: str) -> int:
    """Write the adjusted records to `output`; returns how many were written."""
    all_spans = spans.spans(source, check=True)  # a bad file creates no output
    sizes = {tid: spans.shots_per_window(span, aggr_us) for tid, span in all_spans.items()}
    nr_windows = {tid: -(-max(span.nr_snapshots - skip, 0) // sizes[tid])
                  for tid, span in all_spans.items()}
    windows = {tid: aggregate.Windows(size, skip) for tid, size in sizes.items()}
    ready: dict[int, deque] = {tid: deque() for tid in all_spans}
    nr_records = max(nr_windows.values(), default=0)
    base = next(iter(all_spans.values())).first_ns if all_spans else 0
    written = 0
    with RecordWriter(output) as writer:

        def flush() -> None:
            nonlocal written
            while written < nr_records:
                due = [tid for tid in all_spans if written < nr_windows[tid]]
                if any(not ready[tid] for tid in due):
                    return
                targets = [TargetRegions(tid & U64_MASK, *ready[tid].popleft()) for tid in due]
                writer.write(base + written * aggr_us * 1000, targets)
                written += 1

        for chunk in source.chunks():
            snaps = chunk.columns()
            for tid in snaps.target_ids():
                for i in snaps.of_target(tid):
                    done = windows[tid].add(*snaps.regions(int(i)))
                    if done is not None:
                        ready[tid].append(done)
            flush()
        for tid, window in windows.items():
            done = window.finish()
            if done is not None:
                ready[tid].append(done)
        flush()
    return written


