"""Small real processes for the vaddr tests: each prints one line when its memory is ready.

`start(tmp_path, kind, *args)` runs `python -c TARGET kind args...` and returns
the process and the fields of its "ready" line (addresses in decimal).
"""

import subprocess
import sys

TARGET = r"""
import mmap, os, signal, sys, time
import numpy as np

PAGE = 4096
kind, args = sys.argv[1], sys.argv[2:]


def anon(size):
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    a = np.frombuffer(m, dtype=np.uint8)
    a[::PAGE] = 1  # fault in by writing: no shared zero page
    import ctypes
    return m, a, ctypes.addressof(ctypes.c_char.from_buffer(m))


def ready(*fields):
    print("ready", *fields, flush=True)


if kind == "half":  # touch the first half of a mapping continuously
    size = int(args[0]) << 20
    m, a, addr = anon(size)
    ready(addr, size)
    end = time.monotonic() + float(args[1])
    while time.monotonic() < end:
        a[: size // 2 : PAGE] += 1
        time.sleep(0.001)
elif kind == "shared":  # memory shared with a child after fork, not written since
    size = int(args[0]) << 20
    m, a, addr = anon(size)
    child = os.fork()
    if child == 0:
        import ctypes
        # Die with the parent even when a test kills it first (PR_SET_PDEATHSIG).
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
        if os.getppid() == 1:
            os._exit(0)
        time.sleep(3600)
        os._exit(0)
    ready(addr, size, child)
    try:
        if len(args) > 2 and args[2] == "read":  # read (never written) every millisecond
            end = time.monotonic() + float(args[1])
            while time.monotonic() < end:
                int(a[::PAGE].sum())
                time.sleep(0.001)
        else:
            time.sleep(float(args[1]))
    finally:
        os.kill(child, signal.SIGKILL)
elif kind == "churn":  # map, touch and unmap memory of changing sizes continuously
    ready(0, 0)
    end = time.monotonic() + float(args[0])
    i = 0
    while time.monotonic() < end:
        # 16 sizes: a mapping lives ~0.1 s, so maps read 1 s apart never show the same one
        m, a, addr = anon((8 + 2 * (i % 16)) << 20)
        for _ in range(20):
            a[::PAGE] += 1
            time.sleep(0.005)
        del a
        m.close()
        i += 1
elif kind == "many":  # args[0] 1 MiB pieces of one mapping, every other one busy
    nr = int(args[0])
    m, a, addr = anon(nr << 20)
    ready(addr, nr << 20)
    hot = a.reshape(nr, 1 << 20)[::2, ::PAGE]
    end = time.monotonic() + float(args[1])
    while time.monotonic() < end:
        hot += 1
        time.sleep(0.001)
elif kind == "sleep":
    ready(0, 0)
    time.sleep(float(args[0]))
    sys.exit(int(args[1]) if len(args) > 1 else 0)
"""


def command(kind: str, *args: object) -> list[str]:
    return [sys.executable, "-c", TARGET, kind, *map(str, args)]


def shell_command(tmp_path, kind: str, *args: object) -> str:
    """The same as one string for `damo record "COMMAND"` (the script in a file)."""
    import shlex

    script = tmp_path / "target.py"
    script.write_text(TARGET)
    return shlex.join([sys.executable, str(script), kind, *map(str, args)])


def start(kind: str, *args: object) -> tuple[subprocess.Popen, list[int]]:
    p = subprocess.Popen(command(kind, *args), stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line and line[0] == "ready", line
    return p, [int(x) for x in line[1:]]
