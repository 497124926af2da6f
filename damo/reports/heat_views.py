"""Heatmaps for people: titles, named mappings and one image per monitored area.

`damo report heats --heatmap FILE|stdout` goes through `Views`: it reads the
sidecar once (when there is one) for the target's name, the attributes and
the mappings to name beside the map, and draws with `plot` or
`heatmap_text`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from damo.reports import heatmap_text, heats, mapnames, numbers, plot
from damo.reports.annotate import Annotator


class Views:
    def __init__(self, source: Any, input_path: str, all_guides: list[heats.Guide]):
        """`source`: the record (a `RecordFile` or `Snapshots`); `all_guides`: its guides."""
        self.source = source
        self.guides = all_guides
        self.input = input_path
        annotator = Annotator.for_record(input_path)
        self.annotator = annotator if annotator.has_maps() or annotator.targets else None

    def _origin(self, target_id: int) -> int:
        """The start of the target's first snapshot: time 0 of every map of it."""
        return heats.guide_of(self.source, target_id, self.guides).span.first_start_ns

    def _title(self, a: heats.Area, sep: str = ", ") -> str:
        name = f"target {a.target_id}" if self.annotator is None \
            else self.annotator.target_name(a.target_id)
        origin = self._origin(a.target_id)
        where = f"area {a.union}: " if a.union is not None else ""
        return (f"{name}{sep}{where}{a.amin:#x}-{a.amax:#x} "
                f"({numbers.format_size(a.amax - a.amin)}), "
                f"{(a.tmin - origin) / 1e9:.1f}-{(a.tmax - origin) / 1e9:.1f} s "
                f"[{os.path.basename(self.input)}]")

    def _labels(self, a: heats.Area, heat: np.ndarray) -> list:
        return mapnames.main_spans(self.annotator, heat, a.target_id, a.tmin, a.tmax, a.amin,
                                   a.aunit)

    def terminal(self, a: heats.Area, heat: np.ndarray, color: str) -> str:
        attrs = {} if self.annotator is None else self.annotator.attrs
        per_aggr = attrs.get("aggr_us", 0) / attrs["sample_us"] if attrs.get("sample_us") \
            else None
        return heatmap_text.render(heat, a.tmin, a.tunit, a.amin, a.aunit, color,
                                   self._labels(a, heat), self._origin(a.target_id), per_aggr,
                                   self._title(a))

    def image(self, a: heats.Area, heat: np.ndarray, path: str, abs_time: bool,
              abs_addr: bool) -> None:
        plot.heatmap_image(heat, path, a.tmin, a.tunit, a.amin, a.aunit, abs_time, abs_addr,
                           self._title(a, "\n"), self._labels(a, heat),
                           self._origin(a.target_id))

    def other_images(self, shown: heats.Area, path: str, abs_time: bool,
                     abs_addr: bool) -> list[str]:
        """One image per other region union with accesses: PATH with `.areaK` before the suffix."""
        guide = heats.guide_of(self.source, shown.target_id, self.guides)
        accesses = heats.area_accesses(self.source, guide, shown.tmin, shown.tmax)
        total = float(accesses.sum())
        written = []
        stem, ext = os.path.splitext(path)
        say = [f"damo: {path}: area {shown.union} "
               f"({_share(accesses[shown.union], total)} of the accesses)"]
        for k in np.argsort(-accesses, kind="stable").tolist():
            if k == shown.union or accesses[k] <= 0:
                continue
            a = heats.area(self.source, shown.target_id, (shown.tres, shown.ares),
                           (shown.tmin, shown.tmax), union=k, all_guides=self.guides)
            other = f"{stem}.area{k}{ext}"
            self.image(a, heats.heat_matrix(self.source, a, guide.span), other, abs_time,
                       abs_addr)
            written.append(other)
            say.append(f"{other}: area {k} ({_share(accesses[k], total)})")
        if written:
            print("; ".join(say), file=sys.stderr)
        return written


def _share(part: float, total: float) -> str:
    return f"{part / total:.1%}" if total > 0 else "none"
