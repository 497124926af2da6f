"""The monitor loop's clock: real for live targets, virtual for simulation.

kdamond reads the time to decide when an aggregation or an update is due and
sleeps one sampling interval per sample; both go through a clock object so
tests and `sim` can run hours of monitoring in a second.
"""

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int: ...

    def sleep_us(self, us: int) -> None: ...


class MonotonicClock:
    """CLOCK_MONOTONIC, the clock DAMON's record files use."""

    def now_ns(self) -> int:
        return time.clock_gettime_ns(time.CLOCK_MONOTONIC)

    def sleep_us(self, us: int) -> None:
        time.sleep(us / 1e6)


class VirtualClock:
    """Time that passes only when someone sleeps."""

    def __init__(self, start_ns: int = 0):
        self.ns = start_ns

    def now_ns(self) -> int:
        return self.ns

    def sleep_us(self, us: int) -> None:
        self.ns += us * 1000
