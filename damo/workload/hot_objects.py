"""Small hot objects in cold memory: the workloads and the isolation measure.

Shared by the sim accuracy tests, the real-process test and bench/narrow.  An
object is isolated in a snapshot when the regions meeting it are all accessed
(nr_accesses >= 1) and span at most a bound (64 KiB for a 4 KiB page).
"""

import numpy as np

from damo.core.attrs import Attrs
from damo.records.reader import read_snapshots


def objects_workload(total: int, sizes: list[int], seconds: int, rng: np.random.Generator
                     ) -> tuple[str, list[int]]:
    """`total` bytes of cold memory holding hot objects of `sizes` at random, disjoint
    page offsets; the workload text and each object's offset."""
    pages = total // 4096
    while True:
        offs = sorted(int(o) * 4096 for o in rng.integers(0, pages, len(sizes)))
        ends = [o + s for o, s in zip(offs, sizes, strict=True)]
        if all(e <= total for e in ends) and all(
                ends[i] < offs[i + 1] for i in range(len(offs) - 1)):
            break
    regions, cursor, names = [], 0, []
    for k, (o, s) in enumerate(zip(offs, sizes, strict=True)):
        if o > cursor:
            regions.append((f"cold{k}", o - cursor))
        regions.append((f"hot{k}", s))
        names.append(f"hot{k}")
        cursor = o + s
    if cursor < total:
        regions.append(("coldend", total - cursor))
    text = "".join(f'[[regions]]\nname = "{n}"\nsize = {s}\n' for n, s in regions)
    text += (f'[[phases]]\nname = "hot"\nduration_ms = {seconds * 1000}\n'
             f"access = {names!r}\n".replace("'", '"'))
    return text, offs


def covering(snaps, i: int, start: int, end: int) -> tuple[int, bool]:
    """Span of the regions of snapshot i meeting [start, end), and whether all were accessed."""
    s, e, nr = snaps.regions(i)
    s, e = s.astype(np.int64), e.astype(np.int64)
    hit = (s < end) & (e > start)
    if not hit.any():
        return 0, False
    return int(e[hit].max() - s[hit].min()), bool((nr[hit] > 0).all())


def isolation_times(path, objects: list[tuple[int, int]], bounds: list[int],
                    t0_ns: int | None = None):
    """Per object: ([(first, stays) per bound], spans, accessed, times).

    `first` is the first time (s) the object is isolated within the bound,
    `stays` the time from which it is isolated in every snapshot to the end
    (None: never); `spans` the covering span of each snapshot, `accessed`
    whether all its covering regions were accessed, `times` the snapshots'
    ends in seconds from `t0_ns` (default: the start of the first snapshot).
    """
    snaps = read_snapshots(path)
    if t0_ns is None:
        t0_ns = int(snaps.end_ns[0]) - Attrs().aggr_interval * 1000
    times = (snaps.end_ns.astype(np.int64) - t0_ns) / 1e9
    result = []
    for start, end in objects:
        spans = [covering(snaps, i, start, end) for i in range(len(snaps))]
        row = []
        for bound in bounds:
            ok = np.array([found and span <= bound for span, found in spans])
            first = float(times[np.argmax(ok)]) if ok.any() else None
            # stays: isolated in every snapshot from then on
            bad = np.nonzero(~ok)[0]
            stays = None
            if ok[-1]:
                stays = float(times[bad[-1] + 1]) if len(bad) else float(times[0])
            row.append((first, stays))
        result.append((row, [span for span, _ in spans], [f for _, f in spans], times))
    return result


