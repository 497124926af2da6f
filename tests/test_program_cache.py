"""The compiled-program cache: a warm start loads without bcc; stale or bad entries recompile.

Each test uses its own cache directory (DAMO_CACHE_DIR), so "cold" means it:
the first load there compiles with bcc, later ones read the entry.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_bpf

from damo.sampler import program

REPO = Path(__file__).parents[1]

# A tiny source with the two things the loader patches: a map fd and, where
# the kernel has them, kfunc calls (the walker's iterator loop, smaller).
SOURCE = """
BPF_F_TABLE("array", u32, u64, out, 4, 1024);
#ifdef KFUNC_ITER_NUM_NEW
struct bpf_iter_num { u64 opaque; } __attribute__((aligned(8)));
static int (*bpf_iter_num_new)(struct bpf_iter_num *it, int start, int end) =
	(void *)KFUNC_ITER_NUM_NEW;
static int *(*bpf_iter_num_next)(struct bpf_iter_num *it) = (void *)KFUNC_ITER_NUM_NEXT;
static void (*bpf_iter_num_destroy)(struct bpf_iter_num *it) = (void *)KFUNC_ITER_NUM_DESTROY;
#endif
int count(void *ctx)
{
	u32 k = 0;
	u64 *v = out.lookup(&k);

	if (!v)
		return 0;
#ifdef KFUNC_ITER_NUM_NEW
	struct bpf_iter_num it;
	int *i;

	bpf_iter_num_new(&it, 0, 1000);
	while ((i = bpf_iter_num_next(&it)))
		*v += 1;
	bpf_iter_num_destroy(&it);
#else
	*v += 1000;
#endif
	return 0;
}
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMO_CACHE_DIR", str(tmp_path))
    return tmp_path


def entry_path(cache: Path, cflags: list[str]) -> Path:
    return cache / "bpf" / f"{program._cache_key(SOURCE, cflags)}.json"


def run_count(loaded: program.Loaded) -> int:
    from damo.linux import bpf_syscall

    bpf_syscall.TestRun(loaded.prog_fds["count"])()
    return int.from_bytes(loaded.map_views["out"][:8], "little")


def load(cflags, kfunc_ids):
    return program.compile_and_load(SOURCE, cflags, kfunc_ids, programs=("count",),
                                    maps=("out",))


def test_cold_compiles_warm_reads_and_kfunc_calls_are_patched(cache):
    need_bpf()
    cflags, kfunc_ids = program.kfuncs()
    assert kfunc_ids, "this kernel has bpf_iter_num (6.4+); the sampler relies on it here"
    loaded, from_cache = load(cflags, kfunc_ids)
    assert not from_cache and run_count(loaded) == 1000
    loaded.close()
    path = entry_path(cache, cflags)
    assert json.loads(path.read_text())["format"] == program.CACHE_FORMAT
    assert path.stat().st_mode & 0o777 == 0o600
    loaded, from_cache = load(cflags, kfunc_ids)
    assert from_cache and run_count(loaded) == 1000
    loaded.close()


def _old_format_entry(doc: dict) -> dict:
    """What format 1 wrote: no format field, otherwise the same."""
    return {k: v for k, v in doc.items() if k != "format"}


@pytest.mark.parametrize("damage", [
    "old format", "other format", "not json", "not utf-8", "empty", "wrong shape",
    "bad base64", "odd length", "missing program", "a directory", "a fifo",
    "instructions refused",
])
def test_a_bad_entry_is_compiled_again(cache, damage):
    need_bpf()
    cflags, kfunc_ids = program.kfuncs()
    load(cflags, kfunc_ids)[0].close()
    path = entry_path(cache, cflags)
    doc = json.loads(path.read_text())
    if damage == "old format":
        path.write_text(json.dumps(_old_format_entry(doc)))
    elif damage == "other format":
        path.write_text(json.dumps({**doc, "format": program.CACHE_FORMAT + 1}))
    elif damage == "not json":
        path.write_text(path.read_text()[:-20])
    elif damage == "not utf-8":
        path.write_bytes(b"\xff\xfe" + path.read_bytes())
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong shape":
        path.write_text(json.dumps([doc]))
    elif damage == "bad base64":
        doc["programs"]["count"] = "@@" + doc["programs"]["count"]
        path.write_text(json.dumps(doc))
    elif damage == "odd length":
        insns = base64.b64decode(doc["programs"]["count"])
        doc["programs"]["count"] = base64.b64encode(insns[:-3]).decode()
        path.write_text(json.dumps(doc))
    elif damage == "missing program":
        doc["programs"] = {"other": doc["programs"]["count"]}
        path.write_text(json.dumps(doc))
    elif damage == "a directory":
        path.unlink()
        path.mkdir()
    elif damage == "a fifo":
        path.unlink()
        os.mkfifo(path, 0o600)
    elif damage == "instructions refused":
        # Well-formed, but not a program the verifier accepts (exit without setting r0).
        doc["programs"]["count"] = base64.b64encode(bytes([0x95, 0, 0, 0, 0, 0, 0, 0])).decode()
        path.write_text(json.dumps(doc))
    loaded, from_cache = load(cflags, kfunc_ids)
    assert not from_cache and run_count(loaded) == 1000
    loaded.close()
    if path.is_file():  # compiled afresh and stored again (a directory is left alone)
        assert json.loads(path.read_text())["format"] == program.CACHE_FORMAT


def test_the_format_is_part_of_the_key():
    # An entry written by another format version is never even opened.
    old = program.CACHE_FORMAT
    try:
        key = program._cache_key(SOURCE, [])
        program.CACHE_FORMAT = old - 1
        assert program._cache_key(SOURCE, []) != key
    finally:
        program.CACHE_FORMAT = old


def test_local_headers_are_inlined_and_keyed(tmp_path):
    """A program's `#include "x.h"` is replaced by x.h's text, so the key changes with it."""
    (tmp_path / "x.h").write_text("#define X 1\n")
    prog = tmp_path / "p.bpf.c"
    prog.write_text('// p\n#include "x.h"\nint f(void *ctx) { return X; }\n')
    text = program.program_text(prog)
    assert text == "// p\n#define X 1\n\nint f(void *ctx) { return X; }\n"
    key = program._cache_key(text, [])
    (tmp_path / "x.h").write_text("#define X 2\n")
    assert program._cache_key(program.program_text(prog), []) != key


def test_damos_programs_share_the_page_table_header():
    """Both page-table programs get bpf/page_table.h's text (one walk, one mm_of_fd), and
    no `#include "..."` is left for bcc to look up."""
    from damo.sampler import tick, walker

    header = (REPO / "bpf" / "page_table.h").read_text()
    for text in (walker.source(), program.program_text(tick.SOURCE)):
        assert header in text and '#include "' not in text
        assert text.count("mm_of_fd(u64 fd") == 1 and text.count("u64 walk_leaf(") == 1


def _walker_in_subprocess(cache: Path, extra: str = "") -> dict:
    code = (
        f"{extra}\n"
        "import json, sys, time\n"
        "from damo.sampler.walker import walker\n"
        "w = walker()\n"
        "print(json.dumps({'from_cache': w.from_cache, 'bcc': 'bcc' in sys.modules,\n"
        "                  'cpu': time.process_time()}))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "DAMO_CACHE_DIR": str(cache),
                                         "PYTHONPATH": str(REPO)}, check=False)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_a_warm_start_does_not_import_bcc_nor_a_cold_one_keep_it(cache):
    need_bpf()
    cold = _walker_in_subprocess(cache)
    assert not cold["from_cache"]
    assert not cold["bcc"]  # bcc compiled in a child process, which has exited
    warm = _walker_in_subprocess(cache)
    assert warm["from_cache"] and not warm["bcc"]
    # Nor does it need bcc at all: none to be found, and it still loads.
    hidden = _walker_in_subprocess(cache, "import damo.linux.bcc_env as e; e.SYSTEM_SITE_DIRS = ()")
    assert hidden["from_cache"] and not hidden["bcc"]
