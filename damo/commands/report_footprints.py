"""`damo report footprints vsz|rss`: percentiles of the targets' VSZ or RSS over the record."""

import os
from typing import Annotated

import typer

from damo.reports.options import DEFAULT_INPUT, Input, Plot, Range, SortBy

NAME = "footprints"
GROUP = "report"


def run(
    kind: Annotated[str, typer.Argument(
        metavar="vsz|rss", help="Virtual size (vsz) or resident set size (rss).")],
    input: Input = DEFAULT_INPUT,
    range_: Range = None,
    sortby: SortBy = "size",
    plot: Plot = None,
) -> None:
    """Print the distribution (or timeline) of each process's VSZ or RSS, from <FILE>.meta."""
    from damo.reports import dist
    from damo.reports.footprints import Footprints, check_kind
    from damo.reports.numbers import parse_int
    from damo.reports.options import sort_by_size

    check_kind(kind)
    by_size = sort_by_size(sortby)
    points = dist.percentiles([parse_int(v, "--range") for v in range_] if range_ else None)
    found = Footprints.of_record(input)
    per_target = found.per_target(kind)
    if os.path.exists(input):
        # Say which of the record's snapshots have no footprint (a sidecar cut short).
        from damo.records.reader import RecordFile
        from damo.reports.footprints import warn_missing, wss_times

        times = wss_times(RecordFile(input), 0, 0)
        warn_missing(input, found, {tid: t for tid, t in times.items() if tid in found.series})
    dist.emit("footprints", kind, per_target, points, by_size, plot, kind.upper(), sizes=True)
