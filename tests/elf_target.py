"""examples/hotcold.c compiled for a test, run, and its mappings written to a sidecar."""

import shutil
import subprocess
from pathlib import Path

import pytest

from damo.linux.maps import read_maps
from damo.records.meta import MetaWriter

SOURCE = Path(__file__).parents[1] / "examples" / "hotcold.c"


def compile_hotcold(out: Path, *flags: str) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build examples/hotcold.c")
    subprocess.run([cc, "-O1", *flags, "-o", str(out), str(SOURCE)], check=True)
    return out


def start(binary: Path, seconds: float = 30) -> tuple[subprocess.Popen, dict[str, int]]:
    """Run the program; the addresses it prints (hot_array, ..., main)."""
    p = subprocess.Popen([str(binary), str(seconds)], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line and line[0] == "ready", line
    return p, {k: int(v) for k, v in (f.split("=") for f in line[1:])}


def write_sidecar(record: Path, pid: int, target_id: int = 1) -> None:
    """A sidecar as `damo record` writes it, with the process's mappings now."""
    maps = read_maps(pid)
    with MetaWriter(str(record)) as meta:
        meta.write("start", time_ns=0, attrs={"sample_us": 5000, "aggr_us": 100000},
                   targets=[{"id": target_id, "pid": pid, "cmdline": ["hotcold"]}])
        meta.write("maps", time_ns=0, target_id=target_id,
                   maps=[[m.start, m.end, m.perms, m.offset, m.path, m.dev, m.inode]
                         for m in maps])
