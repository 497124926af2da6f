"""`damo report access`: per-region access rate, age, idle time, temperature (upstream styles)."""

from typing import Annotated

import typer

from damo.reports.options import DEFAULT_INPUT, Input, Json

NAME = "access"
GROUP = "report"

Bounds = Annotated[tuple[str, str] | None, typer.Option(metavar="MIN MAX")]


def _keys(values: list[str] | None, what: str, allowed: tuple[str, ...]) -> list[str]:
    """Comma- or space-separated keys, given once or repeated."""
    from damo.errors import UsageError

    keys = [k for v in values or [] for k in v.replace(",", " ").split()]
    for k in keys:
        if k not in allowed:
            raise UsageError(f"{what}: unknown key {k!r} (choices: {', '.join(allowed)})")
    return keys


def _points(text: str | None) -> list[float] | None:
    """upstream's --percentiles_range: up to 3 numbers are range() arguments, more a list."""
    from damo.errors import UsageError

    if text is None:
        return None
    try:
        nums = [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"--percentiles_range: {text!r} is not a list of numbers") from None
    if not nums:
        raise UsageError("--percentiles_range: no percentile given")
    if len(nums) <= 3:
        if not all(x.is_integer() for x in nums):
            raise UsageError("--percentiles_range: START [STOP [STEP]] must be integers")
        nums = [float(x) for x in range(*(int(x) for x in nums))]
    if not nums or any(not 0 <= x <= 100 for x in nums):
        raise UsageError("--percentiles_range: percentiles must be within 0-100")
    return sorted(nums)


def run(
    input: Input = DEFAULT_INPUT,
    style: Annotated[str, typer.Option(
        "--style", metavar="STYLE",
        help="detailed (a line per region), simple-boxes, hot, cold, recency-percentiles "
             "(idle-time-percentiles), recency-sz-hist (cold-memory-tail), "
             "temperature-percentiles, temperature-sz-hist.")] = "detailed",
    sort_by: Annotated[list[str] | None, typer.Option(
        "--sort_by", "--sort_regions_by", metavar="KEYS",
        help="Sort regions by address, access_rate, age, size or temperature "
             "(comma-separated; the last key sorts first).")] = None,
    sort_dsc: Annotated[list[str] | None, typer.Option(
        "--sort_regions_dsc", "--sort_dsc", metavar="KEYS",
        help="Keys to sort in descending order ('all' for every key).")] = None,
    temperature_weights: Annotated[tuple[int, int, int] | None, typer.Option(
        "--temperature_weights", metavar="SIZE RATE AGE",
        help="Weights of size, access rate (%) and age (us) in the temperature "
             "(default 0 100 100).")] = None,
    percentiles_range: Annotated[str | None, typer.Option(
        "--percentiles_range", metavar="'P...'",
        help="Percentiles to show: up to three numbers are range(START, STOP, STEP), more "
             "a list (default '0 1 25 50 75 99 100').")] = None,
    hist_logscale: Annotated[bool, typer.Option(
        "--hist_logscale", help="Histogram ranges growing twice as wide each.")] = False,
    rate_unit: Annotated[str, typer.Option(
        "--access_rate_unit", metavar="hz|per_aggr|percent",
        help="Access rates per second (hz), per aggregation (nr_accesses), or as a share "
             "of the aggregation's samples (percent).")] = "hz",
    all_snapshots: Annotated[bool, typer.Option(
        "--all_snapshots", help="Every snapshot of the record (default: the last of each "
                                "target).")] = False,
    sz_region: Annotated[tuple[str, str] | None, typer.Option(
        "--sz_region", metavar="MIN MAX",
        help="Only regions of this size (bytes, 4K, 1.5MiB, min, max).")] = None,
    access_rate: Annotated[tuple[str, str] | None, typer.Option(
        "--access_rate", metavar="MIN MAX",
        help="Only regions of this access rate (50%, 10hz, 3aggr; a bare number is %).")] = None,
    age: Annotated[tuple[str, str] | None, typer.Option(
        "--age", metavar="MIN MAX",
        help="Only regions of this age (5s, 100ms, 2m; a bare number is us).")] = None,
    temperature: Annotated[tuple[str, str] | None, typer.Option(
        "--temperature", metavar="MIN MAX", help="Only regions of this temperature.")] = None,
    raw_form: Annotated[bool, typer.Option(
        "--raw_form", help="Every record as `damo report raw` prints it.")] = False,
    json: Json = False,
) -> None:
    """Show each region's access rate, age and temperature, or the distribution of idle time
    or temperature over the bytes, for the last snapshot of each target (or all of them)."""
    from damo.errors import UsageError
    from damo.records.reader import RecordFile
    from damo.reports import access
    from damo.reports.output import write_chunks

    if raw_form:
        from damo.commands import report_raw

        report_raw.run(input=input, json=json)
        return
    chosen = access.style_of(style)
    if rate_unit not in access.RATE_UNITS:
        raise UsageError(f"--access_rate_unit: expected {', '.join(access.RATE_UNITS)}, "
                         f"got {rate_unit!r}")
    filters = access.Filters()
    if sz_region is not None:
        filters.size = tuple(access.parse_bound(x, "--sz_region", "size") for x in sz_region)
    if age is not None:
        filters.age_us = tuple(access.parse_bound(x, "--age", "time") for x in age)
    if temperature is not None:
        filters.temperature = tuple(access.parse_bound(x, "--temperature", "number")
                                    for x in temperature)
    if access_rate is not None:
        filters.rate = tuple(access.parse_rate_bound(x, "--access_rate") for x in access_rate)
    opts = access.Options(
        style=chosen,
        sort_keys=_keys(sort_by, "--sort_by", access.SORT_KEYS) or ["address"],
        sort_dsc=_keys(sort_dsc, "--sort_regions_dsc", (*access.SORT_KEYS, "all")),
        weights=tuple(temperature_weights) if temperature_weights else access.DEFAULT_WEIGHTS,
        points=_points(percentiles_range) or access.DEFAULT_PERCENTILES,
        rate_unit=rate_unit,
        filters=filters,
        hist_logscale=hist_logscale,
        all_snapshots=all_snapshots,
    )
    record = RecordFile(input)
    if json:
        import json as json_module

        doc = access.json_report(record, input, opts, style)
        write_chunks([json_module.dumps(doc) + "\n"])
        return
    write_chunks(access.text_report(record, input, opts))
