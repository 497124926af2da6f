"""`damo report nr_regions`: percentiles of the number of regions per snapshot."""

from damo.reports.options import DEFAULT_INPUT, Input, Json, Plot, Range, SortBy

NAME = "nr_regions"
GROUP = "report"


def run(
    input: Input = DEFAULT_INPUT,
    range_: Range = None,
    sortby: SortBy = "size",
    plot: Plot = None,
    json: Json = False,
) -> None:
    """Print the distribution (or, --sortby time, the timeline) of the number of regions."""
    from damo.records.reader import RecordFile
    from damo.reports import dist, nr_regions
    from damo.reports.numbers import parse_int
    from damo.reports.options import sort_by_size

    by_size = sort_by_size(sortby)
    points = dist.percentiles([parse_int(v, "--range") for v in range_] if range_ else None)
    per_target = nr_regions.per_target(RecordFile(input))
    dist.emit("nr_regions", "# regions", per_target, points, by_size, plot, "number of regions",
              sizes=False, as_json=json)
