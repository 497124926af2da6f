"""A periodic software perf event on one CPU, with a BPF program attached: a clock in the kernel.

`perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK)` with a sample
period in nanoseconds fires an hrtimer every period on the chosen CPU and runs
the attached BPF program (BPF_PROG_TYPE_PERF_EVENT) in interrupt context there,
whatever task is current: no process wakes.  The event belongs to its file
descriptor (close-on-exec): closing it, or the process ending, detaches the
program; nothing is pinned, so nothing outlives damo.
"""

from __future__ import annotations

import ctypes
import fcntl
import struct

from damo.errors import PlatformError
from damo.linux import syscalls

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_CPU_CLOCK = 0
PERF_FLAG_FD_CLOEXEC = 1 << 3
ATTR_SIZE = 128  # PERF_ATTR_SIZE_VER8 and below fit; the rest is zero
ATTR_DISABLED = 1 << 0
# ioctls (include/uapi/linux/perf_event.h)
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408
PERF_EVENT_IOC_PERIOD = 0x40082404  # _IOW('$', 4, __u64)

class PerfEventAttr(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("rest", ctypes.c_uint8 * (ATTR_SIZE - 48)),
    ]


def open_cpu_clock(period_ns: int, cpu: int) -> int:
    """A disabled cpu-clock event of `period_ns` on `cpu`, for all tasks; its fd."""
    attr = PerfEventAttr(type=PERF_TYPE_SOFTWARE, size=ATTR_SIZE, config=PERF_COUNT_SW_CPU_CLOCK,
                         sample_period=period_ns, flags=ATTR_DISABLED)
    try:
        return syscalls.perf_event_open(attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)
    except OSError as e:
        raise PlatformError(f"perf_event_open(cpu-clock, cpu {cpu}) refused: "
                            f"{e.strerror.partition(': ')[2]}") from None


def set_period(event_fd: int, period_ns: int) -> None:
    """A new period for the event; the next sample comes one period from now."""
    try:
        fcntl.ioctl(event_fd, PERF_EVENT_IOC_PERIOD, struct.pack("=Q", period_ns))
    except OSError as e:
        raise PlatformError(f"cannot change a perf event's period: {e.strerror}") from None


def attach_bpf(event_fd: int, prog_fd: int) -> None:
    """Attach a BPF_PROG_TYPE_PERF_EVENT program and enable the event."""
    try:
        fcntl.ioctl(event_fd, PERF_EVENT_IOC_SET_BPF, prog_fd)
        fcntl.ioctl(event_fd, PERF_EVENT_IOC_ENABLE, 0)
    except OSError as e:
        raise PlatformError(f"cannot attach a BPF program to a perf event: {e.strerror}") from None
