"""DAMON record files: recfmt v0/v1/v2 and perf-script text in, recfmt v2 out."""
