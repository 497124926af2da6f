"""A monitoring context (the seed's `damon_ctx`): attributes, targets, operations, callbacks."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from damo.core.adjust import Adjustment, Seed
from damo.core.attrs import Attrs
from damo.core.clock import Clock, MonotonicClock
from damo.core.intervals import IntervalsTuner
from damo.core.narrow import Narrow
from damo.core.target import Target
from damo.errors import UsageError

if TYPE_CHECKING:
    from damo.core.operations import Operations

# DAMON_MIN_REGION: every region is aligned to and at least this big.  The
# seed's unit tests use 1; so do ours, through Context(min_region=1).
PAGE_SIZE = 4096

# Region adjustment modes: `narrow` (damo's, the default, damo.core.narrow)
# keeps the evidence of a sparse hit until the search narrows in on it; `seed`
# is the seed's exact merge and split (damo.core.adjust).
ADJUST_MODES = ("narrow", "seed")
DEFAULT_ADJUST = "narrow"

# A callback gets the context; a true return value asks monitoring to stop.
Callback = Callable[["Context"], object]


def check_adjust(mode: str, name: str = "region adjustment") -> str:
    """`mode` if it is one of ADJUST_MODES; else a usage error naming it as `name` says."""
    if mode not in ADJUST_MODES:
        raise UsageError(f"unknown {name} {mode!r} (choices: {', '.join(ADJUST_MODES)})")
    return mode


@dataclass
class Callbacks:
    before_start: Callback | None = None
    after_sampling: Callback | None = None
    after_aggregation: Callback | None = None
    before_terminate: Callback | None = None


class Context:
    def __init__(
        self,
        attrs: Attrs | None = None,
        ops: "Operations | None" = None,
        callbacks: Callbacks | None = None,
        rng: np.random.Generator | None = None,
        clock: Clock | None = None,
        min_region: int = PAGE_SIZE,
        adjust: str = DEFAULT_ADJUST,
    ):
        self.attrs = (attrs or Attrs()).validate()
        # The intervals before the operations' CPU budget scales them: the
        # given ones, or those an intervals goal (`intervals_tuner`) chose.
        self.base_attrs = self.attrs
        self.intervals_tuner: IntervalsTuner | None = None
        self.ops = ops
        self.callbacks = callbacks or Callbacks()
        self.rng = rng if rng is not None else np.random.default_rng()
        self.clock = clock or MonotonicClock()
        self.min_region = min_region
        self.adjust = check_adjust(adjust)
        # The adjustment's merge and split (a benchmark may give `narrow` other settings).
        self.adjustment: Adjustment = Narrow() if adjust == "narrow" else Seed()
        self.targets: list[Target] = []
        self.stop_requested = False
        # kdamond_split_regions() remembers the count of its previous call.
        self.last_nr_regions = 0
        # Set by kdamond before each check: merge/split or an update follows it,
        # so a sample the operations prepared ahead during the check would be stale.
        self.regions_change_next = False
        # Set by kdamond before each check (or run of samples): whether an
        # aggregation ends with it, so the operations finish its counts.
        self.aggregating = False

    def set_targets(self, ids: Iterable[int]) -> None:
        """Replace the targets with new, region-less ones of the given ids."""
        self.targets = [Target(i) for i in ids]

    def add_target(self, target: Target) -> None:
        self.targets.append(target)

    def target_ids(self) -> list[int]:
        return [t.id for t in self.targets]

    def request_stop(self) -> None:
        """Ask kdamond to stop after the current sample (safe from a signal handler)."""
        self.stop_requested = True
