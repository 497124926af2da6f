"""damo's own process environment, and the one the commands it starts get.

damo does no linear algebra, but numpy loads OpenBLAS, which starts a worker
thread for each further CPU.  Idle, that thread still cost damo about 1 % of
a core here (54 us per 5 ms sampling interval: the same sleep loop with
numpy imported, OPENBLAS_NUM_THREADS unset vs 1).  The CLI asks for a single
thread before numpy loads, unless the user chose a number; a command damo
starts and records gets the environment damo was given.

Work that would leave the monitor bigger for its whole run (compiling with
bcc, parsing BTF) runs in a forked child (`in_child`).
"""

import os
from collections.abc import Callable

_given: dict[str, str] | None = None


def limit_threads() -> None:
    """One BLAS thread for this process; call before numpy is imported."""
    global _given
    if _given is None:
        _given = dict(os.environ)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def given_env() -> dict[str, str]:
    """The environment damo was started with (as before `limit_threads`)."""
    return dict(_given if _given is not None else os.environ)


def in_child(fn: Callable[[], object]) -> object:
    """fn() run in a forked child, its (JSON-able) result passed back through a pipe.

    For work that would leave this process bigger for good: bcc's compiler
    maps LLVM (~130 MiB resident) and a parse of the kernel's BTF builds tens
    of MiB of objects, which the monitor then carries for its whole run.  A
    DamoError in the child comes back as one of the same class and message.
    """
    import json

    from damo import errors

    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        os.close(read_end)
        os.close(write_end)
        raise errors.PlatformError(f"cannot start a helper process: {e.strerror}") from None
    if pid == 0:  # the child: never returns into the caller's code
        try:
            os.close(read_end)
            try:
                reply = {"result": fn()}
            except errors.DamoError as e:
                reply = {"error": type(e).__name__, "message": str(e)}
            except BaseException as e:  # noqa: BLE001 - reported to the parent as one line
                reply = {"error": "PlatformError", "message": f"{type(e).__name__}: {e}"}
            with os.fdopen(write_end, "w") as f:
                json.dump(reply, f)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as f:
            text = f.read()
    finally:
        os.waitpid(pid, 0)
    try:
        reply = json.loads(text)
    except ValueError:
        raise errors.PlatformError("a helper process of damo died before answering") from None
    if "error" in reply:
        cls = getattr(errors, reply["error"], None)
        if not (isinstance(cls, type) and issubclass(cls, errors.DamoError)):
            cls = errors.PlatformError
        raise cls(reply["message"])
    return reply["result"]
