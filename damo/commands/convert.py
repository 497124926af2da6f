"""`damo convert`: rewrite a record file in another format."""

from typing import Annotated

import typer

NAME = "convert"
GROUP = None


def run(
    input: Annotated[str, typer.Argument(metavar="IN", help="Record file to read (any format "
                                          "damo reads, sniffed from the content).")],
    output: Annotated[str, typer.Argument(metavar="OUT", help="Record file to write (an "
                                           "existing one is kept as OUT.old).")],
    format: Annotated[str, typer.Option(
        "--format", "-f", metavar="json_compressed|json|recfmt",
        help="Format of OUT: upstream damo's json_compressed (zlib) or json, or DAMON's recfmt "
             "v2.")] = "json_compressed",
) -> None:
    """Convert a record file between recfmt, perf script text and upstream damo's JSON."""
    import sys

    from damo.records.convert import convert

    print(convert(input, output, format), file=sys.stderr)
