"""/proc/PID/maps parsed into mappings."""

from __future__ import annotations

from dataclasses import dataclass

from damo.errors import TargetError


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps: the range [start, end) and how it is mapped."""

    start: int
    end: int
    perms: str  # "r-xp" style
    offset: int
    dev: str
    inode: int
    path: str  # file path, "[heap]"-style pseudo name, or "" for anonymous

    @property
    def size(self) -> int:
        return self.end - self.start


def parse_maps(text: str) -> list[Mapping]:
    """Mappings of a /proc/PID/maps text, in address order."""
    out = []
    for line in text.splitlines():
        if not line:
            continue
        # The path may contain spaces; it is everything after the fifth field.
        fields = line.split(None, 5)
        if len(fields) < 5:
            raise ValueError(f"not a /proc/PID/maps line: {line!r}")
        span, perms, offset, dev, inode = fields[:5]
        start, _, end = span.partition("-")
        path = fields[5].strip() if len(fields) == 6 else ""
        out.append(Mapping(int(start, 16), int(end, 16), perms, int(offset, 16), dev,
                           int(inode), path))
    return out


def read_maps(pid: int) -> list[Mapping]:
    """Mappings of process `pid`; TargetError when it does not exist (any more)."""
    return parse_maps(read_maps_text(pid))


def read_maps_text(pid: int) -> str:
    """/proc/PID/maps as text (comparing it is much cheaper than parsing it)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise TargetError(f"process {pid} does not exist") from None
    except PermissionError:
        raise TargetError(f"no permission to read /proc/{pid}/maps: run damo as root") from None
