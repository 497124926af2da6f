"""`damo report heats --heatmap stdout`: the map as coloured digits for a terminal.

Each character is one cell: a digit 0-9 for the cell's heat on a linear scale
from the map's lowest to highest value, on a background colour of the chosen
palette (xterm 256-colour codes).  Rows are addresses, top to bottom, with
offsets and the main mappings named beside them; columns are time, left to
right, as wide as the terminal.  A legend below says what a cell means.
"""

import numpy as np

from damo.errors import UsageError
from damo.reports import numbers

LEVELS = 10
# Background colour of each level, coolest first.
PALETTES = {
    "gray": [232, 235, 238, 241, 244, 247, 250, 252, 254, 255],
    "flame": [16, 52, 88, 124, 160, 196, 202, 208, 214, 226],
    "emotion": [17, 19, 21, 27, 33, 41, 46, 226, 208, 196],
}


def _cell(level: int, palette: list[int]) -> str:
    fg = 255 if level < LEVELS // 2 else 16
    return f"\x1b[48;5;{palette[level]}m\x1b[38;5;{fg}m{level}"


def _row(levels: list[int], palette: list[int]) -> str:
    """One line of digits, with a colour code only where the level changes."""
    parts, prev = [], -1
    for level in levels:
        parts.append(str(level) if level == prev else _cell(level, palette))
        prev = level
    return "".join(parts)


def check_color(color: str) -> None:
    if color not in PALETTES:
        raise UsageError(f"unknown colour theme {color!r} (choose from {', '.join(PALETTES)})")


SIDE = 40  # columns right of the map: address offsets and mapping names
DEFAULT_ROWS = 30


def default_resolution(width: int | None = None) -> tuple[int, int]:
    """(time cells, address cells) for a terminal of `width` columns (default: this one's)."""
    import shutil

    if width is None:
        width = shutil.get_terminal_size((80, 24)).columns
    return max(width - SIDE, 10), DEFAULT_ROWS


def _side(ares: int, amin: int, aunit: int, labels: list[tuple[int, int, str, float]],
          width: int) -> list[str]:
    """Per address row: an offset every few rows and the names of the main mappings."""
    offsets = [""] * ares
    for j in range(0, ares, 5):
        offsets[j] = "+" + numbers.format_size(j * aunit)
    names = [""] * ares
    for start, end, name, share in labels:
        want = min(max((start - amin) // aunit, 0), ares - 1)
        last = min(max((end - 1 - amin) // aunit, want), ares - 1)
        # The first free row of the span, or the nearest free one below it.
        free = [j for j in range(want, ares) if not names[j]]
        if not free:
            continue
        j = free[0]
        mark = "┬" if last > j else "─"
        tail = f" ({share:.0%})" if share >= 0.005 else ""
        room = width - 13 - len(tail)
        names[j] = f"{mark} " + (name if len(name) <= room else name[: room - 1] + "…") + tail
        for k in range(j + 1, last + 1):
            if not names[k]:
                names[k] = "│"
    return [f" {o:>9} {n}".rstrip() for o, n in zip(offsets, names, strict=True)]


def render(heat: np.ndarray, tmin: int, tunit: int, amin: int, aunit: int, color: str,
           labels: list[tuple[int, int, str, float]] = (), t_origin: int | None = None,
           samples_per_aggr: float | None = None, title: str | None = None) -> str:
    """The map, one line per address cell (time runs left to right), and its legend.

    `labels` (start, end, name, heat share) are named beside the rows they
    start at; times count from `t_origin` (default `tmin`); with
    `samples_per_aggr` the legend also gives the share of samples found accessed.
    """
    check_color(color)
    palette = PALETTES[color]
    lo, hi = float(heat.min()), float(heat.max())
    span = hi - lo
    if span > 0:
        levels = np.minimum(((heat - lo) / span * LEVELS).astype(np.int64), LEVELS - 1)
    else:
        levels = np.zeros(heat.shape, dtype=np.int64)
    cells = [_cell(level, palette) for level in range(LEVELS)]
    reset = "\x1b[0m"
    tres, ares = heat.shape
    side = _side(ares, amin, aunit, list(labels), SIDE)
    width = max(tres + SIDE, 80)
    lines = [] if title is None else [title if len(title) <= width else title[: width - 1] + "…"]
    lines += [_row(row, palette) + reset + text
              for row, text in zip(levels.T.tolist(), side, strict=True)]
    base = tmin if t_origin is None else t_origin
    t0, t1 = (tmin - base) / 1e9, (tmin + tunit * tres - base) / 1e9
    first, last = f"^{t0:.1f} s", f"{t1:.1f} s^"
    axis = first + last.rjust(tres - len(first)) if tres > len(first) + len(last) else first
    lines.append(axis)
    step = span / LEVELS
    legend = "".join(f"{cells[k]} " for k in range(LEVELS)) + reset
    if span > 0:
        meaning = f"digit k: mean nr_accesses {lo:.3g} + k x {step:.3g} to {lo:.3g} + (k+1) x " \
            f"{step:.3g} per aggregation"
        top = f"9: up to {hi:.3g}"
        if samples_per_aggr:
            top += f" ({hi / samples_per_aggr:.0%} of the samples found the page accessed)"
    else:
        meaning, top = f"every cell is {lo:.3g} (no differences to show)", ""
    lines += [
        f"# access frequency: {legend} {top}".rstrip(),
        f"# {meaning}",
        f"# rows: {numbers.format_size(aunit)} each, top down, "
        f"{amin:#x}-{amin + aunit * ares:#x} ({numbers.format_size(aunit * ares)})",
        f"# columns: {numbers.format_time(tunit)} each, time {t0:.1f}-{t1:.1f} s",
    ]
    return "\n".join(lines) + "\n"
