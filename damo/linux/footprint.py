"""A process's footprint: its virtual size (VSZ) and resident set size (RSS)."""

import os

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def read_footprint(pid: int) -> tuple[int, int] | None:
    """(VSZ, RSS) of `pid` in bytes from /proc/PID/statm, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            fields = f.read().split()
        return int(fields[0]) * PAGE_SIZE, int(fields[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None
