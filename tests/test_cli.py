"""The command line as a whole: what --help lists, and usage errors as one line."""

import pytest

from tests.conftest import run_damo


def test_help_lists_what_exists():
    out = run_damo("--help").stdout.decode()
    for command in ("record", "report", "adjust", "workload"):
        assert command in out
    report = run_damo("report", "--help").stdout.decode()
    for command in ("raw", "heats", "wss", "nr_regions"):
        assert command in report


@pytest.mark.parametrize(
    "args",
    [
        ("--bogus",),
        ("report", "wss", "--bogus"),
        ("report", "wss", "-r", "1"),
        ("report", "heats", "--tres", "many"),
        ("nosuchcommand",),
    ],
)
def test_usage_errors_are_one_line(args):
    proc = run_damo(*args)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.startswith("damo: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
