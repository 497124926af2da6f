"""The sampling loop `damo record` runs, without the region engine: shared by benchmarks.

`LOOP` is a script (`python -c LOOP PID START SIZE NR WHAT SECONDS`): the
native loop (damo/sampler/_loop.c) with damo's sample program over NR equal
regions of [START, START + SIZE) of process PID, every 5 ms.  WHAT is
`sleep` (no target: only the wake-ups) or `sample+clear` (each step checks
one random page per region and clears the young ones: the whole of a step
but the engine).  For SECONDS, then it prints damo's share of one core, the
user and sys microseconds per step and the steps handed back to Python; or
with SECONDS 0 until the target exits, printing nothing.  CPU from
CLOCK_PROCESS_CPUTIME_ID (the scheduler's exact runtime); the user/sys split
from getrusage (sampled ticks, scaled).
"""

LOOP = r"""
import resource, sys, time
import numpy as np
from damo.sampler import native
from damo.sampler.page_sampler import PageSampler
from damo.sampler.walker import walker
pid, start, size, nr = map(int, sys.argv[1:5])
what, seconds = sys.argv[5], float(sys.argv[6])
w = walker()
r = w.regions
edges = (start + np.arange(nr + 1) * (size // max(nr, 1))) & ~4095
r.start[:nr], r.end[:nr], r.flags[:nr] = edges[:-1], edges[1:], 0
cfg = np.frombuffer(w._config, dtype=np.uint64).ctypes.data
fd = w._loaded.prog_fds["sample"]
interval = 5_000_000
with PageSampler(pid) as s:
    targets = [] if what == "sleep" else [s.loop_target(0, nr)]
    steps = staged_sum = handed = 0
    cpu = lambda: time.clock_gettime_ns(time.CLOCK_PROCESS_CPUTIME_ID)  # noqa: E731
    r0, c0 = resource.getrusage(resource.RUSAGE_SELF), cpu()
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    until_exit = seconds == 0
    deadline, ahead, step, nxt = t0 + int(seconds * 1e9), False, 0, t0 + interval
    while True:
        if until_exit:  # a second at a time, then whether the target still runs
            deadline = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + 1_000_000_000
        reason, _, mode, step, nxt, ahead, staged, nbytes, n, advised, walked = native.loop().run(
            cfg, fd, w.iovecs_addr, targets, ahead, step, nxt, interval, deadline)
        steps += n
        if reason == native.R_GONE or reason == native.R_DONE and not (until_exit and s.alive()):
            break
        handed += 1  # a step the loop hands back: finish its clearing as damo does
        if reason == native.R_ADVISE:
            s.finish_advice(mode, 0, nr, staged, nbytes, advised, walked)
        ahead = bool(mode & 2)
    r1, c1 = resource.getrusage(resource.RUSAGE_SELF), cpu()
    wall = (time.clock_gettime_ns(time.CLOCK_MONOTONIC) - t0) / 1e9
user, sys_ = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
if not until_exit:
    print(f"{(c1 - c0) / 1e9 / wall:.4f} {user / max(steps, 1) * 1e6:.0f} "
          f"{sys_ / max(steps, 1) * 1e6:.0f} {handed}")
"""
