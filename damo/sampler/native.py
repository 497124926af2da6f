"""The native sampling loop (`damo/sampler/_loop.c`), or the one line that says why it is missing.

The extension is built at install by the package's build backend when a C
compiler and Python's headers are there (optional: without them damo still
installs). Without it the vaddr operations sample from Python, which costs
several times the CPU and has no CPU budget.
"""

from __future__ import annotations

from types import ModuleType

_loop: ModuleType | None
try:
    from damo.sampler import _loop
except ImportError as e:  # not built, or built for another Python, or damaged
    _loop = None
    _why = str(e).splitlines()[0] if str(e) else type(e).__name__
else:
    _why = ""

# run()'s reasons to return (see the C source).
R_DONE, R_INTR, R_GONE, R_FAIL, R_ADVISE = range(5)


def loop() -> ModuleType | None:
    """The loaded extension module, or None."""
    return _loop


def unavailable() -> str | None:
    """None when the native loop loaded; else one line: what failed and what to install."""
    if _loop is not None:
        return None
    return ("damo's native sampling loop (damo/sampler/_loop.c) is not built or does not load "
            f"({_why}): install gcc and python3-dev (apt-get install gcc python3-dev) and "
            "reinstall damo (bash scripts/setup.sh); until then damo samples from Python, "
            "at several times the CPU and without --max-cpu")
