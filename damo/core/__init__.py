"""The region engine: DAMON's core (seed patches 01-03) in Python.

Pure computation over numpy arrays; no I/O, and no knowledge of any address
space.  `attrs` holds the monitoring attributes, `target` the regions of one
monitoring target, `clock` the run's time (real or virtual), `operations` the
interface every operations backend implements (`damo.ops`), `context` ties
the attributes, targets, operations and callbacks together, `adjust` is the
adaptive regions adjustment (merge, split, size limit; `seed` and `narrow`),
`budget` the CPU budget that sets how often each region is checked,
`kdamond` the monitor loop, and `native` loads damo's C extensions (a
one-line error when one is not built).  The core imports nothing outside itself but
`damo.errors` (tests/test_import_graph.py).
"""
