"""`damo report hot`: the hottest (or largest, or longest-hot) address ranges, annotated."""

from typing import Annotated

import typer

from damo.reports.options import DEFAULT_INPUT, Input

NAME = "hot"
GROUP = "report"


def run(
    input: Input = DEFAULT_INPUT,
    top: Annotated[str, typer.Option(
        "--top", metavar="N", help="How many ranges to show.")] = "10",
    by: Annotated[str, typer.Option(
        "--by", metavar="accesses|heat|size|time",
        help="Order: share of all accesses (size x nr_accesses x time), mean nr_accesses "
             "(heat), size, or how long a range was hot (time).")
    ] = "accesses",
    tid: Annotated[str | None, typer.Option(
        "--tid", metavar="ID", help="Only this target (default: every target).")] = None,
    tmin: Annotated[str | None, typer.Option(
        "--tmin", metavar="NS", help="Start time in ns (default: the first snapshot).")] = None,
    tmax: Annotated[str | None, typer.Option(
        "--tmax", metavar="NS", help="End time in ns (default: the last snapshot).")] = None,
    acc_thres: Annotated[str, typer.Option(
        "--acc_thres", "-t", metavar="N",
        help="nr_accesses from which a region counts as hot.")] = "1",
    json_: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object (schema in docs/reports.md).")] = False,
) -> None:
    """List the address ranges accessed most, with what they are (from <FILE>.meta)."""
    import json
    import sys

    from damo.errors import UsageError
    from damo.records.reader import read_snapshots
    from damo.reports import hot, spans
    from damo.reports.annotate import Annotator
    from damo.reports.numbers import parse_int, parse_nonneg, parse_positive
    from damo.reports.output import write_chunks

    nr_top = parse_positive(top, "--top")
    hot.sort_key(by)  # a bad order fails before reading
    t_lo = None if tmin is None else parse_int(tmin, "--tmin")
    t_hi = None if tmax is None else parse_int(tmax, "--tmax")
    if t_lo is not None and t_hi is not None and t_lo >= t_hi:
        raise UsageError(f"--tmin {t_lo} is not before --tmax {t_hi}")
    thres = parse_nonneg(acc_thres, "--acc_thres")
    snaps = read_snapshots(input)
    target_ids = snaps.target_ids()
    if tid is not None:
        wanted = parse_int(tid, "--tid")
        if wanted not in target_ids:
            known = ", ".join(map(str, target_ids))
            raise UsageError(f"no target {wanted} in the record (targets: {known})")
        target_ids = [wanted]
    annotator = Annotator.for_record(input)
    if not annotator.has_maps():
        annotator = None
    cuts = None if annotator is None else {t: annotator.boundaries(t) for t in target_ids}
    ranges, anns, skipped = hot.select(
        hot.hot_ranges(snaps, target_ids, by, t_lo, t_hi, thres, cuts), annotator, nr_top)
    if json_:
        doc = hot.to_json(ranges, anns, annotator, snaps, target_ids, by, thres, t_lo, t_hi,
                          input, skipped)
        write_chunks([json.dumps(doc) + "\n"])
        return
    origin = {t: int(spans.starts_of(snaps.end_ns[snaps.of_target(t)])[0]) for t in target_ids}
    cells = hot.rows(ranges, anns, origin)
    footer = (f"accesses: share of the target's size x nr_accesses x time; mean/peak: "
              f"nr_accesses per aggregation; hot: nr_accesses >= {thres}; times in s from the "
              "target's first snapshot")
    if skipped:
        footer += f"; {skipped} range{'s' if skipped > 1 else ''} wholly between mappings left out"
    if annotator is None:
        footer += f"; no {input}.meta with mappings: ranges are not named"
    if not ranges:
        footer = f"no range had nr_accesses >= {thres} in the time range"
    if sys.stdout.isatty():
        hot.print_rich(cells, f"damo report hot: {input}, by {by}", footer)
    else:
        write_chunks([hot.table_text(cells, "# " + footer)])
