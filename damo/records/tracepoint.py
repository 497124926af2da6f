"""The kernel's `damon:damon_aggregated` tracepoint, by name.

Kept apart (no imports) so that sniffing a file's format costs nothing: the
reader looks for the name to tell `perf script` text, the perf-script
parser finds each line's fields after it, and `damo.ops.kernel` attaches to
the tracepoint under tracefs.
"""

#: Under tracefs `events/`: where the tracepoint's format and id are.
TRACEFS_NAME = "damon/damon_aggregated"
#: How `perf script` prints the event before its fields.
PERF_SCRIPT_EVENT = b"damon:damon_aggregated:"
