"""`damo --version`, `damo version`, and shell completion (typer's, and upstream's command)."""

import os
import subprocess
import sys

from damo import __version__
from tests.conftest import REPO, run_damo


def test_version_both_ways():
    for args in (["--version"], ["version"]):
        result = run_damo(*args)
        assert result.returncode == 0
        assert result.stdout.decode() == f"damo {__version__}\n"
        assert not result.stderr


def complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "_DAMO_COMPLETE": "complete_bash",
           "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    # The console script's name is what completion keys on: run main as `damo`.
    result = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'damo'; "
                             "from damo.cli import main; main()"],
                            env=env, capture_output=True, text=True, timeout=60)
    return result.stdout.split()


def test_completion_completes_commands_and_options():
    assert complete("damo rep", 1) == ["report"]
    assert "wss" in complete("damo report w", 2)
    assert complete("damo record --form", 2) == ["--format"]
    assert "--install-completion" in run_damo("--help").stdout.decode()


def test_setup_cli_completion_writes_a_script(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "damo.cli", "setup_cli_completion",
                             "--shell", "bash"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    [script] = list(tmp_path.iterdir())
    assert f'source {script}' in result.stdout
    text = script.read_text()
    assert "_DAMO_COMPLETE" in text and "complete " in text
    assert os.stat(script).st_mode & 0o777 == 0o600
    bad = run_damo("setup_cli_completion", "--shell", "tcsh")
    assert bad.returncode == 2 and bad.stderr.count(b"\n") == 1
