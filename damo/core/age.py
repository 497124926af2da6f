"""Region age: for how many aggregations a region's access count has stayed about the same.

The kernel's rule (mm/damon/core.c, `damon_merge_regions_of`), applied at
every aggregation before the merge:

- a region's age goes back to 0 when its `nr_accesses` differs from the count
  of the last aggregation (`last_nr_accesses`) by more than the merge
  threshold, or when one of the two is zero and the other is not (a later
  addition to the kernel's rule: a region going idle, or waking up, starts a
  new age even when the threshold is wide);
- otherwise it grows by one;
- merged regions take the size-weighted age of their parts, split pieces
  keep their region's age and last count (`Target.set_regions(parent=...)`),
  new regions start at 0;
- the merged counts become `last_nr_accesses` at the reset that follows.

One difference, in the rounding: the kernel divides at each pairwise merge
(`damon_merge_two_regions`), rounding down, so a region merged from k parts
is rounded down up to k - 1 times; damo divides once per merged region, to
the nearest.  Rounding down at all biases ages low wherever parts of
different ages merge, and the split and merge move the boundaries every
aggregation, so the bias compounds: with `narrow`'s dense cover of small
cold pieces the kernel's repeated rounding would wipe the ages of idle
memory out (37 pieces of an idle region aged 3, merged one by one into a
piece aged 0, stay at 0), and even one rounding down per merge left an idle
region's ages a gradient behind the truth (each region took a sliver of
its younger neighbour, the straddler of a phase change, and lost a whole
aggregation to it: on `sim`, 3 of 12 seeds had the region's median idle
time 1-2 aggregations short and 39-59 % of its bytes within one; to the
nearest, 12 of 12 have every byte within one, tests/test_age.py).

So an unaccessed region's age, in aggregations, is how long it has been idle
(the report's idle time, `damo.reports.access`).
"""

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.core.target import Target


def changed(nr: np.ndarray, last: np.ndarray, threshold: int) -> np.ndarray:
    """Which regions start a new age: their count moved by more than `threshold`,
    or between zero and non-zero."""
    nr = nr.astype(np.int64, copy=False)
    last = last.astype(np.int64, copy=False)
    return (np.abs(nr - last) > threshold) | ((nr == 0) != (last == 0))


def next_ages(age: np.ndarray, nr: np.ndarray, last: np.ndarray, threshold: int) -> np.ndarray:
    """The ages after one aggregation with counts `nr` (before any merge)."""
    return np.where(changed(nr, last, threshold), 0, age + 1)


def age_regions(ctx: "Context", threshold: int) -> None:
    """Step every region's age for the aggregation now closing (before its merge)."""
    for t in ctx.targets:
        t.age = next_ages(t.age, t.nr_accesses, t.last_nr_accesses, threshold).astype(t.age.dtype)


def remember_counts(t: "Target") -> None:
    """At the reset: the merged counts are what the next aggregation is compared with."""
    t.last_nr_accesses = t.nr_accesses.copy()
