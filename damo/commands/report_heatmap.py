"""`damo report heatmap`: `damo report heats` under upstream damo's name and option names.

Every option of `report heats` works here too; upstream's spellings are
added: ``--output stdout|raw|FILE`` (the terminal map, the
``<time> <address> <heat>`` lines, or an image; upstream's default, the
terminal, is this command's), ``--stdout_colorset`` for
``--stdout_heatmap_color``, ``--draw_range hottest|all`` (the union holding
the accesses, and for images one more file per other union with accesses,
which `heats` draws anyway) and ``--stdout_skip_colorset_example`` (accepted;
the terminal map's legend stays).
"""

import inspect
from typing import Annotated

import typer

from damo.commands import report_heats

NAME = "heatmap"
GROUP = "report"

_EXTRA = {
    "output": (Annotated[str | None, typer.Option(
        "--output", metavar="stdout|raw|FILE",
        help="Upstream's name: the terminal map (stdout, the default), <time> <address> "
             "<heat> lines (raw), or an image file (.png, .svg, .pdf, .jpeg).")], None),
    "stdout_colorset": (Annotated[str | None, typer.Option(
        "--stdout_colorset", metavar="gray|flame|emotion",
        help="Upstream's name of --stdout_heatmap_color.")], None),
    "draw_range": (Annotated[str, typer.Option(
        "--draw_range", metavar="hottest|all",
        help="Upstream's: the union holding the accesses (images also get one file per "
             "other union with accesses, as heats draws them).")], "hottest"),
    "stdout_skip_colorset_example": (Annotated[bool, typer.Option(
        "--stdout_skip_colorset_example", help="Accepted for upstream compatibility.")], False),
}


def run(**kw: object) -> None:
    """Draw when which address ranges were how often accessed (the terminal map by default)."""
    from damo.errors import UsageError

    output = kw.pop("output")
    colorset = kw.pop("stdout_colorset")
    draw_range = kw.pop("draw_range")
    kw.pop("stdout_skip_colorset_example")
    if draw_range not in ("hottest", "all"):
        raise UsageError(f"--draw_range: expected hottest or all, got {draw_range!r}")
    if output is not None and kw["heatmap"] is not None:
        raise UsageError("give --output or --heatmap, not both")
    if output is None and kw["heatmap"] is None and not kw["guide"]:
        output = "stdout"  # upstream's default: the map on the terminal
    if output is not None:
        kw["heatmap"] = None if output == "raw" else output
    if colorset is not None:
        kw["stdout_heatmap_color"] = colorset
    report_heats.run(**kw)


def _signature() -> None:
    """`report heats`' options plus upstream's, for typer to build the command from."""
    base = inspect.signature(report_heats.run, eval_str=True)
    params = list(base.parameters.values())
    json_at = [p.name for p in params].index("json")
    extra = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                               annotation=annotation)
             for name, (annotation, default) in _EXTRA.items()]
    params = params[:json_at] + extra + params[json_at:]
    run.__signature__ = base.replace(parameters=params)
    run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}


_signature()
