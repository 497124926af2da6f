"""`damo report wss`: percentiles of the working set size per snapshot."""

from typing import Annotated

import typer

from damo.reports import WARMUP_SNAPSHOTS
from damo.reports.options import DEFAULT_INPUT, Input, Json, Plot, Range, SortBy

NAME = "wss"
GROUP = "report"


def run(
    input: Input = DEFAULT_INPUT,
    range_: Range = None,
    exclude_samples: Annotated[str, typer.Option(
        "--exclude_samples", metavar="N",
        help="Snapshots to skip at the start when --work_time aggregates them.")
    ] = str(WARMUP_SNAPSHOTS),
    acc_thres: Annotated[str, typer.Option(
        "--acc_thres", "-t", metavar="N",
        help="Minimum nr_accesses of a region in the working set.")] = "1",
    sz_thres: Annotated[str, typer.Option(
        "--sz_thres", metavar="BYTES",
        help="Minimum size of a region in the working set.")] = "1",
    work_time: Annotated[str, typer.Option(
        "--work_time", metavar="US",
        help="Time of one unit of work in microseconds: snapshots are aggregated to it.")
    ] = "1",
    sortby: SortBy = "size",
    plot: Plot = None,
    footprints: Annotated[bool, typer.Option(
        "--footprints",
        help="Put the RSS of the same moment (from <FILE>.meta) and WSS/RSS beside each WSS.")
    ] = False,
    raw_number: Annotated[bool, typer.Option(
        "--raw_number",
        help="Accepted for damo 1.x compatibility; numbers are always raw bytes.")] = False,
    json: Json = False,
) -> None:
    """Print the distribution (or, --sortby time, the timeline) of working set sizes."""
    from damo.records.reader import RecordFile
    from damo.reports import dist, wss
    from damo.reports.numbers import parse_int, parse_nonneg
    from damo.reports.options import sort_by_size

    by_size = sort_by_size(sortby)
    points = dist.percentiles([parse_int(v, "--range") for v in range_] if range_ else None)
    if json and footprints:
        from damo.errors import UsageError

        raise UsageError("--json does not go with --footprints")
    record = RecordFile(input)
    per_target = wss.per_target(
        record,
        acc_thres=parse_nonneg(acc_thres, "--acc_thres"),
        sz_thres=parse_nonneg(sz_thres, "--sz_thres"),
        work_time_us=parse_nonneg(work_time, "--work_time"),
        exclude=parse_nonneg(exclude_samples, "--exclude_samples"),
    )
    if footprints:
        from damo.reports.footprints import emit_beside

        emit_beside(record, input, per_target, points, by_size, plot,
                    parse_nonneg(work_time, "--work_time"),
                    parse_nonneg(exclude_samples, "--exclude_samples"))
        return
    dist.emit("wss", "wss", per_target, points, by_size, plot, "working set size", sizes=True,
              as_json=json)
