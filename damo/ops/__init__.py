"""Operations ("primitives" in the seed): what kdamond drives without knowing which.

`damo.core.operations.Operations` is the interface (the core's, as the
kernel keeps `struct damon_operations` beside `damon_ctx`); `common` holds
what the virtual-address operations share (three regions less big gaps, even splitting,
random sampling addresses); `vaddr` samples real processes through the BPF
page sampler; `sim` answers access checks from a workload description in
virtual time; `children` decides which processes join and leave a process
recording.  `kernel` is not operations of damo's engine: it reads kernel
DAMON's own results from its tracepoint.

Each of `vaddr` and `sim` has `setup(targets: list[str])` returning an
object with `ops`, `target_ids` and `clock`; it parses and checks its TARGET
arguments there, before any output exists.  Which of them `damo record`
uses is `damo.sources`' business: with no `--ops`, pids go through kernel
DAMON where it fits and through `vaddr` otherwise (`damo.sources.choice`).
"""
