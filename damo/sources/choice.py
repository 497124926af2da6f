"""Which source `damo record` uses when `--ops` is not given.

Pids go through kernel DAMON (`--ops kernel PID...`) when nothing keeps them
off it, else through damo's BPF sampler (`--ops vaddr`).  What keeps them
off it, each with a test on a fake sysfs tree (tests/test_record_choice.py)
and listed in docs/recording.md:

- `--ops` given (the user chose);
- an option kernel DAMON does not take: the region engine's (`--seed`,
  `--adjust`), damo's sampler's (`--max-cpu`, `--colocate`,
  `--include_child_tasks`, `--max-targets`), sim's (`--truth`); and
  `--attach`, which needs `--ops kernel` said (it records kdamonds, not pids);
- TARGET is not pids (a command string, or nothing);
- the kernel has no DAMON sysfs interface, the interface is in use (damo
  never touches a kdamond it did not start), or its DAMON has no vaddr
  operations;
- damo cannot read the tracepoint: not root, or no bcc.

Reading only: sysfs and /proc/kallsyms are read, nothing is written.
"""

from pathlib import Path

from damo.errors import PlatformError
from damo.sources import SOURCE_OPTIONS, RecordOptions


def why_not_kernel(options: RecordOptions, admin: Path | None = None,
                   kallsyms: Path | None = None) -> str | None:
    """None when `options` (without --ops) should record through kernel DAMON; else why not."""
    if options.ops is not None:
        return f"--ops {options.ops}"
    given = options.given()
    if given:
        return f"{SOURCE_OPTIONS[given[0]]} given"
    return why_not_for_processes(options.targets, admin, kallsyms)


def why_not_for_processes(targets: list[str], admin: Path | None = None,
                          kallsyms: Path | None = None) -> str | None:
    """None when the kernel could monitor these TARGETs itself; else why not.

    It could when they are pids, its DAMON has the vaddr operations and the
    sysfs interface is free for a kdamond of damo's own, whose tracepoint
    damo reads through bcc (as root).
    """
    from damo.linux import damon_sysfs, preflight

    if not targets or not all(t.strip().isdigit() for t in targets):
        return "not pids"
    reason = damon_sysfs.why_no_own_kdamond("vaddr", admin, kallsyms)
    if reason is not None:
        return reason
    try:
        preflight.check_root()
        preflight.check_bcc()
    except PlatformError as err:
        return str(err)
    return None


def choose_ops(options: RecordOptions, admin: Path | None = None,
               kallsyms: Path | None = None) -> str:
    """The `--ops` to record `options` with: as given, else kernel where it fits, else vaddr."""
    if options.ops is not None:
        return options.ops
    return "kernel" if why_not_kernel(options, admin, kallsyms) is None else "vaddr"
