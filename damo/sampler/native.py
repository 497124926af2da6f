"""The native sampling loop (`damo/sampler/_loop.c`) and the reasons its run() returns.

Required, as damo's other C extensions (`damo.core.native`): the vaddr
operations sample through it, the steps it hands back excepted.
"""

from __future__ import annotations

from types import ModuleType

from damo.core.native import extension

# run()'s reasons to return (see the C source).
R_DONE, R_INTR, R_GONE, R_FAIL, R_ADVISE = range(5)


def loop() -> ModuleType:
    """The loaded extension module (a one-line PlatformError when it does not load)."""
    return extension("damo.sampler._loop")
