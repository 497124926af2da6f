"""`damo report raw`: every record of a record file as text."""

from damo.reports.options import DEFAULT_INPUT, Input

NAME = "raw"
GROUP = "report"


def run(input: Input = DEFAULT_INPUT) -> None:
    """Print every record: time, targets and each region's range, size and nr_accesses."""
    from damo.records.reader import read_snapshots
    from damo.reports.output import write_chunks
    from damo.reports.raw import raw_text

    write_chunks(raw_text(read_snapshots(input)))
