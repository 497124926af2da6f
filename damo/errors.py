"""The small exception hierarchy that `damo.cli.main` turns into one line and an exit code.

Code anywhere in damo raises these for conditions the user can fix (bad input,
missing privileges, a vanished target); anything else is a bug and keeps its
traceback.
"""


class DamoError(Exception):
    """A failure to report as one line on stderr."""

    exit_code = 1


class UsageError(DamoError):
    """Options or arguments that do not make sense together."""

    exit_code = 2


class OutputError(DamoError):
    """A record or sidecar that cannot be written on: a full disk, an I/O error, a removed file."""


class RecordFormatError(DamoError):
    """A record file that cannot be read: foreign, empty or corrupt."""


class AttrsError(UsageError):
    """Monitoring attributes that DAMON would reject."""


class WorkloadError(DamoError):
    """A workload description that does not parse or is inconsistent."""


class PlatformError(DamoError):
    """The machine lacks something damo needs: root, bcc, BTF, tracefs, an architecture."""


class TargetError(DamoError):
    """The monitoring target does not exist or cannot be started."""


class ToolMissingError(DamoError):
    """An external program (gnuplot) is not installed."""
