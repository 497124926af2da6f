"""`damo record`'s targets: pids, or one command string, checked before anything starts."""

from __future__ import annotations

import os
import shlex
import shutil

from damo.errors import TargetError, UsageError

# Words that make a shell command more than one simple command.
_SHELL_OPERATORS = {";", "&", "&&", "|", "||", "(", ")", ";;", "|&", "\n"}
_SHELL_KEYWORDS = {
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done",
    "{", "}", "!", "function", "select",
}
# Builtins that take no program to find (and `exec`, `command`, which take one).
_SHELL_BUILTINS = {
    ".", ":", "alias", "bg", "cd", "command", "echo", "eval", "exec", "exit", "export", "false",
    "fg", "getopts", "hash", "jobs", "kill", "printf", "pwd", "read", "readonly", "return", "set",
    "shift", "test", "[", "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset",
    "wait",
}


def _words(command: str) -> list[str] | None:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: let the shell say so
        return None


def is_simple_command(command: str) -> bool:
    """One command, possibly with assignments and redirections: the shell can exec it."""
    words = _words(command)
    if not words or "\n" in command:
        return False
    return not any(w in _SHELL_OPERATORS for w in words) and words[0] not in _SHELL_KEYWORDS


def shell_command(command: str) -> str:
    """What /bin/sh runs: a simple command is exec'ed, so the pid damo samples is the command's."""
    words = _words(command) or []
    if not is_simple_command(command) or "exec" in words[:1]:
        return command
    return f"exec {command}"


def check_command(command: str) -> None:
    """TargetError when the command's program cannot be found (a simple or compound command)."""
    words = _words(command)
    if words is None:
        raise TargetError(f"cannot parse the command {command!r}: unbalanced quotes")
    if not words or not command.strip():
        raise UsageError("the command to record is empty")
    # Skip leading assignments (`VAR=value cmd`); the program is the first other word.
    program = next((w for w in words if not _is_assignment(w)), None)
    if program is None or program in _SHELL_KEYWORDS or program in _SHELL_BUILTINS \
            or program in _SHELL_OPERATORS or program[0] in "<>$`":
        return
    if "/" in program:
        if not os.path.isfile(program):
            raise TargetError(f"command not found: {program}")
        if not os.access(program, os.X_OK):
            raise TargetError(f"command not executable: {program}")
    elif shutil.which(program) is None:
        raise TargetError(f"command not found: {program} (not in PATH)")


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.isidentifier()


def parse_targets(args: list[str]) -> tuple[list[int], str | None]:
    """Pids, or one command string."""
    if not args:
        raise UsageError("give the pids to record or one command string")
    if all(a.strip().isdigit() for a in args):
        pids = [int(a) for a in args]
        if len(set(pids)) != len(pids):
            raise UsageError("a pid is given twice")
        return pids, None
    if len(args) > 1:
        raise UsageError("give pids, or one command string in quotes (e.g. \"sleep 10\"), "
                         f"not {len(args)} words")
    return [], args[0]
