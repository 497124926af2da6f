"""Monitoring attributes, with the seed's defaults and `damon_set_attrs` checks."""

from dataclasses import dataclass

from damo.errors import AttrsError


@dataclass(frozen=True)
class Attrs:
    """Intervals in microseconds, as DAMON's debugfs `attrs` file has them."""

    sample_interval: int = 5_000
    aggr_interval: int = 100_000
    update_interval: int = 1_000_000
    min_nr_regions: int = 10
    max_nr_regions: int = 1_000

    def validate(self) -> "Attrs":
        """Raise `AttrsError` for what DAMON would reject (or could not run); return self."""
        for name in ("sample_interval", "aggr_interval", "update_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise AttrsError(f"{name} must be a positive number of microseconds, not {value}")
        if self.aggr_interval < self.sample_interval:
            raise AttrsError(
                f"aggregation interval ({self.aggr_interval} us) is shorter than "
                f"the sampling interval ({self.sample_interval} us)"
            )
        # The two checks of the seed's damon_set_attrs(), in its order.
        if self.min_nr_regions < 3:
            raise AttrsError(f"min_nr_regions ({self.min_nr_regions}) must be at least 3")
        if self.min_nr_regions > self.max_nr_regions:
            raise AttrsError(
                f"invalid nr_regions: min ({self.min_nr_regions}) > max ({self.max_nr_regions})"
            )
        return self
