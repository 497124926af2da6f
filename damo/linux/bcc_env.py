"""Importing the system bcc from a virtual environment; compiling without kernel headers.

bcc's Python module ships with the system Python (Debian: python3-bpfcc, under
/usr/lib/python3/dist-packages); a venv does not see it, and putting that whole
directory on sys.path would shadow the venv's own packages with the system's.
So only the `bcc` package is imported from there, by location.

bcc compiles BPF C with its embedded clang and looks for kernel headers under
$BCC_KERNEL_SOURCE. The machines damo runs on have none, and damo's programs
need none (offsets come from BTF), so a tree of a few small files that satisfy
bcc's own helper headers is written into the cache directory instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from damo.cache import cache_dir
from damo.errors import PlatformError

BCC_PACKAGE = "python3-bpfcc"

# Where distributions put the bcc Python package for the system interpreter.
SYSTEM_SITE_DIRS = (
    "/usr/lib/python3/dist-packages",
    f"/usr/lib/python3.{sys.version_info.minor}/site-packages",
    "/usr/lib64/python3/site-packages",
    f"/usr/lib64/python3.{sys.version_info.minor}/site-packages",
)


def _is_real_bcc(module: ModuleType) -> bool:
    # PyPI has an unrelated package called bcc; the real one exports BPF.
    return hasattr(module, "BPF")


def import_bcc() -> ModuleType:
    """The bcc module, from the environment if it is there, else from the system site directory."""
    existing = sys.modules.get("bcc")
    if existing is not None and _is_real_bcc(existing):
        return existing
    spec = importlib.util.find_spec("bcc") if existing is None else None
    if spec is not None:
        try:
            module = importlib.import_module("bcc")
        except Exception:  # noqa: BLE001 - a broken or foreign bcc: try the system one
            module = None
        if module is not None and _is_real_bcc(module):
            return module
        sys.modules.pop("bcc", None)
    for site in SYSTEM_SITE_DIRS:
        init = Path(site) / "bcc" / "__init__.py"
        if init.is_file():
            return _import_from(init)
    raise PlatformError(f"bcc is not installed: install the {BCC_PACKAGE} package (apt-get install "
                        f"{BCC_PACKAGE})")


def _import_from(init: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bcc", init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["bcc"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # libbcc missing or mismatched: name the package either way
        sys.modules.pop("bcc", None)
        raise PlatformError(
            f"bcc at {init.parent} does not load ({e}): reinstall the {BCC_PACKAGE} package"
        ) from None
    return module


# The header tree. bcc force-includes include/linux/kconfig.h, and its helper
# headers include the others; damo's programs use only what these declare.
_TYPES_H = """\
#ifndef _DAMO_LINUX_TYPES_H
#define _DAMO_LINUX_TYPES_H
typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __s8 s8;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
typedef __u16 __le16;
typedef __u32 __le32;
typedef __u64 __le64;
typedef __u16 __sum16;
typedef __u32 __wsum;
typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned long uintptr_t;
typedef _Bool bool;
enum { false = 0, true = 1 };
#define __aligned_u64 __u64 __attribute__((aligned(8)))
#define __bitwise
#endif
"""

# Instruction encoding constants that bcc's copy of the BPF uapi header expects.
_BPF_COMMON_H = """\
#ifndef _DAMO_BPF_COMMON_H
#define _DAMO_BPF_COMMON_H
#define BPF_CLASS(code) ((code) & 0x07)
#define BPF_LD 0x00
#define BPF_LDX 0x01
#define BPF_ST 0x02
#define BPF_STX 0x03
#define BPF_ALU 0x04
#define BPF_JMP 0x05
#define BPF_RET 0x06
#define BPF_MISC 0x07
#define BPF_SIZE(code) ((code) & 0x18)
#define BPF_W 0x00
#define BPF_H 0x08
#define BPF_B 0x10
#define BPF_MODE(code) ((code) & 0xe0)
#define BPF_IMM 0x00
#define BPF_ABS 0x20
#define BPF_IND 0x40
#define BPF_MEM 0x60
#define BPF_LEN 0x80
#define BPF_MSH 0xa0
#define BPF_OP(code) ((code) & 0xf0)
#define BPF_ADD 0x00
#define BPF_SUB 0x10
#define BPF_MUL 0x20
#define BPF_DIV 0x30
#define BPF_OR 0x40
#define BPF_AND 0x50
#define BPF_LSH 0x60
#define BPF_RSH 0x70
#define BPF_NEG 0x80
#define BPF_MOD 0x90
#define BPF_XOR 0xa0
#define BPF_JA 0x00
#define BPF_JEQ 0x10
#define BPF_JGT 0x20
#define BPF_JGE 0x30
#define BPF_JSET 0x40
#define BPF_SRC(code) ((code) & 0x08)
#define BPF_K 0x00
#define BPF_X 0x08
#ifndef BPF_MAXINSNS
#define BPF_MAXINSNS 4096
#endif
#endif
"""


def _version_h() -> str:
    release = os.uname().release.split("-")[0].split(".")
    nums = [int("".join(c for c in part if c.isdigit()) or 0) for part in release[:3]]
    nums += [0] * (3 - len(nums))
    return (
        "#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))\n"
        f"#define LINUX_VERSION_CODE KERNEL_VERSION({nums[0]}, {nums[1]}, {nums[2]})\n"
    )


def header_files() -> dict[str, str]:
    """Relative path -> content of every file of the minimal kernel header tree."""
    return {
        "include/linux/kconfig.h": "#define CONFIG_BPF_SYSCALL 1\n",
        "include/linux/types.h": _TYPES_H,
        "include/linux/bpf_common.h": _BPF_COMMON_H,
        "include/linux/version.h": _version_h(),
        "include/linux/log2.h": "",
        "include/uapi/linux/bpf.h": "#include <bcc/bpf.h>\n",
        "include/uapi/linux/if_packet.h": "",
        "arch/x86/include/asm/page.h": "",
    }


def header_tree() -> Path:
    """Write (once) the minimal header tree into the cache and return its root."""
    files = header_files()
    digest = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16]
    root = cache_dir() / f"kernel-headers-{digest}"
    if not (root / ".complete").exists():
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (root / ".complete").write_text("")
    return root


def setup() -> ModuleType:
    """Make bcc importable and able to compile here; returns the bcc module."""
    bcc = import_bcc()
    os.environ["BCC_KERNEL_SOURCE"] = str(header_tree())
    return bcc
