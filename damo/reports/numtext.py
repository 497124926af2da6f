"""Whole columns of integers to text at once: printf's ``%0Nx`` and ``%Nd`` for numpy arrays.

Formatting one line per Python call costs about 0.7 us a line; building the
characters of a whole column with numpy costs about a third of that.  Each
field is a block of digit columns in one uint8 matrix (a row per line), wide
enough for the chunk's largest value; digits a narrower value does not have
become the padding printf would print (``0`` for ``%012x`` up to 12, a space
for ``%10d`` up to 10) or a NUL filler byte beyond it, and the filler bytes
are removed at the end, so the text is byte for byte what ``%`` prints.
"""

import numpy as np

FILLER = 0


def _ndigits(value: int, base: int) -> int:
    width = 1
    while value >= base**width:
        width += 1
    return width


def hex_field(x: np.ndarray, min_width: int) -> np.ndarray:
    """``%0{min_width}x`` of each uint64 as a (len(x), width) uint8 block."""
    width = max(min_width, _ndigits(int(x.max(initial=0)), 16))
    raw = x.astype("<u8").view(np.uint8).reshape(-1, 8)[:, ::-1]  # most significant first
    nibbles = np.empty((len(x), 16), dtype=np.uint8)
    np.right_shift(raw, 4, out=nibbles[:, 0::2])
    np.bitwise_and(raw, 15, out=nibbles[:, 1::2])
    chars = nibbles + np.uint8(ord("0"))
    chars += (nibbles > 9) * np.uint8(ord("a") - ord("9") - 1)
    if width > 16:
        raise AssertionError("a uint64 has at most 16 hex digits")
    out = chars[:, 16 - width :]
    for k in range(width - min_width):  # digits beyond min_width: filler where leading
        power = width - 1 - k
        out[:, k][(x >> np.uint64(4 * power)) == 0] = FILLER
    return out


def dec_field(x: np.ndarray, min_width: int) -> np.ndarray:
    """``%{min_width}d`` of each unsigned integer as a (len(x), width) uint8 block."""
    x = x.astype(np.uint64)
    width = max(min_width, 1, _ndigits(int(x.max(initial=0)), 10))
    out = np.empty((len(x), width), dtype=np.uint8)
    q = x
    for power in range(width):
        q, r = np.divmod(q, np.uint64(10))
        out[:, width - 1 - power] = r
    out += np.uint8(ord("0"))
    for power in range(1, width):
        lead = x < np.uint64(10**power)
        out[:, width - 1 - power][lead] = ord(" ") if power < min_width else FILLER
    return out


def join_rows(blocks: list[np.ndarray | bytes], n: int) -> tuple[bytes, np.ndarray]:
    """Rows made of `blocks` side by side (uint8 blocks, or bytes repeated on every row).

    Returns the text and the length of each row.
    """
    widths = [b.shape[1] if isinstance(b, np.ndarray) else len(b) for b in blocks]
    mat = np.empty((n, sum(widths)), dtype=np.uint8)
    at = 0
    for block, width in zip(blocks, widths, strict=True):
        mat[:, at : at + width] = (
            block if isinstance(block, np.ndarray) else np.frombuffer(block, np.uint8)
        )
        at += width
    keep = mat != FILLER
    lengths = keep.sum(axis=1)
    flat = mat.ravel()
    if int(lengths.sum()) != flat.size:
        flat = flat[keep.ravel()]
    return flat.tobytes(), lengths
