"""Numbers on the command line (decimal or 0x-hex) and numbers for people (KiB, s)."""

from damo.errors import UsageError

SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
TIME_UNITS = ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us"), (1, "ns"))


def parse_int(text: str, what: str = "number") -> int:
    """`text` as an integer: decimal, or hexadecimal with a 0x prefix (addresses)."""
    cleaned = text.strip().replace("_", "")
    try:
        if cleaned.lower().startswith(("0x", "-0x", "+0x")):
            return int(cleaned, 16)
        return int(cleaned, 10)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a number (decimal or 0x-hex)") from None


def parse_nonneg(text: str, what: str) -> int:
    value = parse_int(text, what)
    if value < 0:
        raise UsageError(f"{what}: must not be negative, got {value}")
    return value


def parse_positive(text: str, what: str) -> int:
    value = parse_int(text, what)
    if value <= 0:
        raise UsageError(f"{what}: must be positive, got {value}")
    return value


def size_unit(nbytes: float) -> tuple[int, str]:
    """The binary unit that keeps `nbytes` between 1 and 1024: (bytes per unit, name)."""
    scale = 1
    for name in SIZE_UNITS:
        if abs(nbytes) < scale * 1024 or name == SIZE_UNITS[-1]:
            return scale, name
        scale *= 1024
    raise AssertionError("unreachable")


def format_size(nbytes: float) -> str:
    scale, name = size_unit(nbytes)
    if scale == 1:
        return f"{int(nbytes)} B"
    return f"{nbytes / scale:.3g} {name}"


def time_unit(ns: float) -> tuple[int, str]:
    """The unit (ns per unit, name) that keeps `ns` at 1 or more, up to seconds."""
    for scale, name in TIME_UNITS:
        if abs(ns) >= scale:
            return scale, name
    return 1, "ns"


def format_time(ns: float) -> str:
    scale, name = time_unit(ns)
    return f"{ns / scale:.4g} {name}"
