"""A monitoring target and its regions (the seed's `damon_target`, `damon_region`).

The regions of a target live in parallel numpy arrays, in address order, so the
per-sample work of an operations backend is a handful of vectorised calls:

- `start`, `end`: the region is `[start, end)`;
- `nr_accesses`: access count aggregated since the last aggregation;
- `sampling_addr`: the address checked in the current sample;
- `hold`: aggregations left during which the region, a piece of a search for
  a small hot object, stays out of merges until a sample hits it (the
  `narrow` adjustment's state; always 0 with `--adjust seed`);
- `last_nr_accesses`: the counts of the last aggregation, after its merge
  (the kernel's `last_nr_accesses`: stored at the reset, kept by splits; the
  `narrow` split reads it too);
- `age`: aggregations the region's access count has stayed about the same
  (the kernel's `age`; `damo.core.age` has the rule).  Merges take the
  size-weighted age, split pieces keep their region's.

The per-region editing functions (add, insert, delete) are for building and
for tests; the per-aggregation passes in `damo.core.adjust` rebuild the arrays
at once.
"""

from typing import NamedTuple

import numpy as np

ADDR_DTYPE = np.int64
COUNT_DTYPE = np.int64
HOLD_DTYPE = np.int32
AGE_DTYPE = np.int64


class Region(NamedTuple):
    start: int
    end: int
    nr_accesses: int


def _array(values: object = ()) -> np.ndarray:
    return np.array(values, dtype=ADDR_DTYPE).reshape(-1)


class Target:
    """One monitoring target: an id (a pid, or any number) and its regions."""

    def __init__(self, target_id: int):
        self.id = target_id
        self.set_regions(_array(), _array())

    def set_regions(
        self, start: np.ndarray, end: np.ndarray, nr_accesses: np.ndarray | None = None,
        parent: np.ndarray | None = None,
    ) -> None:
        """Replace every region; the arrays must be sorted and non-overlapping.

        `parent[i]` is the index of the old region new region i comes from (a
        split piece, or the first part of a merge): it keeps that region's
        history (`age`, `last_nr_accesses`); without it, or where it is -1, the
        region starts afresh, as a new one does.
        """
        if parent is not None:
            parent = np.asarray(parent, dtype=np.int64)
            if not len(self.age):
                age = np.zeros(len(parent), dtype=AGE_DTYPE)
                last = np.zeros(len(parent), dtype=COUNT_DTYPE)
            elif not len(parent) or parent.min() >= 0:  # merges and splits: every parent known
                age, last = self.age[parent], self.last_nr_accesses[parent]
            else:
                known = parent >= 0
                idx = np.where(known, parent, 0)
                age = np.where(known, self.age[idx], 0)
                last = np.where(known, self.last_nr_accesses[idx], 0)
        self.start = _array(start)
        self.end = _array(end)
        if nr_accesses is None:
            self.nr_accesses = np.zeros(len(self.start), dtype=COUNT_DTYPE)
        else:
            self.nr_accesses = np.array(nr_accesses, dtype=COUNT_DTYPE).reshape(-1)
        self.sampling_addr = self.start.copy()
        self.hold = np.zeros(len(self.start), dtype=HOLD_DTYPE)
        if parent is None:
            self.last_nr_accesses = np.zeros(len(self.start), dtype=COUNT_DTYPE)
            self.age = np.zeros(len(self.start), dtype=AGE_DTYPE)
        else:
            self.last_nr_accesses = last.astype(COUNT_DTYPE, copy=False)  # new arrays already
            self.age = age.astype(AGE_DTYPE, copy=False)

    @property
    def nr_regions(self) -> int:
        return len(self.start)

    def region(self, index: int) -> Region:
        return Region(int(self.start[index]), int(self.end[index]), int(self.nr_accesses[index]))

    def regions(self) -> list[Region]:
        return [
            Region(*r)
            for r in zip(
                self.start.tolist(), self.end.tolist(), self.nr_accesses.tolist(), strict=True
            )
        ]

    def total_size(self) -> int:
        return int((self.end - self.start).sum())

    def insert_region(self, index: int, start: int, end: int, nr_accesses: int = 0,
                      age: int = 0) -> None:
        """Put `[start, end)` in front of the region now at `index` (append at len)."""
        self.start = np.insert(self.start, index, start)
        self.end = np.insert(self.end, index, end)
        self.nr_accesses = np.insert(self.nr_accesses, index, nr_accesses)
        self.sampling_addr = np.insert(self.sampling_addr, index, start)
        self.hold = np.insert(self.hold, index, 0)
        self.last_nr_accesses = np.insert(self.last_nr_accesses, index, 0)
        self.age = np.insert(self.age, index, age)

    def add_region(self, start: int, end: int, nr_accesses: int = 0) -> None:
        """Append a region at the end, as the seed's `damon_add_region`."""
        self.insert_region(self.nr_regions, start, end, nr_accesses)

    def del_region(self, index: int) -> None:
        self.start = np.delete(self.start, index)
        self.end = np.delete(self.end, index)
        self.nr_accesses = np.delete(self.nr_accesses, index)
        self.sampling_addr = np.delete(self.sampling_addr, index)
        self.hold = np.delete(self.hold, index)
        self.last_nr_accesses = np.delete(self.last_nr_accesses, index)
        self.age = np.delete(self.age, index)

    def clear(self) -> None:
        self.set_regions(_array(), _array())
