"""Workload descriptions (TOML): regions in address order and phases that access them.

One format for `damo record --ops sim` and for the real access generator:
`model` is the validated description, `size` parses byte sizes, `load`
reads and checks a file, reporting problems with the file and line.
"""
