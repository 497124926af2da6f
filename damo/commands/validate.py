"""`damo validate`: check a record file against the attributes it was recorded with."""

from typing import Annotated

import typer

from damo.reports.options import DEFAULT_INPUT, Input, Json

NAME = "validate"
GROUP = None


def run(
    input: Input = DEFAULT_INPUT,
    aggr: Annotated[str | None, typer.Option(
        "--aggr", metavar="US",
        help="Aggregation interval the snapshots should be apart (default: from FILE.meta, "
             "else 100000).", show_default=False)] = None,
    sample: Annotated[str | None, typer.Option(
        "--sample", metavar="US",
        help="Sampling interval: nr_accesses is at most aggr / sample (default: from "
             "FILE.meta, else 5000).", show_default=False)] = None,
    nr_regions: Annotated[tuple[str, str] | None, typer.Option(
        "--nr-regions", metavar="MIN MAX",
        help="Bounds of the number of regions of a snapshot (default: 1 and the maximum "
             "of FILE.meta, else 1000).", show_default=False)] = None,
    tolerance: Annotated[str, typer.Option(
        "--tolerance", metavar="PERCENT",
        help="How far intervals and nr_accesses may be off.")] = "15",
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="List every problem, not only the first.")] = False,
    json: Json = False,
) -> None:
    """Check FILE's times, region counts, region order and nr_accesses; exit 1 if invalid."""
    from damo.errors import UsageError
    from damo.reports import validate
    from damo.reports.numbers import parse_nonneg, parse_positive
    from damo.reports.output import write_chunks

    try:
        tol = float(tolerance)
    except ValueError:
        raise UsageError(f"--tolerance: {tolerance!r} is not a number") from None
    if not 0 <= tol < 1000:
        raise UsageError(f"--tolerance: must be within 0-1000 percent, got {tolerance}")
    bounds = None
    if nr_regions is not None:
        bounds = (parse_nonneg(nr_regions[0], "--nr-regions MIN"),
                  parse_positive(nr_regions[1], "--nr-regions MAX"))
        if bounds[0] > bounds[1]:
            raise UsageError(f"--nr-regions: MIN {bounds[0]} is above MAX {bounds[1]}")
    limits = validate.limits_for(
        input,
        sample_us=None if sample is None else parse_positive(sample, "--sample"),
        aggr_us=None if aggr is None else parse_positive(aggr, "--aggr"),
        nr_regions=bounds, tolerance=tol)
    result = validate.validate(input, limits)
    write_chunks([validate.as_json(result) if json else validate.text(result, verbose)])
    if not result.valid:
        raise typer.Exit(1)  # the problems were the output: no error line
