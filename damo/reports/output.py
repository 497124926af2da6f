"""Writing report text to stdout in a few large writes, not one per line."""

import os
import sys
from collections.abc import Iterable

from damo.errors import DamoError


def write_chunks(chunks: Iterable[str | bytes]) -> None:
    """Write each chunk with one call; chunks are built a few thousand lines at a time.

    Chunks may be text or ASCII bytes (written to the binary stream, no encoding step).

    A reader that goes away (`damo report raw | head`) ends the report quietly;
    any other write error (a full disk) is one error line.
    """
    out = sys.stdout
    try:
        for chunk in chunks:
            if isinstance(chunk, bytes):
                out.flush()
                out.buffer.write(chunk)
            else:
                out.write(chunk)
        out.flush()
    except BrokenPipeError:
        # Nothing more can be written; point stdout at /dev/null so the final
        # flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except OSError as err:
        raise DamoError(f"cannot write the report: {err.strerror}") from None
