"""The validated form of a workload description."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegionSpec:
    name: str
    size: int  # bytes
    gap_before: int = 0  # unmapped bytes before the region


@dataclass(frozen=True)
class Phase:
    name: str
    duration_ms: int
    # region name -> chance that a page of it is accessed in one sampling interval
    access: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    regions: tuple[RegionSpec, ...]
    phases: tuple[Phase, ...]
    loop: bool = False
    path: str = "<workload>"

    @property
    def duration_ns(self) -> int:
        """Length of one pass over the phases."""
        return sum(p.duration_ms for p in self.phases) * 1_000_000

    def layout(self, page_size: int = 4096) -> list[tuple[RegionSpec, int, int]]:
        """Each region's `[start, end)` as offsets from where the workload's memory begins.

        Regions follow in file order, each after its `gap_before` of unmapped
        space, starts and sizes rounded up to whole pages; the last end is the
        span of the whole layout, gaps included.
        """
        placed, addr = [], 0
        for region in self.regions:
            start = -(-(addr + region.gap_before) // page_size) * page_size
            addr = start + -(-region.size // page_size) * page_size
            placed.append((region, start, addr))
        return placed
