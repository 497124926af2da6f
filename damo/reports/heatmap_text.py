"""`damo report heats --heatmap stdout`: the map as coloured digits for a terminal.

Each character is one cell: a digit 0-9 for the cell's heat on a linear scale
from the map's lowest to highest value, on a background colour of the chosen
palette (xterm 256-colour codes).  Rows are time, top to bottom; columns are
addresses, left to right.  A legend below says what a cell means.
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
DEFAULT_RESOLUTION = (40, 80)


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


def render(heat: np.ndarray, tmin: int, tunit: int, amin: int, aunit: int, color: str) -> str:
    """The map, one line per time cell, and its legend."""
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
    lines = [_row(row, palette) + reset for row in levels.tolist()]
    tres, ares = heat.shape
    step = span / LEVELS
    legend = "".join(f"{cells[k]} " for k in range(LEVELS)) + reset
    if span > 0:
        meaning = (f"digit k = mean nr_accesses in "
                   f"[{lo:.3g} + k*{step:.3g}, {lo:.3g} + (k+1)*{step:.3g})")
    else:
        meaning = f"every cell is {lo:.3g} (no differences to show)"
    lines += [
        f"# access frequency: {legend} {meaning}",
        f"# x-axis: address {amin:#x}-{amin + aunit * ares:#x} "
        f"({numbers.format_size(aunit * ares)}; {numbers.format_size(aunit)} a column)",
        f"# y-axis: time {tmin}-{tmin + tunit * tres} ns "
        f"({numbers.format_time(tunit * tres)}; {numbers.format_time(tunit)} a row)",
        f"# resolution: {ares} columns x {tres} rows",
    ]
    return "\n".join(lines) + "\n"

