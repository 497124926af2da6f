"""Command-line options shared by the report commands (typer only: cheap to import)."""

from typing import Annotated

import typer

DEFAULT_INPUT = "damon.data"

Input = Annotated[
    str,
    typer.Option(
        "--input", "-i", metavar="FILE",
        help="Record file: recfmt v0/v1/v2, perf-script text or upstream damo's json(_compressed) "
        "(sniffed from the content).",
    ),
]
Range = Annotated[
    tuple[str, str, str] | None,
    typer.Option(
        "--range", "-r", metavar="START STOP STEP",
        help="Percentiles to print: Python's range(START, STOP, STEP).",
    ),
]
SortBy = Annotated[
    str,
    typer.Option("--sortby", "-s", metavar="size|time",
                 help="Sort values by size (a distribution) or keep time order (a timeline)."),
]
Plot = Annotated[
    str | None,
    typer.Option("--plot", "-p", metavar="FILE",
                 help="Also draw the table into FILE (.png, .svg, .pdf or .jpeg) with gnuplot."),
]

Json = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON object instead (docs/reports.md, JSON output)."),
]


def sort_by_size(sortby: str) -> bool:
    from damo.errors import UsageError

    if sortby not in ("size", "time"):
        raise UsageError(f"--sortby: expected size or time, got {sortby!r}")
    return sortby == "size"
