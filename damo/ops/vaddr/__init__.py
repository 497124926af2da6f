"""`vaddr`: real processes' virtual address spaces, through the BPF page sampler.

The package: operations.py (the operations: targets, regions, updates),
process.py (what is kept per target process), sampling.py (the sample
program, the native loop, counts from the checks made), budget.py (the CPU
budget, which `sim` applies too), command.py (pids or a command string),
children.py (targets that end and child processes that join).

Names are loaded on first use: `sim` imports budget.py without the sampler.
"""

import importlib

_WHERE = {
    "MAX_NR_REGIONS": "operations", "NOT_VMAS": "operations", "Setup": "operations",
    "VaddrBpfOperations": "operations", "setup": "operations",
    "check_command": "command", "is_simple_command": "command", "parse_targets": "command",
    "shell_command": "command", "overlaps": "sampling",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
