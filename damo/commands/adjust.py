"""`damo adjust`: re-aggregate a record file into longer aggregation windows."""

from typing import Annotated

import typer

from damo.reports import WARMUP_SNAPSHOTS
from damo.reports.options import DEFAULT_INPUT, Input

NAME = "adjust"
GROUP = None


def run(
    aggr_us: Annotated[str, typer.Argument(
        metavar="AGGR_US", help="The new aggregation interval in microseconds.")],
    input: Input = DEFAULT_INPUT,
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="FILE",
        help="Where to write (recfmt v2); an existing file is kept as FILE.old.")
    ] = "damon.adjusted.data",
    skip: Annotated[str, typer.Option(
        "--skip", metavar="N", help="Snapshots to drop at the start of each target.")
    ] = str(WARMUP_SNAPSHOTS),
) -> None:
    """Aggregate consecutive snapshots into windows of AGGR_US and write a new record file."""
    import os

    from damo.errors import UsageError
    from damo.records.reader import RecordFile
    from damo.reports.adjust import adjust
    from damo.reports.numbers import parse_nonneg, parse_positive

    interval = parse_positive(aggr_us, "AGGR_US")
    nr_skip = parse_nonneg(skip, "--skip")
    if os.path.exists(input) and os.path.exists(output) and os.path.samefile(input, output):
        raise UsageError(f"--output {output} is the input file; choose another name")
    adjust(RecordFile(input), interval, nr_skip, output)
