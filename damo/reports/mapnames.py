"""The main mappings of a heatmap's area, to name on its side (image and terminal).

A span is named when it holds a noticeable share of the map's heat or of its
address space; at most `MAX_LABELS`, in address order.
"""

from __future__ import annotations

import numpy as np

MAX_LABELS = 10
MIN_HEAT_SHARE = 0.02
MIN_SIZE_SHARE = 0.08


def main_spans(annotator, heat: np.ndarray, target_id: int, tmin: int, tmax: int, amin: int,
               aunit: int) -> list[tuple[int, int, str, float]]:
    """(start, end, name, heat share) of the spans worth naming, in address order."""
    if annotator is None or not annotator.has_maps(target_id):
        return []
    ares = heat.shape[1]
    amax = amin + aunit * ares
    spans = annotator.named_spans(target_id, (tmin + tmax) // 2, amin, amax,
                                  min_size=max((amax - amin) // 100, 4096))
    if not spans:
        return []
    column = heat.sum(axis=0)
    total = float(column.sum())
    # Heat up to a fractional cell position: a span gets its share of a cell it partly covers.
    cum = np.concatenate([[0.0], np.cumsum(column)])
    cells = np.arange(ares + 1, dtype=np.float64)
    scored = []
    for start, end, name in spans:
        x = np.interp([(start - amin) / aunit, (end - amin) / aunit], cells, cum)
        share = float(x[1] - x[0]) / total if total > 0 else 0.0
        size_share = (end - start) / (amax - amin)
        if share >= MIN_HEAT_SHARE or size_share >= MIN_SIZE_SHARE:
            scored.append((start, end, name, share))
    scored.sort(key=lambda s: -max(s[3], (s[1] - s[0]) / (amax - amin)))
    return sorted(scored[:MAX_LABELS])
