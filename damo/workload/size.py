"""Byte sizes as workload files write them: 4096, "4096", "100 MiB", "1.5 GiB"."""

import re
from fractions import Fraction

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")


def parse_size(value: object) -> int:
    """Bytes for `value`; ValueError with the reason when it is not a size."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a size (a number of bytes or a string like '100 MiB')")
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a size (a number with B, KiB, MiB, GiB or TiB)")
    number, unit = match.groups()
    if unit and unit not in UNITS:
        raise ValueError(f"{value!r} has unknown unit {unit!r} (use B, KiB, MiB, GiB or TiB)")
    size = Fraction(number) * UNITS[unit or "B"]
    if size.denominator != 1:
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(size)
