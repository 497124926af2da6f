"""One small module per subcommand, all behind one protocol.

Each module defines:

- ``NAME``: the subcommand's name;
- ``GROUP``: ``None`` for a top-level command, or the group it belongs to
  (``"report"``);
- ``run(...)``: the command itself, its parameters annotated for typer.

Modules import only typer at load time; the heavy lifting (numpy, records,
reports) is imported inside ``run`` so that ``damo --help`` stays fast, and
only what the command uses (``damo report raw`` on a small file loads no
numpy, see tests/test_streaming.py).

A new command is a new module here with the three names above, added to
``MODULES``; a new option is a new annotated parameter of its ``run``.
`damo.cli` builds the command line from them and needs no change.
"""

import importlib
from types import ModuleType

# Order is the order of `damo --help`.
MODULES = (
    "record",
    "report_access",
    "report_raw",
    "report_heats",
    "report_heatmap",
    "report_hot",
    "report_wss",
    "report_nr_regions",
    "report_footprints",
    "adjust",
    "validate",
    "convert",
    "monitor",
    "version",
    "setup_cli_completion",
    "workload",
)


def load() -> list[ModuleType]:
    """Import every command module, skipping those not written yet."""
    found = []
    for name in MODULES:
        try:
            found.append(importlib.import_module(f"{__name__}.{name}"))
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    return found
