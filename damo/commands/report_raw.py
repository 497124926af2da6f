"""`damo report raw`: every record of a record file as text."""

from damo.reports.options import DEFAULT_INPUT, Input, Json

NAME = "raw"
GROUP = "report"


def run(input: Input = DEFAULT_INPUT, json: Json = False) -> None:
    """Print every record: time, targets and each region's range, size and nr_accesses."""
    from damo.records.reader import RecordFile
    from damo.reports.output import write_chunks
    from damo.reports.raw import check, raw_json, raw_text

    record = RecordFile(input)
    check(record)
    write_chunks((raw_json if json else raw_text)(record.chunks()))
