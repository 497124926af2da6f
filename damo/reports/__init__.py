"""Reports over record files: raw, heats (+guide, images), wss, nr_regions, adjust.

Each module computes from a `damo.records.snapshots.Snapshots` and returns or
writes text; the `damo.commands.report_*` modules only wire options to them.
"""

# Snapshots at the start of a record whose regions are not adapted yet, skipped
# by nr_regions, adjust and wss --work_time as DAMON's tool does.
WARMUP_SNAPSHOTS = 20
