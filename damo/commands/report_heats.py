"""`damo report heats`: access frequency over time and address, as text, image or terminal art."""

from typing import Annotated

import typer

from damo.reports.options import DEFAULT_INPUT, Input

NAME = "heats"
GROUP = "report"

Num = Annotated[str | None, typer.Option(metavar="N")]


def _pick(name: str, single: str | None, pair_name: str, pair: str | None) -> str | None:
    from damo.errors import UsageError

    if single is not None and pair is not None:
        raise UsageError(f"give {name} or {pair_name}, not both")
    return single if single is not None else pair


def run(
    input: Input = DEFAULT_INPUT,
    tid: Annotated[str | None, typer.Option(
        "--tid", metavar="ID", help="Target to show (default: the first of --guide).")] = None,
    tres: Annotated[str | None, typer.Option(
        "--tres", metavar="N", help="Time resolution: number of time cells (default 500).")
    ] = None,
    ares: Annotated[str | None, typer.Option(
        "--ares", metavar="N", help="Address resolution: number of address cells (default 500).")
    ] = None,
    tmin: Annotated[str | None, typer.Option(
        "--tmin", metavar="NS", help="Start time in ns (default: the first snapshot).")] = None,
    tmax: Annotated[str | None, typer.Option(
        "--tmax", metavar="NS", help="End time in ns (default: the last snapshot).")] = None,
    amin: Annotated[str | None, typer.Option(
        "--amin", metavar="ADDR",
        help="Start address (default: the region union of --guide holding the accesses).")
    ] = None,
    amax: Annotated[str | None, typer.Option(
        "--amax", metavar="ADDR",
        help="End address (default: the region union of --guide holding the accesses).")
    ] = None,
    guide: Annotated[bool, typer.Option(
        "--guide", help="Print each target's time span and region unions, then stop.")] = False,
    heatmap: Annotated[str | None, typer.Option(
        "--heatmap", metavar="FILE",
        help="Draw an image (.png, .svg, .pdf, .jpeg) with gnuplot, or 'stdout' for the "
             "terminal.")] = None,
    resol: Annotated[tuple[str, str] | None, typer.Option(
        "--resol", metavar="T A", help="Same as --tres T --ares A (damo 1.x).")] = None,
    time_range: Annotated[tuple[str, str] | None, typer.Option(
        "--time_range", metavar="START END",
        help="Same as --tmin START --tmax END (damo 1.x).")] = None,
    address_range: Annotated[tuple[str, str] | None, typer.Option(
        "--address_range", metavar="START END",
        help="Same as --amin START --amax END (damo 1.x).")] = None,
    abs_time: Annotated[bool, typer.Option(
        "--abs_time", help="Print absolute times, not relative to the start.")
    ] = False,
    abs_addr: Annotated[bool, typer.Option(
        "--abs_addr", help="Print absolute addresses, not relative to the start.")
    ] = False,
    area_index: Annotated[str | None, typer.Option(
        "--area", metavar="K",
        help="Show region union K of --guide (default: the one holding the accesses; an "
             "image also gets one file per other union that has accesses).")] = None,
    stdout_heatmap_color: Annotated[str, typer.Option(
        "--stdout_heatmap_color", metavar="gray|flame|emotion",
        help="Colour theme of --heatmap stdout.")] = "gray",
    json: Annotated[bool, typer.Option(
        "--json", help="With --guide: print one JSON object (docs/reports.md, JSON output).")
    ] = False,
) -> None:
    """Print <time> <address> <heat> lines: the mean nr_accesses of each cell of a map."""
    from damo.errors import UsageError
    from damo.records.reader import RecordFile
    from damo.reports import heatmap_text, heats
    from damo.reports.numbers import parse_int, parse_positive
    from damo.reports.output import write_chunks

    if heatmap is not None and heatmap != "stdout":
        from damo.reports import plot

        plot.terminal_for(heatmap)  # a bad file name fails before any work

    t_res = _pick("--tres", tres, "--resol", resol[0] if resol else None)
    a_res = _pick("--ares", ares, "--resol", resol[1] if resol else None)
    t_lo = _pick("--tmin", tmin, "--time_range", time_range[0] if time_range else None)
    t_hi = _pick("--tmax", tmax, "--time_range", time_range[1] if time_range else None)
    a_lo = _pick("--amin", amin, "--address_range", address_range[0] if address_range else None)
    a_hi = _pick("--amax", amax, "--address_range", address_range[1] if address_range else None)

    def number(text: str | None, what: str) -> int | None:
        return None if text is None else parse_int(text, what)

    default_res = (
        heatmap_text.default_resolution() if heatmap == "stdout" else heats.DEFAULT_RESOLUTION
    )
    resolution = (
        default_res[0] if t_res is None else parse_positive(t_res, "--tres"),
        default_res[1] if a_res is None else parse_positive(a_res, "--ares"),
    )
    if heatmap == "stdout":
        heatmap_text.check_color(stdout_heatmap_color)  # before reading a big file

    if json and not guide:
        raise UsageError("--json goes with --guide (the map itself is not JSON)")
    union = None if area_index is None else parse_int(area_index, "--area")
    if union is not None and (a_lo is not None or a_hi is not None):
        raise UsageError("give --area or --amin/--amax (--address_range), not both")
    record = RecordFile(input)
    all_guides = heats.guides(record)
    if guide:
        write_chunks([(heats.guide_json if json else heats.guide_text)(all_guides)])
        return
    area = heats.area(
        record,
        target_id=number(tid, "--tid"),
        resolution=resolution,
        time_range=(number(t_lo, "--tmin"), number(t_hi, "--tmax")),
        addr_range=(number(a_lo, "--amin"), number(a_hi, "--amax")),
        union=union,
        all_guides=all_guides,
    )
    span = next(g.span for g in all_guides if g.target_id == area.target_id)
    heat = heats.heat_matrix(record, area, span)
    if heatmap is None:
        write_chunks(heats.heats_text(heat, area, abs_time, abs_addr))
        return
    from damo.reports import heat_views

    view = heat_views.Views(record, input, all_guides)
    if heatmap == "stdout":
        write_chunks([view.terminal(area, heat, stdout_heatmap_color)])
        return
    view.image(area, heat, heatmap, abs_time, abs_addr)
    if area.union is not None and union is None:
        # More monitored areas with accesses: one image each, next to the first.
        view.other_images(area, heatmap, abs_time, abs_addr)
