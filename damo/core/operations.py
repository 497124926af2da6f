"""The operations interface, shaped as the seed's `struct damon_primitive`.

It lives in the core, beside the context, as the kernel keeps `struct
damon_operations` beside `damon_ctx`: the core drives operations without
knowing which (`damo.ops` holds the implementations).

kdamond calls `init` once before monitoring, then per sample
`prepare_access_checks` (pick each region's `sampling_addr` and clear its
Accessed state), sleeps, and `check_accesses` (count the accessed samples
into `nr_accesses`; return the highest count, the merge threshold's base).
After each aggregation it calls `reset_aggregated`, after each update
interval `update` (follow the target's changing mappings), and `cleanup`
when monitoring ends.  Monitoring stops once `target_valid` is false for
every target.  Every method has a do-nothing default, as a NULL primitive.

Counts of the checks made: operations may check a region less often than
every sampling interval (a CPU budget, a stalled monitor).  kdamond sets
`ctx.aggregating` before a check (or a run of samples) that ends an
aggregation interval; the operations then finish the interval's counts so
that `nr_accesses` keeps its nominal meaning, the accessed checks scaled to
the nominal number of samples (`damo.ops.vaddr.budget.counts_from_checks`).
The region adjustment sees only nominal counts.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from damo.core.context import Context
    from damo.core.target import Target


class Operations:
    #: The name `damo record --ops` knows this backend by.
    name = "none"
    #: Optional: `run_samples(ctx, deadline_ns) -> max nr_accesses` runs every
    #: sample (prepare, sleep, check) up to the aggregation or update due at
    #: deadline_ns (monotonic ns, the context's clock) in one call, instead of
    #: kdamond calling prepare_access_checks and check_accesses per sample.
    #: It may return early (a signal): kdamond then calls it again.
    run_samples: "Callable[[Context, int], int] | None" = None

    def init(self, ctx: "Context") -> None:
        """Build the initial regions of every target that has none."""

    def update(self, ctx: "Context") -> None:
        """Fit the regions to the targets' current address spaces."""

    def prepare_access_checks(self, ctx: "Context") -> None:
        """Choose this sample's address in each region and make it look unaccessed."""

    def check_accesses(self, ctx: "Context") -> int:
        """Count the sampled addresses accessed since preparation; return max nr_accesses."""
        return 0

    def reset_aggregated(self, ctx: "Context") -> None:
        """Drop backend state aggregated over the last aggregation interval."""

    def target_valid(self, target: "Target") -> bool:
        """Whether the target still exists (a process that has not exited)."""
        return True

    def cleanup(self, ctx: "Context") -> None:
        """Release what the backend holds; monitoring has ended."""
