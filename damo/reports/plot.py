"""Images through gnuplot: the heatmap and the wss / nr_regions distributions.

The data goes to gnuplot's stdin as a datablock inside the script, so there is
no temporary file to clean up.  Axes are in human units: seconds, and address
offsets or sizes in the binary unit that fits the range.
"""

import os
import shutil
import subprocess

import numpy as np

from damo.errors import DamoError, ToolMissingError, UsageError
from damo.reports import numbers

TERMINALS = {
    "png": "pngcairo size 1200,900 enhanced font ',11'",
    "svg": "svg size 1200,900 enhanced font ',11'",
    "pdf": "pdfcairo size 8in,6in enhanced font ',10'",
    "jpeg": "jpeg size 1200,900 enhanced",
    "jpg": "jpeg size 1200,900 enhanced",
}
GNUPLOT_HINT = "gnuplot is not installed (Debian: apt-get install gnuplot-nox)"


def terminal_for(path: str) -> str:
    """The gnuplot terminal for an image path, chosen by its extension."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in TERMINALS:
        raise UsageError(
            f"cannot draw {path!r}: the file name must end in .png, .svg, .pdf or .jpeg"
        )
    if "\n" in path:
        raise UsageError("image file names cannot contain a newline")
    return TERMINALS[ext]


def _quote(text: str) -> str:
    """A gnuplot single-quoted string (a quote inside is doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _dquote(text: str) -> str:
    """A gnuplot double-quoted string: newlines become line breaks in the text."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def run_gnuplot(script: str) -> None:
    exe = shutil.which("gnuplot")
    if exe is None:
        raise ToolMissingError(GNUPLOT_HINT)
    proc = subprocess.run([exe], input=script.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit status {proc.returncode}"
        raise DamoError(f"gnuplot failed: {reason}")


def heatmap_image(
    heat: np.ndarray, path: str, tmin: int, tunit: int, amin: int, aunit: int,
    abs_time: bool, abs_addr: bool, title: str,
    labels: list[tuple[int, int, str, float]] = (), t_origin: int | None = None,
) -> None:
    """Draw `heat` (time x address cells) into `path` with a colour box.

    `labels` (start, end, name, heat share) name address spans on the right
    side, each marked by a dashed line where it starts; times count from
    `t_origin` (default: `tmin`) unless `abs_time`.
    """
    terminal = terminal_for(path)
    tres, ares = heat.shape
    t_base = 0 if abs_time else (tmin if t_origin is None else t_origin)
    t0 = (tmin - t_base) / 1e9
    a_base = 0 if abs_addr else amin
    a_scale, a_name = numbers.size_unit(amin + aunit * ares - a_base)
    a0 = (amin - a_base) / a_scale
    a1 = a0 + ares * aunit / a_scale
    # One line per address cell, one column per time cell: gnuplot's matrix format.
    data = "\n".join(" ".join(map(repr, row)) for row in heat.T.tolist())
    dt, da = tunit / 1e9, aunit / a_scale
    if abs_addr:
        ylabel = f"Address ({a_name})"
    else:
        ylabel = f"Address offset from {amin:#x} ({a_name})"
    since = "" if abs_time else " since the first snapshot" if t_origin is None or \
        t_origin == tmin else " since the start of the record"
    script = f"""set terminal {terminal}
set output {_quote(path)}
set title {_dquote(title)} noenhanced
set xlabel 'Time (s{since})'
set ylabel {_quote(ylabel)} noenhanced
set cblabel 'access frequency (mean nr\\_accesses per aggregation)'
set palette defined (0 'black', 1 'dark-red', 2 'orange', 3 'yellow', 4 'white')
set key off
set xrange [{t0}:{t0 + tres * tunit / 1e9}]
set yrange [{a0}:{a1}]
{_label_commands(labels, a_base, a_scale, a0, a1)}
$heat << EOD
{data}
EOD
plot $heat matrix using ({t0} + ($1 + 0.5) * {dt!r}):({a0} + ($2 + 0.5) * {da!r}):3 with image
"""
    run_gnuplot(script)


LABEL_CHARS = 30


def _label_commands(labels, a_base: int, a_scale: int, a0: float, a1: float) -> str:
    """gnuplot commands naming address spans in a right margin (colour box beyond it)."""
    if not labels:
        return "set colorbox"
    lines = [
        "set rmargin at screen 0.70",
        "set colorbox user origin screen 0.90, screen 0.15 size screen 0.025, screen 0.7",
    ]
    # Label heights as graph fractions, pushed apart so that they do not overlap.
    gap = 0.035
    wanted = [((min(max((s - a_base) / a_scale, a0), a1) +
                min(max((e - a_base) / a_scale, a0), a1)) / 2 - a0) / (a1 - a0)
              for s, e, _, _ in labels]
    placed: list[float] = []
    for y in wanted:
        placed.append(max(y, placed[-1] + gap) if placed else y)
    overflow = placed[-1] - 1.0 if placed else 0.0
    if overflow > 0:  # pushed past the top: shift down, keeping the gaps
        placed = [y - overflow for y in placed]
        for k in range(len(placed) - 2, -1, -1):
            placed[k] = min(placed[k], placed[k + 1] - gap)
    for (start, _end, name, share), y, y_real in zip(labels, placed, wanted, strict=True):
        text = name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"
        if share >= 0.005:
            text += f" ({share:.0%})"
        y_start = (start - a_base) / a_scale
        if a0 < y_start < a1:
            lines.append(f"set arrow from graph 0, first {y_start!r} to graph 1, first "
                         f"{y_start!r} nohead dt 2 lw 0.8 lc rgb '#60a0ff' front")
        lines.append(f"set arrow from graph 1, graph {y_real!r} to graph 1.03, graph {y!r} "
                     "nohead lw 0.8 lc rgb '#606060'")
        lines.append(f"set label {_quote(text)} at graph 1.04, graph {y!r} left noenhanced "
                     "font ',10'")
    return "\n".join(lines)


def distribution_image(
    series: list[tuple[str, list[tuple[int, float]]]], path: str, xlabel: str, ylabel: str,
    sizes: bool,
) -> None:
    """Draw one line per target of (percentile, value) points; values in bytes if `sizes`."""
    terminal = terminal_for(path)
    peak = max((v for _, pts in series for _, v in pts), default=0)
    scale, unit = numbers.size_unit(peak) if sizes else (1, "")
    if sizes:
        ylabel = f"{ylabel} ({unit})"
    blocks, plots = [], []
    for k, (name, pts) in enumerate(series):
        rows = "\n".join(f"{p} {v / scale:.10g}" for p, v in pts)
        blocks.append(f"$d{k} << EOD\n{rows}\nEOD")
        plots.append(f"$d{k} using 1:2 with linespoints title {_quote(name)} noenhanced")
    script = f"""set terminal {terminal}
set output {_quote(path)}
set xlabel {_quote(xlabel)}
set ylabel {_quote(ylabel)}
set grid
set key top left
{chr(10).join(blocks)}
plot {", ".join(plots)}
"""
    run_gnuplot(script)
