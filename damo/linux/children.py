"""A process's child processes, from /proc/PID/task/TID/children.

Each thread's `children` file lists the processes it forked that have not
been reaped: processes only (a new thread's parent is its creator's parent,
so threads never show there), zombies included.  The files need no special
kernel configuration beyond CONFIG_PROC_CHILDREN, which this machine's and
common distribution kernels set.
"""

from __future__ import annotations

import os


def child_pids(pid: int, all_threads: bool = True) -> list[int]:
    """The pids of `pid`'s children, in no particular order; [] when it is gone.

    Without `all_threads`, only those its main thread forked: one file read
    instead of one per thread (~12 us a thread here).
    """
    if all_threads:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return []
    else:
        tids = [str(pid)]
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:  # the thread ended in between
            continue
    return out


def command_name(pid: int) -> str:
    """The process's command name (/proc/PID/comm), or "" when it is gone."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode(errors="replace")
    except OSError:
        return ""
