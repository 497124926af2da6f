"""damo's process environment: work done in a forked child."""

import os
import sys

import pytest

from damo.errors import PlatformError, TargetError
from damo.process_env import in_child


def test_the_result_comes_back_and_the_child_keeps_its_memory():
    def work():
        sys.modules["damo_test_only_in_child"] = sys  # as an import in the child would
        return {"pid": os.getpid(), "items": [1, 2, 3]}

    got = in_child(work)
    assert got["items"] == [1, 2, 3] and got["pid"] != os.getpid()
    assert "damo_test_only_in_child" not in sys.modules


def test_errors_come_back_as_one_line_of_the_same_kind():
    def gone():
        raise TargetError("process 1234 does not exist")

    with pytest.raises(TargetError, match="^process 1234 does not exist$"):
        in_child(gone)

    def bug():
        raise ZeroDivisionError("division by zero")

    with pytest.raises(PlatformError, match="^ZeroDivisionError: division by zero$"):
        in_child(bug)


def test_a_child_that_dies_without_answering():
    with pytest.raises(PlatformError, match="died before answering"):
        in_child(lambda: os._exit(3))


def test_no_fork_is_one_line(monkeypatch):
    def refuse():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    with pytest.raises(PlatformError, match="^cannot start a helper process: Resource"):
        in_child(lambda: 1)
