"""DAMON record files: recfmt v0/v1/v2 and perf-script text in, recfmt v2 out.

Read any of them with `damo.records.reader.read_snapshots(path)` (columnar
`damo.records.snapshots.Snapshots`); write recfmt v2 with
`damo.records.writer.RecordWriter`.
"""
