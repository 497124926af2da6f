"""The region engine: DAMON's core (seed patches 01-03) in Python.

Pure computation over numpy arrays; no I/O.  `attrs` holds the monitoring
attributes, `target` the regions of one monitoring target, `adjust` the
adaptive regions adjustment (merge, split, size limit), `context` ties them
to an operations backend and callbacks, and `kdamond` is the monitor loop.
"""
