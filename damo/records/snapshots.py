"""The in-memory form of a record file: columnar snapshots over flat region arrays.

A *snapshot* is one target's regions at the end of one aggregation window; a
*record* is what one aggregation wrote to the file (one snapshot per target in
recfmt files written by damo or the kernel, one snapshot in perf-script text).
Nothing here is one Python object per region: region ``k`` of snapshot ``i`` is
``start[offsets[i] + k]`` and so on.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Snapshots:
    """Every snapshot of a record file, in file order.

    Per snapshot (length ``len(self)``): ``end_ns`` (int64, end of the
    aggregation window), ``target_id`` (uint64; int64 for recfmt v1), ``record``
    (int64, index of the record it came from, non-decreasing).  ``offsets``
    (int64, length ``len(self) + 1``) delimits each snapshot's regions in the
    flat ``start``/``end`` (uint64) and ``nr_accesses`` (uint32) arrays.
    """

    end_ns: np.ndarray
    target_id: np.ndarray
    record: np.ndarray
    offsets: np.ndarray
    start: np.ndarray
    end: np.ndarray
    nr_accesses: np.ndarray
    source: str = "recfmt v2"
    warnings: list[str] = field(default_factory=list)
    first_snapshot: int = 0  # index in the file of the first snapshot, for a chunk
    path: str | None = None  # the file, for messages about a chunk
    # Per region, aggregation intervals the access frequency stayed about the same
    # (uint32, parallel to nr_accesses), when the file holds it (upstream's JSON records).
    age: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.end_ns)

    # A Snapshots is also a source of one chunk: reports take either.
    def chunks(self) -> Iterator["Snapshots"]:
        return iter([self])

    def columns(self) -> "Snapshots":
        return self

    def region_rows(self, i: int) -> Iterator[tuple[int, int, int]]:
        """(start, end, nr_accesses) of each region of snapshot `i`, as Python ints."""
        start, end, nr = self.regions(i)
        return zip(start.tolist(), end.tolist(), nr.tolist(), strict=True)

    def record_groups(self) -> Iterator[tuple[int, range]]:
        """(time, snapshot indices) of each record, in file order."""
        bounds = np.flatnonzero(np.diff(self.record, prepend=-1)).tolist() + [len(self)]
        ends = self.end_ns.tolist()
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            yield ends[lo], range(lo, hi)

    @property
    def nr_regions(self) -> np.ndarray:
        """Number of regions of each snapshot."""
        return np.diff(self.offsets)

    @property
    def nr_records(self) -> int:
        return int(self.record[-1]) + 1 if len(self.record) else 0

    def regions(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, end, nr_accesses) of snapshot `i`, as views."""
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return self.start[lo:hi], self.end[lo:hi], self.nr_accesses[lo:hi]

    def target_ids(self) -> list[int]:
        """Target ids in order of first appearance."""
        ids, first = np.unique(self.target_id, return_index=True)
        return [int(ids[k]) for k in np.argsort(first, kind="stable")]

    def of_target(self, target_id: int) -> np.ndarray:
        """Indices of `target_id`'s snapshots, in time order."""
        info = np.iinfo(self.target_id.dtype)
        if not info.min <= target_id <= info.max:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(self.target_id == self.target_id.dtype.type(target_id))

    def region_index(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat region indices of the given snapshots, and the snapshot position of each.

        The second array says which element of `indices` each region belongs to,
        so per-snapshot values can be spread over regions with fancy indexing.
        """
        return flat_ranges(self.offsets[indices], self.offsets[np.asarray(indices) + 1])


def flat_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``range(lo[k], hi[k])`` for every k, concatenated, and k for each element.

    Empty or negative ranges contribute nothing.
    """
    counts = np.maximum(hi - lo, 0)
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return np.repeat(lo - first, counts) + np.arange(counts.sum()), owner

def concat(parts: Sequence[Snapshots]) -> Snapshots:
    """One `Snapshots` of consecutive chunks of a file (their record numbers are the file's)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        raise ValueError("no chunks to concatenate")
    counts = np.concatenate([p.nr_regions for p in parts])
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Snapshots(
        end_ns=np.concatenate([p.end_ns for p in parts]),
        target_id=np.concatenate([p.target_id for p in parts]),
        record=np.concatenate([p.record for p in parts]),
        offsets=offsets,
        start=np.concatenate([p.start for p in parts]),
        end=np.concatenate([p.end for p in parts]),
        nr_accesses=np.concatenate([p.nr_accesses for p in parts]),
        source=parts[0].source,
        first_snapshot=parts[0].first_snapshot,
        age=np.concatenate([p.age for p in parts])
        if all(p.age is not None for p in parts) else None,
    )


def from_lists(
    snapshots: list[tuple[int, int, list[tuple[int, int, int]]]], source: str = "memory"
) -> Snapshots:
    """Build `Snapshots` from ``(end_ns, target_id, [(start, end, nr_accesses), ...])``.

    Each tuple is its own record.  Meant for tests and small tools, not big data.
    """
    counts = [len(regions) for _, _, regions in snapshots]
    flat = [r for _, _, regions in snapshots for r in regions]
    arr = np.array(flat, dtype=np.uint64).reshape(-1, 3)
    return Snapshots(
        end_ns=np.array([s[0] for s in snapshots], dtype=np.int64),
        target_id=np.array([s[1] for s in snapshots], dtype=np.uint64),
        record=np.arange(len(snapshots), dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        start=arr[:, 0].copy(),
        end=arr[:, 1].copy(),
        nr_accesses=arr[:, 2].astype(np.uint32),
        source=source,
    )
