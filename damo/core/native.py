"""damo's C extensions, loaded on first use, or one line saying how to build them.

Three small ones, built by the package's build backend at install
(pyproject.toml): the region adjustment's loops (damo/core/_adjust.c), the
derivation of a record's region ages (damo/records/_ages.c) and the vaddr
sampling loop (damo/sampler/_loop.c).  They are required: their loops exist
only in C (one copy of each), so a missing or damaged build is a
`PlatformError` here, which `damo.cli.main` prints as one line.
"""

import functools
import importlib
from types import ModuleType

from damo.errors import PlatformError


@functools.cache
def extension(name: str) -> ModuleType:
    """The extension module `name` (``damo.core._adjust``...), imported once."""
    try:
        return importlib.import_module(name)
    except ImportError as e:  # not built, built for another Python, or damaged
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        source = name.replace(".", "/") + ".c"
        raise PlatformError(
            f"damo's C extension {source} is not built or does not load ({why}): install gcc "
            "and python3-dev (apt-get install gcc python3-dev) and reinstall damo "
            "(bash scripts/setup.sh)") from None
