"""The `narrow` region adjustment (damo's default): its merge and split rules.

The seed's own cases (tests/test_core.py) run with `--adjust seed`; these check
what `narrow` adds: held pieces, accessed/unaccessed never alike, diffuse
searches released, cold regions cut for dense sampling, all within
[min_nr_regions, max_nr_regions].
"""

import json
import math
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from damo.core.adjust import (
    kdamond_merge_regions,
    kdamond_reset_aggregated,
    kdamond_split_regions,
)
from damo.core.attrs import Attrs
from damo.core.clock import VirtualClock
from damo.core.context import Context
from damo.core.kdamond import kdamond_fn
from damo.core.narrow import (
    DEFAULT,
    Narrow,
    edge_cuts,
    narrow_merge_regions_of,
    narrow_split_counts,
    release_diffuse,
    split_evenly,
    split_plan,
)
from damo.core.target import Target
from damo.errors import UsageError
from damo.ops.common import apply_three_regions
from damo.ops.sim import SIM_TARGET_ID, SimOperations
from damo.recording import Recording
from damo.records.reader import read_snapshots
from damo.workload.load import parse
from damo.workload.truth import read_truth
from damo.workload.wss_accuracy import accuracy

PAGE = 4096


def target(bounds, nrs, holds=None) -> Target:
    t = Target(1)
    t.set_regions([b[0] for b in bounds], [b[1] for b in bounds], nrs)
    if holds is not None:
        t.hold = np.array(holds, dtype=t.hold.dtype)
    return t


def spans(t: Target) -> list[tuple[int, int]]:
    return list(zip(t.start.tolist(), t.end.tolist(), strict=True))


def test_unknown_mode_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown region adjustment 'x'"):
        Context(adjust="x")
    assert Context().adjust == "narrow"


def test_accessed_and_unaccessed_never_merge():
    # The seed's merge joins 0 and 1 under a threshold of 2; narrow keeps the hit apart.
    t = target([(0, 10), (10, 20), (20, 30), (30, 40)], [0, 1, 3, 0])
    narrow_merge_regions_of(t, 2, 1000)
    assert spans(t) == [(0, 10), (10, 30), (30, 40)]
    assert t.nr_accesses.tolist() == [0, 2, 0]
    assert t.last_nr_accesses.tolist() == [0, 2, 0]


def test_waiting_pieces_stay_apart_and_hit_ones_merge():
    # held, no access: waits; held and hit: merges with alike accessed neighbours
    t = target([(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)], [0, 0, 0, 5, 5],
               holds=[0, 3, 3, 2, 0])
    narrow_merge_regions_of(t, 1, 1000)
    assert spans(t) == [(0, 10), (10, 20), (20, 30), (30, 50)]
    assert t.hold.tolist() == [0, 3, 3, 2]


def test_neighbours_far_apart_before_do_not_merge_on_one_alike_aggregation():
    """An aggregation spanning a phase change reads the old and the new hot
    regions alike: they stay apart for it, and merge if alike in the next."""
    def changed(settings=DEFAULT):
        t = target([(0, 10), (10, 20), (20, 30), (30, 40)], [10, 10, 11, 10])
        t.last_nr_accesses = np.array([20, 0, 20, 0])
        narrow_merge_regions_of(t, 1, 1000, settings)
        return t

    t = changed()
    assert len(spans(t)) == 4
    assert len(spans(changed(replace(DEFAULT, changed_apart=False)))) == 1
    # The next aggregation: alike now and before, so they merge.
    t.nr_accesses[:] = [10, 10, 10, 10]
    narrow_merge_regions_of(t, 1, 1000)
    assert spans(t) == [(0, 40)]
    # A split's pieces share their region's last count: they merge back as before.
    t = target([(0, 10), (10, 20), (20, 30)], [12, 10, 11])
    t.last_nr_accesses = np.array([11, 11, 3])  # 11 -> 3: within half of 20
    narrow_merge_regions_of(t, 2, 1000)
    assert spans(t) == [(0, 30)]


def test_cooling_pieces_merge_as_the_seeds():
    """A released search's pieces (cooling off) join an unaccessed neighbour on a
    count within the threshold (cooling_merges); other hits stay apart."""
    def merged(settings):
        t = target([(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)], [0, 1, 0, 1, 0],
                   holds=[0, -3, 0, 0, 0])
        narrow_merge_regions_of(t, 2, 1000, settings)
        return t

    t = merged(replace(DEFAULT, cooling_merges=True))
    assert spans(t) == [(0, 30), (30, 40), (40, 50)]
    assert t.hold.tolist() == [-3, 0, 0]
    assert len(spans(merged(replace(DEFAULT, cooling_merges=False)))) == 5


def test_cold_merge_keeps_the_size_limit():
    t = target([(0, 10), (10, 20), (20, 30), (40, 50)], [0, 0, 0, 0])
    narrow_merge_regions_of(t, 0, 20)
    assert spans(t) == [(0, 20), (20, 30), (40, 50)]


def test_cooling_off_spreads_over_merges():
    t = target([(0, 10), (10, 20), (20, 30)], [4, 4, 4], holds=[-5, 0, 3])
    narrow_merge_regions_of(t, 0, 1000)
    assert spans(t) == [(0, 30)] and t.hold.tolist() == [-5]


def test_release_diffuse():
    # one family (equal holds, adjacent): hits in two separate places -> cooling off
    t = target([(i * 10, i * 10 + 10) for i in range(6)], [1, 0, 0, 2, 0, 0],
               holds=[4, 4, 4, 4, 4, 4])
    release_diffuse(t)
    assert t.hold.tolist() == [-DEFAULT.cool_aggregations] * 6
    # one run of adjacent hits (an object over two pieces) keeps the search
    t = target([(i * 10, i * 10 + 10) for i in range(6)], [0, 3, 2, 0, 0, 0],
               holds=[4, 4, 4, 4, 4, 4])
    release_diffuse(t)
    assert t.hold.tolist() == [4] * 6
    # two families, one hit each: both kept
    t = target([(i * 10, i * 10 + 10) for i in range(4)], [1, 0, 0, 1], holds=[4, 4, 7, 7])
    release_diffuse(t)
    assert t.hold.tolist() == [4, 4, 7, 7]


def counts(nr, hold, pages, max_nr=100, nr_subs=2, sparse_max=5, adjacent=None, full=None):
    nr, hold, pages = (np.array(a, dtype=np.int64) for a in (nr, hold, pages))
    if adjacent is None:
        adjacent = np.ones(len(nr) - 1, dtype=bool)
    return narrow_split_counts(nr, hold, pages, np.asarray(adjacent), nr_subs, sparse_max, max_nr,
                               full=full)


def test_split_counts_by_kind():
    #       cold   evidence  dense  waiting  cooling-hit  cold
    nr = [0, 2, 0, 20, 0, 0, 1, 0]
    hold = [0, 0, 0, 0, 0, 5, -3, 0]
    pages = [1000, 64, 1000, 10, 2, 100, 100, 1000]
    pieces, evidence = counts(nr, hold, pages, max_nr=300)
    assert evidence.tolist() == [False, True] + [False] * 6
    assert pieces[1] == DEFAULT.evidence_pieces
    assert pieces[3] == 2  # accessed, not evidence: the seed's 2
    assert pieces[4] == 1 and pieces[5] == 1  # cold but <= 2 pages; waiting
    assert pieces[6] == 2  # accessed while cooling off: not searched again
    # cold pieces: up to max // 3 in all, by size
    assert pieces[0] == pieces[2] == pieces[7] and pieces[0] * 3 <= 300 // 3
    assert pieces[0] >= 20
    assert pieces.sum() <= 300


def test_evidence_needs_quiet_neighbours_and_sparse_counts():
    pieces, evidence = counts([0, 2, 3, 0, 6, 0], [0] * 6, [100] * 6, max_nr=1000)
    assert evidence.tolist() == [False] * 6  # 2 and 3 touch; 6 > sparse_max
    # not adjacent: a neighbour across a gap does not count
    pieces, evidence = counts([0, 2, 3, 0], [0] * 4, [100] * 4, max_nr=1000,
                              adjacent=[True, False, True])
    assert evidence.tolist() == [False, True, True, False]
    # a region of few pages is cut at every page
    pieces, _ = counts([0, 1, 0], [0] * 3, [100, 3, 100], max_nr=1000)
    assert pieces[1] == 3


def test_a_region_straddling_a_boundary_is_cut_finer():
    """Half hot beside a hot and a cold neighbour: 8 pieces; alike neighbours: the seed's."""
    nr = np.array([20, 10, 0, 10, 10, 10])
    pages = np.array([100, 100, 100, 100, 100, 100])
    adjacent = np.ones(5, dtype=bool)
    pieces, _ = narrow_split_counts(nr, np.zeros(6, dtype=np.int64), pages, adjacent, 2, 5,
                                    1000, full=18)
    assert pieces[1] == DEFAULT.straddle_pieces  # 20 | 10 | 0: a boundary inside
    assert pieces[3] == DEFAULT.straddle_pieces  # 0 | 10: the cold neighbour
    assert pieces[4] == 2 and pieces[5] == 2  # accessed in part throughout: nothing to find
    assert pieces[0] == 2  # full: the seed's
    # Without the count of a full region (a direct call), the seed's rule.
    pieces, _ = narrow_split_counts(nr, np.zeros(6, dtype=np.int64), pages, adjacent, 2, 5, 1000)
    assert pieces[1] == 2


def test_split_plan_ages_holds():
    """Holds and cooling-offs run out by one; evidence and small objects found are held."""
    #       held  cooling  ends  evidence  found (3 pages)  found, cooling  cold
    nr = np.array([0, 0, 0, 2, 30, 30, 0])
    hold = np.array([4, -3, -1, 0, 0, -2, 0])
    pages = np.array([100, 100, 100, 64, 3, 3, 100])
    adjacent = np.array([True, True, False, False, True, False])
    h = DEFAULT.hold_aggregations
    _, evidence, new_hold = split_plan(nr, hold, pages, adjacent, 2, 5, 1000, full=18)
    assert evidence.tolist() == [False, False, False, True, False, False, False]
    assert new_hold.tolist() == [3, -2, 0, h, h, -1, 0]
    _, _, new_hold = split_plan(nr, hold, pages, adjacent, 2, 5, 1000,
                                replace(DEFAULT, hold_found=False), full=18)
    assert new_hold.tolist() == [3, -2, 0, h, 0, -1, 0]


@pytest.mark.parametrize("max_nr", [10, 12, 30, 100, 1000])
def test_split_counts_stay_within_max(max_nr):
    rng = np.random.default_rng(max_nr)
    for _ in range(50):
        n = int(rng.integers(1, max_nr + 1))
        nr = rng.choice([0, 0, 0, 1, 2, 10, 20], n)
        hold = rng.choice([0, 0, 3, -2], n)
        pages = rng.integers(1, 5000, n)
        for full in (None, 18):  # without and with the straddle cut
            pieces, _ = counts(nr, hold, pages, max_nr=max_nr, full=full)
            assert pieces.min() >= 1 and (pieces <= np.maximum(pages, 1)).all()
            assert pieces.sum() <= max(max_nr - DEFAULT.update_room, n)


def test_edge_cuts_probe_cold_neighbours_of_accessed_regions():
    # cold [0, 1000) | hot [1000, 1160) | cold [1160, 2000) | gap | cold [3000, 3100)
    start = np.array([0, 1000, 1160, 3000]) * PAGE
    end = np.array([1000, 1160, 2000, 3100]) * PAGE
    nr = np.array([0, 20, 0, 0])
    cold = nr == 0
    cuts = edge_cuts(start, end, nr >= 18, cold, PAGE, (16, 4), 100) // PAGE
    # the hot region's size / 16 and / 4 (10 and 40 pages) from both its edges;
    # nothing in the region across the gap, which does not touch it
    assert cuts.tolist() == [960, 990, 1170, 1200]
    # a held cold piece is not cut, nor an accessed one; room caps the cuts
    assert (edge_cuts(start, end, nr >= 18, cold & (np.arange(4) != 0), PAGE, (16, 4), 100)
            // PAGE).tolist() == [1170, 1200]
    assert len(edge_cuts(start, end, nr >= 18, cold, PAGE, (16, 4), 3)) == 3
    assert not len(edge_cuts(start, end, nr >= 18, cold, PAGE, (), 100))
    # a region accessed in part (diffuse, or straddling a boundary) gets no probes,
    # nor one under min_pages
    assert not len(edge_cuts(start, end, nr >= 30, cold, PAGE, (16, 4), 100))
    assert not len(edge_cuts(start, end, nr >= 18, cold, PAGE, (16, 4), 100, 161))
    assert len(edge_cuts(start, end, nr >= 18, cold, PAGE, (16, 4), 100, 160)) == 4
    # only into cold neighbours ratio x the full region's size (840 / 160 = 5.25)
    assert (edge_cuts(start, end, nr >= 18, cold, PAGE, (16, 4), 100, 1, 6)
            // PAGE).tolist() == [960, 990]
    assert len(edge_cuts(start, end, nr >= 18, cold, PAGE, (16, 4), 100, 1, 5)) == 4
    # a cold neighbour too small for a cut gets none; a hot region under f pages cuts none
    small = edge_cuts(np.array([0, 16]) * PAGE, np.array([16, 20]) * PAGE,
                      np.array([True, False]), np.array([False, True]), PAGE, (16, 4), 100,
                      ratio=0)
    small //= PAGE
    assert small.tolist() == [17]


def filled_gapped(tmp_path) -> Path:
    """examples/workloads/gapped.toml with each gap a cold mapping of its size.

    The vaddr operations leave big unmapped gaps out of the regions
    (damo.ops.common.big_gap), so the GiB cold neighbours that edge probes exist
    for are mapped memory nobody touches.
    """
    doc = tomllib.loads(
        (Path(__file__).parents[1] / "examples" / "workloads" / "gapped.toml").read_text())
    regions = []
    for r in doc["regions"]:
        r = dict(r)
        if "gap_before" in r:
            regions.append({"name": "cold_" + r["name"], "size": r.pop("gap_before")})
        regions.append(r)
    text = "".join(f"[[{kind}]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items())
                   for kind, tables in (("regions", regions), ("phases", doc["phases"]))
                   for t in tables)
    path = tmp_path / "filled.toml"
    path.write_text(text)
    return path


def gapped_missed(tmp_path, seed: int, settings) -> float:
    """Median missed bytes of `filled_gapped` on sim at the default CPU budget."""
    out, truth = str(tmp_path / "d.data"), str(tmp_path / "t.jsonl")
    rec = Recording.prepare([str(filled_gapped(tmp_path))], "sim", Attrs(), out, seed=seed,
                            truth=truth, max_cpu=1.0)
    rec.ctx.adjustment = Narrow(settings)
    rec.run()
    return float(np.median(accuracy(out, truth, Attrs(), check_nr_regions=False).missed))


def test_filled_gapped_layout(tmp_path):
    spec = parse(filled_gapped(tmp_path).read_text())
    names = [r.name for r in spec.regions]
    assert names == ["big", "cold_small", "small", "cold_mid", "mid", "cold_tiny", "tiny"]


def test_edge_probes_find_a_hot_tail_in_a_gap_sized_cold_region(tmp_path):
    """gapped's objects beside GiB cold neighbours, so cold pieces are 12-19 MiB: the
    part of an object left beside its hot region's boundary stayed unfound for whole
    phases at the budget's 3 samples an aggregation (seed 10: 0.86 % median missed
    without the probe; 0.00 % with it, seeds 1-40 at most 0.09 %)."""
    assert gapped_missed(tmp_path, 10, DEFAULT) <= 0.001
    assert gapped_missed(tmp_path, 10, replace(DEFAULT, edge_probes=())) > 0.005


def test_split_evenly_tiles_and_aligns():
    rng = np.random.default_rng(3)
    t = target([(0, 100 * PAGE), (200 * PAGE, 203 * PAGE), (300 * PAGE, 316 * PAGE)], [0, 0, 0])
    starts, ends, parent = split_evenly(t, np.array([7, 3, 16]), rng, PAGE)
    assert len(starts) == 7 + 3 + 16
    assert (starts[1:] >= ends[:-1]).all() and (ends > starts).all()
    assert not (starts % PAGE).any() and not (ends % PAGE).any()
    assert parent.tolist() == [0] * 7 + [1] * 3 + [2] * 16
    sizes = (ends - starts)[:7] // PAGE
    # pieces of 100/7 pages, but the first and last which share 100/7
    assert sizes[1:-1].min() >= 14 and sizes[1:-1].max() <= 15
    assert abs(sizes[0] + sizes[-1] - 200 / 7) <= 2
    assert (ends - starts)[7:].tolist() == [PAGE] * 19  # cut at every page


def test_hold_survives_an_update():
    t = target([(0, 10 * PAGE), (10 * PAGE, 20 * PAGE), (30 * PAGE, 40 * PAGE)], [0, 0, 0],
               holds=[0, 6, 2])
    apply_three_regions(t, [(0, 20 * PAGE), (30 * PAGE, 50 * PAGE), (60 * PAGE, 70 * PAGE)],
                        PAGE)
    assert spans(t)[-1] == (60 * PAGE, 70 * PAGE)
    assert t.hold.tolist() == [0, 6, 2, 0]
    t.insert_region(0, -PAGE, 0)
    t.del_region(2)
    assert t.hold.tolist() == [0, 0, 2, 0] and len(t.last_nr_accesses) == t.nr_regions


def test_a_search_narrows_to_the_page():
    """One aggregation after another, by hand: the hit region is cut into held
    pieces, the piece hit again is cut again, down to one page."""
    ctx = Context(Attrs(min_nr_regions=3, max_nr_regions=200), rng=np.random.default_rng(1))
    ctx.set_targets([1])
    t = ctx.targets[0]
    t.set_regions([0], [256 * PAGE])
    hot = 77 * PAGE
    for _ in range(4):
        covering = int(np.searchsorted(t.start, hot, side="right") - 1)
        t.nr_accesses[:] = 0
        t.nr_accesses[covering] = 1 if t.end[covering] - t.start[covering] > PAGE else 20
        kdamond_merge_regions(ctx, 0, 256 * PAGE)
        kdamond_reset_aggregated(ctx)
        kdamond_split_regions(ctx)
    covering = int(np.searchsorted(t.start, hot, side="right") - 1)
    assert (t.start[covering], t.end[covering]) == (hot, hot + PAGE)
    # the pieces around wait, held, for a hit of their own
    assert (t.hold[t.end - t.start > PAGE] > 0).any()
    assert t.hold.max() <= DEFAULT.hold_aggregations


def sim_context(text: str, attrs: Attrs, seed: int, mode: str = "narrow"):
    ops = SimOperations(parse(text))
    ctx = Context(attrs, ops, rng=np.random.default_rng(seed), clock=VirtualClock(), adjust=mode)
    ctx.set_targets([SIM_TARGET_ID])
    return ctx, ops


HOT_PAGES = """
[[regions]]
name = "cold"
size = "37 MiB"
[[regions]]
name = "hot"
size = "4 KiB"
[[regions]]
name = "cold2"
size = "19 MiB"
[[regions]]
name = "warm"
size = "3 MiB"
[[phases]]
name = "p"
duration_ms = 6000
access = ["hot", { region = "warm", probability = 0.05 }]
"""


@pytest.mark.parametrize("attrs", [Attrs(), Attrs(min_nr_regions=3, max_nr_regions=12),
                                   Attrs(min_nr_regions=20, max_nr_regions=40)])
def test_regions_stay_within_min_and_max(attrs):
    ctx, _ = sim_context(HOT_PAGES, attrs, seed=5)
    seen = []

    def count(c):
        seen.append(sum(t.nr_regions for t in c.targets))

    ctx.callbacks.after_sampling = count
    ctx.callbacks.after_aggregation = count
    kdamond_fn(ctx)
    assert len(seen) > 1000
    assert attrs.min_nr_regions <= min(seen[10:]) and max(seen) <= attrs.max_nr_regions


def test_seed_mode_keeps_no_state():
    ctx, _ = sim_context(HOT_PAGES, Attrs(), seed=5, mode="seed")
    holds = []
    ctx.callbacks.after_aggregation = lambda c: holds.append(int(np.abs(c.targets[0].hold).max()))
    kdamond_fn(ctx)
    assert holds and max(holds) == 0


def test_a_found_object_is_held():
    """An accessed region of up to DEFAULT.evidence_pieces pages is held, so an aggregation
    in which a sparsely accessed object sees no access does not merge it away."""
    ctx = Context(Attrs(min_nr_regions=3, max_nr_regions=100), rng=np.random.default_rng(2))
    ctx.set_targets([1])
    t = ctx.targets[0]
    t.set_regions([0, 100 * PAGE, 101 * PAGE], [100 * PAGE, 101 * PAGE, 200 * PAGE])
    t.nr_accesses[:] = [0, 4, 0]
    kdamond_merge_regions(ctx, 2, 1000 * PAGE)
    kdamond_reset_aggregated(ctx)
    kdamond_split_regions(ctx)
    page = int(np.searchsorted(t.start, 100 * PAGE))
    assert (t.start[page], t.end[page], t.hold[page]) == (100 * PAGE, 101 * PAGE,
                                                         DEFAULT.hold_aggregations)
    # the next aggregations see no access: it waits, apart, until the hold runs out
    for k in range(DEFAULT.hold_aggregations):
        kdamond_merge_regions(ctx, 2, 1000 * PAGE)
        page = int(np.searchsorted(t.start, 100 * PAGE))
        assert t.end[page] - t.start[page] == PAGE, k
        kdamond_reset_aggregated(ctx)
        kdamond_split_regions(ctx)
    kdamond_merge_regions(ctx, 2, 1000 * PAGE)
    page = int(np.searchsorted(t.start, 100 * PAGE, side="right") - 1)
    assert t.end[page] - t.start[page] > PAGE


def interleaved(nr: int, seconds: float) -> str:
    """`nr` 1 MiB regions, every other one accessed, then the others, then the first again."""
    lines = [f'[[regions]]\nname = "r{i}"\nsize = "1 MiB"\n' for i in range(nr)]
    for name, parity in (("even", 0), ("odd", 1), ("even again", 0)):
        names = ", ".join(f'"r{i}"' for i in range(parity, nr, 2))
        lines.append(f'[[phases]]\nname = "{name}"\nduration_ms = {round(seconds * 1000)}\n'
                     f"access = [{names}]\n")
    return "\n".join(lines)


def last_phase_errors(tmp_path, seed: int, settings) -> np.ndarray:
    """WSS errors of the last phase's snapshots, 100 interleaved regions at 1.6 s aggregations."""
    wl, out, truth = tmp_path / "w.toml", str(tmp_path / "d.data"), str(tmp_path / "t.jsonl")
    wl.write_text(interleaved(100, 10))
    rec = Recording.prepare([str(wl)], "sim", Attrs(sample_interval=80_000,
                                                    aggr_interval=1_600_000),
                            out, seed=seed, truth=truth)
    rec.ctx.adjustment = Narrow(settings)
    rec.run()
    errors = accuracy(out, truth, Attrs()).errors
    # The last phase's snapshots are the last ones: those that began after it did.
    ends = read_snapshots(out).end_ns
    last = int((ends[:-1] >= read_truth(truth)[-1].start_ns).sum())
    return errors[-last:]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_resolved_layout_survives_a_phase_change_at_long_aggregations(tmp_path, seed):
    """The aggregation spanning the change reads old and new hot regions alike
    (each half accessed); merged on that, 100 resolved regions collapse and the
    next phase starts unresolved: 86-100 % error on sim without the rule."""
    errors = last_phase_errors(tmp_path, seed, DEFAULT)
    assert len(errors) >= 4
    assert errors[:3].max() <= 0.10, errors
    without = last_phase_errors(tmp_path, seed, replace(DEFAULT, changed_apart=False))
    assert without[0] > 0.5, without


@pytest.mark.parametrize("seed", range(20))
def test_even_split_cuts_where_its_rule_says(seed):
    """damo/core/_adjust.c's split_evenly on random regions: region i of P pages in k
    pieces is cut at start + floor((j - 1/2 + u) P / k) pages, j = 1..k-1, u the i-th
    phase drawn (1/2 when P / k < 2), each cut worked out here in Python's doubles."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    pages = rng.integers(1, rng.choice([4, 40, 1 << 20]), n)
    gaps = rng.integers(0, 3, n)
    start = (np.cumsum(pages + gaps) - pages) * PAGE
    pieces = np.minimum(rng.integers(1, 20, n), np.where(pages > 2, pages, 1))
    pieces[0] = max(pieces[0], 2) if pages[0] > 2 else pieces[0]
    t = target(list(zip(start.tolist(), (start + pages * PAGE).tolist(), strict=True)), [0] * n)
    got_start, got_end, parent = split_evenly(t, pieces, np.random.default_rng(seed), PAGE)
    phase = np.random.default_rng(seed).random(n).tolist()  # the same draws
    want_start, want_parent = [], []
    for i, (s0, p, k) in enumerate(zip(start.tolist(), pages.tolist(), pieces.tolist(),
                                       strict=True)):
        step = p / k
        u = 0.5 if step < 2 else phase[i]
        cuts = [s0 + math.floor(step * ((j - 0.5) + u)) * PAGE for j in range(1, k)]
        want_start += [s0] + cuts
        want_parent += [i] * k
    assert got_start.tolist() == want_start
    assert parent.tolist() == want_parent
    ends = (start + pages * PAGE).tolist()
    assert got_end.tolist() == [want_start[m + 1] if m + 1 < len(want_start)
                                and want_parent[m + 1] == want_parent[m]
                                else ends[want_parent[m]] for m in range(len(want_start))]
    assert (got_end > got_start).all()
