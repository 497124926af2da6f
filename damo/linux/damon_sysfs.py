"""Kernel DAMON's sysfs interface (`/sys/kernel/mm/damon/admin`): reading it, and
running a kdamond of damo's own.

The rule this module enforces: damo never writes to a kdamond it did not start.
Reading any kdamond is fine (`read_kdamonds`); writing happens only through
`OwnKdamond`, which refuses unless the interface is empty (no kdamond
directories at all, so nobody else's configuration can be disturbed), and on
exit, normal or not, turns its kdamond off and removes it, leaving the tree as
it found it.

Layout used (kernel 6.x)::

    kdamonds/nr_kdamonds
    kdamonds/N/{state,pid}
    kdamonds/N/contexts/nr_contexts
    kdamonds/N/contexts/M/{operations,avail_operations}
    kdamonds/N/contexts/M/monitoring_attrs/intervals/{sample_us,aggr_us,update_us}
    kdamonds/N/contexts/M/monitoring_attrs/nr_regions/{min,max}
    kdamonds/N/contexts/M/targets/nr_targets
    kdamonds/N/contexts/M/targets/K/pid_target
"""

from dataclasses import dataclass, field
from pathlib import Path

from damo.errors import DamoError, PlatformError, UsageError

ADMIN_DIR = Path("/sys/kernel/mm/damon/admin")
# Which operation sets the kernel has built, when no context exists to ask.
KALLSYMS = Path("/proc/kallsyms")
# A symbol prefix of each operation set's source (mm/damon/vaddr.c, paddr.c).
OPS_SYMBOLS = {"vaddr": b" damon_va_", "paddr": b" damon_pa_"}


@dataclass(frozen=True)
class ContextInfo:
    """One monitoring context of a kdamond, as sysfs shows it."""

    operations: str
    sample_us: int
    aggr_us: int
    update_us: int
    min_nr_regions: int
    max_nr_regions: int
    target_pids: tuple[int, ...]


@dataclass(frozen=True)
class KdamondInfo:
    index: int
    state: str
    pid: int | None
    contexts: tuple[ContextInfo, ...] = field(default_factory=tuple)

    @property
    def running(self) -> bool:
        return self.state == "on"


def _read(path: Path) -> str:
    return path.read_text().strip()


def _read_int(path: Path) -> int:
    return int(_read(path))


def _read_context(ctx: Path) -> ContextInfo:
    attrs = ctx / "monitoring_attrs"
    targets = ctx / "targets"
    pids = tuple(
        _read_int(targets / str(k) / "pid_target") for k in range(_read_int(targets / "nr_targets"))
    )
    return ContextInfo(
        operations=_read(ctx / "operations"),
        sample_us=_read_int(attrs / "intervals" / "sample_us"),
        aggr_us=_read_int(attrs / "intervals" / "aggr_us"),
        update_us=_read_int(attrs / "intervals" / "update_us"),
        min_nr_regions=_read_int(attrs / "nr_regions" / "min"),
        max_nr_regions=_read_int(attrs / "nr_regions" / "max"),
        target_pids=pids,
    )


def check_interface(admin: Path = ADMIN_DIR) -> None:
    if not (admin / "kdamonds" / "nr_kdamonds").exists():
        raise PlatformError(
            f"kernel DAMON's sysfs interface is missing ({admin}): "
            "the kernel needs CONFIG_DAMON_SYSFS"
        )


def read_kdamonds(admin: Path = ADMIN_DIR) -> list[KdamondInfo]:
    """Every kdamond the interface lists, read-only."""
    check_interface(admin)
    kdamonds_dir = admin / "kdamonds"
    found = []
    for n in range(_read_int(kdamonds_dir / "nr_kdamonds")):
        kd = kdamonds_dir / str(n)
        state = _read(kd / "state")
        pid_text = _read(kd / "pid")
        ctx_dir = kd / "contexts"
        contexts = tuple(
            _read_context(ctx_dir / str(m)) for m in range(_read_int(ctx_dir / "nr_contexts"))
        )
        pid = int(pid_text) if state == "on" and pid_text.lstrip("-").isdigit() else None
        found.append(KdamondInfo(index=n, state=state, pid=pid, contexts=contexts))
    return found


def offered_operations(admin: Path | None = None, kallsyms: Path | None = None) -> set[str]:
    """The operation sets the running kernel's DAMON offers, read-only.

    A context's `avail_operations` says; but while the interface is free no
    context exists to read it from, and making one would be a write.  Then the
    kernel's symbols tell which operation sets are built.
    """
    admin = ADMIN_DIR if admin is None else admin
    for avail in sorted(admin.glob("kdamonds/*/contexts/*/avail_operations")):
        try:
            return set(_read(avail).split())
        except OSError:
            continue
    try:
        symbols = (KALLSYMS if kallsyms is None else kallsyms).read_bytes()
    except OSError:
        return set()
    return {ops for ops, prefix in OPS_SYMBOLS.items() if prefix in symbols}


def why_no_own_kdamond(ops: str, admin: Path | None = None,
                       kallsyms: Path | None = None) -> str | None:
    """None when damo could start a kdamond of its own with `ops` now; else why not (read-only)."""
    admin = ADMIN_DIR if admin is None else admin
    try:
        nr = _read_int(admin / "kdamonds" / "nr_kdamonds")
    except (OSError, ValueError):
        return "the kernel has no DAMON sysfs interface"
    if nr:
        return f"kernel DAMON's sysfs interface is in use ({nr} kdamond(s))"
    if ops not in offered_operations(admin, kallsyms):
        return f"the kernel's DAMON has no {ops} operations"
    return None


class OwnKdamond:
    """A kdamond configured and started by damo, undone on exit.

    Use as a context manager::

        with OwnKdamond(ops="paddr", sample_us=5000, ...) as kd:
            ...  # kd.index is the kdamond's directory, kd.pid its thread
    """

    def __init__(
        self,
        *,
        ops: str,
        sample_us: int,
        aggr_us: int,
        update_us: int,
        min_nr_regions: int,
        max_nr_regions: int,
        target_pids: tuple[int, ...] = (),
        admin: Path = ADMIN_DIR,
    ):
        self.admin = admin
        self.ops = ops
        self.intervals = {"sample_us": sample_us, "aggr_us": aggr_us, "update_us": update_us}
        self.nr_regions = {"min": min_nr_regions, "max": max_nr_regions}
        self.target_pids = target_pids
        self.index = 0
        self.pid: int | None = None
        self._created = False
        self._started = False

    def _write(self, path: Path, value: object) -> None:
        try:
            path.write_text(f"{value}\n")
        except OSError as err:
            raise DamoError(
                f"kernel DAMON refused {value!r} for {path.relative_to(self.admin)}: {err.strerror}"
            ) from None

    def refuse_if_in_use(self) -> None:
        """UsageError unless the interface holds no kdamond at all."""
        check_interface(self.admin)
        kdamonds = read_kdamonds(self.admin)
        running = [kd for kd in kdamonds if kd.running]
        if running:
            kd = running[0]
            raise UsageError(
                f"kernel DAMON is already running (kdamond {kd.index}, pid {kd.pid}); "
                "damo does not touch a kdamond it did not start: record it with --attach"
            )
        if kdamonds:
            raise UsageError(
                f"kernel DAMON has {len(kdamonds)} configured kdamond(s) that damo did not create; "
                "damo leaves them alone: remove them (echo 0 > nr_kdamonds) or use --attach"
            )

    def start(self) -> "OwnKdamond":
        self.refuse_if_in_use()
        kdamonds_dir = self.admin / "kdamonds"
        self._write(kdamonds_dir / "nr_kdamonds", 1)
        self._created = True
        kd = kdamonds_dir / str(self.index)
        ctx_dir = kd / "contexts"
        self._write(ctx_dir / "nr_contexts", 1)
        ctx = ctx_dir / "0"
        avail = ctx / "avail_operations"
        if avail.exists() and self.ops not in _read(avail).split():
            raise PlatformError(
                f"this kernel's DAMON lacks the {self.ops!r} operations "
                f"(it offers: {_read(avail) or 'none'})"
            )
        self._write(ctx / "operations", self.ops)
        attrs = ctx / "monitoring_attrs"
        for name, value in self.intervals.items():
            self._write(attrs / "intervals" / name, value)
        # min before max could be refused when the new min exceeds the old max.
        self._write(attrs / "nr_regions" / "max", self.nr_regions["max"])
        self._write(attrs / "nr_regions" / "min", self.nr_regions["min"])
        targets = ctx / "targets"
        nr_targets = len(self.target_pids) if self.target_pids else 1
        self._write(targets / "nr_targets", nr_targets)
        for k, pid in enumerate(self.target_pids):
            self._write(targets / str(k) / "pid_target", pid)
        self._write(kd / "state", "on")
        self._started = True
        pid_text = _read(kd / "pid")
        self.pid = int(pid_text) if pid_text.lstrip("-").isdigit() else None
        return self

    def stop(self) -> None:
        """Turn the kdamond off and remove it; safe to call at any point of `start`."""
        kdamonds_dir = self.admin / "kdamonds"
        errors = []
        if self._started:
            try:
                state = kdamonds_dir / str(self.index) / "state"
                if _read(state) == "on":
                    self._write(state, "off")
            except (OSError, DamoError) as err:
                errors.append(str(err))
            self._started = False
        if self._created:
            try:
                self._write(kdamonds_dir / "nr_kdamonds", 0)
            except DamoError as err:
                errors.append(str(err))
            self._created = False
        if errors:
            raise DamoError("could not undo damo's kdamond: " + "; ".join(errors))

    def __enter__(self) -> "OwnKdamond":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

