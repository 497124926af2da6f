"""damo's cache directory, and JSON files in it that only this user may write.

What is cached (compiled BPF instructions, kernel struct offsets) steers
root's BPF programs, so a file owned by someone else or writable by others
is ignored, and files are created 0600 without following symlinks.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from damo.errors import PlatformError


def cache_dir() -> Path:
    """damo's cache directory: $DAMO_CACHE_DIR, else $XDG_CACHE_HOME/damo, else ~/.cache/damo.

    PlatformError when it cannot be created (the BPF header tree lives there).
    """
    if os.environ.get("DAMO_CACHE_DIR"):
        base = Path(os.environ["DAMO_CACHE_DIR"])
    elif os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"]) / "damo"
    else:
        base = Path.home() / ".cache" / "damo"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise PlatformError(f"cannot create damo's cache directory {base}: {e.strerror} "
                            "(set DAMO_CACHE_DIR to a writable directory)") from None
    return base


def read_private_json(path: Path) -> object:
    """The JSON in `path` if this user owns it and no one else may write it, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not block
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() \
            or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        return None
    with os.fdopen(fd) as f:
        try:
            return json.load(f)
        except (ValueError, OSError):  # not JSON (or not text), or unreadable: as if absent
            return None


def write_private_json(path: Path, doc: object) -> None:
    """Write `doc` to `path` (0600, atomically, parents made 0700); OSError if it cannot."""
    path.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)
