"""The binary layout of DAMON's record format (seed patch 08, `damon_recfmt_ver`).

All little-endian, no padding.  Version 2 (and 1) start with the 16-byte magic and
an int32 version; version 0 has no header.  Then records until EOF::

    tv_sec int64, tv_nsec int64     end of the aggregation window
    nr_targets uint32
    per target: id (uint64; int32 in v1), nr_regions uint32
        per region: start uint64, end uint64, nr_accesses uint32

The numpy dtypes below are made on first use, so that reading a file for
`damo report raw` does not load numpy.
"""

import struct
from typing import Any

MAGIC = b"damon_recfmt_ver"
HEADER_SIZE = len(MAGIC) + 4
VERSIONS = (0, 1, 2)
WRITE_VERSION = 2

NSEC_PER_SEC = 1_000_000_000


def header(version: int = WRITE_VERSION) -> bytes:
    """The file header for `version` (empty for version 0)."""
    if version == 0:
        return b""
    return MAGIC + struct.pack("<i", version)


def _dtypes() -> dict[str, Any]:
    import numpy as np

    return {
        # One region as laid out on disk; numpy arrays of this dtype are the exact bytes.
        "REGION_DTYPE": np.dtype([("start", "<u8"), ("end", "<u8"), ("nr_accesses", "<u4")]),
        "TIME_DTYPE": np.dtype([("tv_sec", "<i8"), ("tv_nsec", "<i8"), ("nr_targets", "<u4")]),
        "TARGET_ID_DTYPE": {0: np.dtype("<u8"), 1: np.dtype("<i4"), 2: np.dtype("<u8")},
        "NR_REGIONS_DTYPE": np.dtype("<u4"),
    }


def __getattr__(name: str) -> Any:
    if name in ("REGION_DTYPE", "TIME_DTYPE", "TARGET_ID_DTYPE", "NR_REGIONS_DTYPE"):
        globals().update(_dtypes())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
