"""damo's own process environment, and the one the commands it starts get.

damo does no linear algebra, but numpy loads OpenBLAS, which starts a worker
thread for each further CPU.  Idle, that thread still cost damo about 1 % of
a core here (54 us per 5 ms sampling interval: the same sleep loop with
numpy imported, OPENBLAS_NUM_THREADS unset vs 1).  The CLI asks for a single
thread before numpy loads, unless the user chose a number; a command damo
starts and records gets the environment damo was given.
"""

import os

_given: dict[str, str] | None = None


def limit_threads() -> None:
    """One BLAS thread for this process; call before numpy is imported."""
    global _given
    if _given is None:
        _given = dict(os.environ)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def given_env() -> dict[str, str]:
    """The environment damo was started with (as before `limit_threads`)."""
    return dict(_given if _given is not None else os.environ)
