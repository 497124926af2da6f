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
