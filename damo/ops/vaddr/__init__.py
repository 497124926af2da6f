"""`vaddr`: real processes' virtual address spaces, through the BPF page sampler.

The package: operations.py (the operations: targets, regions, updates),
process.py (what is kept per target process), sampling.py (the sample
program, the native loop, counts from the checks made), budget.py (the CPU
budget), command.py (pids or a command string), children.py (targets that
end and child processes that join).
"""

from damo.ops.vaddr.command import check_command, is_simple_command, parse_targets, shell_command
from damo.ops.vaddr.operations import (
    MAX_NR_REGIONS,
    NOT_VMAS,
    Setup,
    VaddrBpfOperations,
    setup,
)
from damo.ops.vaddr.sampling import overlaps

__all__ = [
    "MAX_NR_REGIONS", "NOT_VMAS", "Setup", "VaddrBpfOperations", "check_command",
    "is_simple_command", "overlaps", "parse_targets", "setup", "shell_command",
]
