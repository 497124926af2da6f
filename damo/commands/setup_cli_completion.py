"""`damo setup_cli_completion`: upstream damo's name for setting up tab completion.

Writes the completion script of the shell (typer's, the same as
`damo --show-completion`) to a new file and says how to load it; `damo
--install-completion` instead adds it to the shell's start-up files.
"""

from typing import Annotated

import typer

NAME = "setup_cli_completion"
GROUP = None
SHELLS = ("bash", "zsh", "fish")


def run(
    shell: Annotated[str | None, typer.Option(
        "--shell", metavar="bash|zsh|fish",
        help="Shell to complete for (default: the one running damo, else bash).",
        show_default=False)] = None,
) -> None:
    """Write a tab-completion script for damo and say how to load it."""
    import os
    import tempfile

    from typer._completion_shared import _get_shell_name, get_completion_script

    from damo.errors import UsageError

    shell = shell or _get_shell_name() or "bash"
    if shell not in SHELLS:
        raise UsageError(f"--shell: expected one of {', '.join(SHELLS)}, not {shell!r}")
    script = get_completion_script(prog_name="damo", complete_var="_DAMO_COMPLETE", shell=shell)
    fd, path = tempfile.mkstemp(prefix="damo_completion_script-", suffix=f".{shell}")
    with os.fdopen(fd, "w") as f:
        f.write(script + "\n")
    print(f'Completion script for {shell} written. Run "source {path}" in your shell.\n'
          f"For every new shell, keep that file somewhere and source it from your shell's "
          f"start-up file, or run `damo --install-completion`.")
