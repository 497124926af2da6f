"""Region age: the kernel's rule by hand-computed cases, in the engine on `sim`, in the sidecar.

The rule (mm/damon/core.c, damon_merge_regions_of and damon_split_region_at,
read from the kernel sources): before each merge a region's age goes to 0
when its nr_accesses moved by more than the merge threshold since the last
aggregation, or between zero and non-zero, else grows by 1; merged regions
take the size-weighted age (integer division), split pieces keep their
region's age and last count; the reset stores the merged counts as the last.
damo rounds a merged age down once, where the kernel rounds at each pairwise
merge (damo.core.age says why).
"""

import numpy as np
import pytest

from damo.core import adjust, kdamond, narrow
from damo.core.age import changed, next_ages
from damo.core.target import Target
from damo.ops.common import apply_three_regions
from damo.ops.kernel import SnapshotAssembler
from damo.records import ages as record_ages
from tests.test_kernel_source import KDAMOND, events


def target(regions, ages=None, last=None):
    t = Target(1)
    for s, e, nr in regions:
        t.add_region(s, e, nr)
    if ages is not None:
        t.age = np.array(ages, dtype=np.int64)
    if last is not None:
        t.last_nr_accesses = np.array(last, dtype=np.int64)
    return t


def test_age_grows_while_alike_and_resets_on_change():
    # threshold 2: 5 vs 4 is alike (+1); 10 vs 2 moved by 8 (reset); 0 vs 0 alike.
    ages = next_ages(np.array([3, 3, 3]), np.array([5, 10, 0]), np.array([4, 2, 0]), 2)
    assert ages.tolist() == [4, 0, 4]


def test_age_resets_between_zero_and_nonzero_even_within_threshold():
    # a region going idle (1 -> 0) or waking up (0 -> 1) starts a new age, threshold 5
    assert changed(np.array([0, 1, 3]), np.array([1, 0, 2]), 5).tolist() == [True, True, False]


@pytest.mark.parametrize("merge", [adjust.merge_regions_of, narrow.narrow_merge_regions_of])
def test_merge_takes_size_weighted_age(merge):
    t = target([(0, 10, 5), (10, 40, 5), (40, 50, 90)], ages=[4, 8, 2])
    merge(t, 1, 1000)
    assert t.regions() == [(0, 40, 5), (40, 50, 90)]
    assert t.age.tolist() == [(4 * 10 + 8 * 30 + 20) // 40, 2]


def test_merge_of_many_rounds_to_the_nearest_once_not_down_at_each_merge():
    t = target([(0, 3, 1), (3, 4, 1), (4, 7, 1)], ages=[1, 2, 6])
    adjust.merge_regions_of(t, 0, 100)
    assert t.age.tolist() == [3]  # 23 / 7 = 3.3; the kernel's steps give 2
    # an idle region's 37 small pieces aged 3 merged into a piece aged 0 (23 long):
    # the kernel's pairwise rounding would leave 0, the weighted age is 2.7
    t = target([(0, 23, 0)] + [(23 + 6 * k, 29 + 6 * k, 0) for k in range(37)],
               ages=[0] + [3] * 37)
    narrow.narrow_merge_regions_of(t, 2, 10**6)
    assert t.age.tolist() == [3]
    # a region aged 10 that took a sliver of a younger neighbour stays 10 (9.9), where
    # rounding down made it 9: repeated at every aggregation, ages fell behind the truth
    t = target([(0, 99, 0), (99, 100, 0)], ages=[10, 0])
    adjust.merge_regions_of(t, 0, 1000)
    assert t.age.tolist() == [10]
    t = target([(0, 10, 0), (10, 20, 0)], ages=[3, 4])
    adjust.merge_regions_of(t, 0, 1000)
    assert t.age.tolist() == [4]  # 3.5, half up
    t = target([(0, 10, 0), (10, 40, 0)], ages=[3, 4])
    adjust.merge_regions_of(t, 0, 1000)
    assert t.age.tolist() == [4]  # 3.75


def test_split_pieces_keep_age_and_last_count():
    t = target([(0, 1000, 0), (1000, 3000, 0)], ages=[7, 2], last=[4, 9])
    adjust.split_regions_of(t, 3, np.random.default_rng(1), 1)
    assert t.nr_regions > 2
    parent = (t.start >= 1000).astype(int)
    assert t.age.tolist() == [[7, 2][p] for p in parent]
    assert t.last_nr_accesses.tolist() == [[4, 9][p] for p in parent]
    t = target([(0, 100, 0)], ages=[5], last=[3])
    adjust.split_region_at(t, 0, 30)
    assert t.regions() == [(0, 30, 0), (30, 100, 0)]
    assert t.age.tolist() == [5, 5] and t.last_nr_accesses.tolist() == [3, 3]


def test_regions_update_keeps_ages_of_resized_regions_new_ones_start_at_zero():
    t = target([(0x1000, 0x3000, 0), (0x3000, 0x5000, 0), (0x9000, 0xA000, 0)], ages=[4, 5, 6])
    apply_three_regions(t, [(0x2000, 0x5000), (0x7000, 0x8000), (0x9000, 0xB000)], 0x1000)
    assert [(r.start, r.end) for r in t.regions()] == [
        (0x2000, 0x3000), (0x3000, 0x5000), (0x7000, 0x8000), (0x9000, 0xB000)]
    assert t.age.tolist() == [4, 5, 0, 6]


def kernel_merge(regions, thres, sz_limit):
    """The kernel's damon_merge_regions_of, transcribed region by region: [start, end, nr,
    last, age] lists in, merged lists out (ages rounded once per merged region, to the
    nearest, as damo.core.age says why)."""
    out = []
    for r in [list(x) for x in regions]:
        s, e, nr, last, age = r
        r[4] = 0 if abs(nr - last) > thres or ((nr == 0) != (last == 0)) else age + 1
        r.append(r[4] * (e - s))  # the weighted age, divided once per merged region
        if out and out[-1][1] == s and abs(out[-1][2] - nr) <= thres and \
                (out[-1][1] - out[-1][0]) + (e - s) <= sz_limit:
            p = out[-1]
            sz_l, sz_r = p[1] - p[0], e - s
            p[2] = (p[2] * sz_l + nr * sz_r) // (sz_l + sz_r)
            p[5] += r[5]
            p[1] = e
        else:
            out.append(r)
    for p in out:
        p[4] = (p[5] + (p[1] - p[0]) // 2) // (p[1] - p[0])
    return out


def test_engine_ages_follow_the_kernels_rule_on_sim(monkeypatch):
    """Every aggregation of a sim run (seed adjustment: the kernel's merge): the ages after
    the merge are what the transcribed kernel merge gives from the state before it, and
    every region starts the next aggregation with the age and last count of the region
    it was split from."""
    from damo.core.attrs import Attrs
    from damo.core.clock import VirtualClock
    from damo.core.context import Callbacks, Context
    from damo.ops.sim import SIM_TARGET_ID, SimOperations
    from damo.workload.load import parse
    from tests.conftest import REPO

    before, checked, inherited = {}, [], []
    real_merge = kdamond.kdamond_merge_regions

    def merge(ctx, thres, sz_limit):
        t = ctx.targets[0]
        before["regions"] = [
            [s, e, n, la, a] for s, e, n, la, a in zip(
                t.start.tolist(), t.end.tolist(), t.nr_accesses.tolist(),
                t.last_nr_accesses.tolist(), before["age"], strict=True)]
        before["want"] = kernel_merge(before["regions"], thres, sz_limit)
        real_merge(ctx, thres, sz_limit)

    def age_regions(ctx, thres):
        t = ctx.targets[0]
        prev = before.get("after")
        if prev is not None:  # pieces of last aggregation's regions, none resized since
            for s, e, la, a in zip(t.start.tolist(), t.end.tolist(), t.last_nr_accesses.tolist(),
                                   t.age.tolist(), strict=True):
                owner = [p for p in prev if p[0] <= s and e <= p[1]]
                if owner:  # every region but those an update resized
                    assert (la, a) == (owner[0][2], owner[0][3])
                    inherited.append(a)
        before["age"] = t.age.tolist()
        real_age(ctx, thres)

    def after_aggregation(ctx):
        t = ctx.targets[0]
        got = [[s, e, n, a] for s, e, n, a in zip(t.start.tolist(), t.end.tolist(),
                                                   t.nr_accesses.tolist(), t.age.tolist(),
                                                   strict=True)]
        assert got == [[r[0], r[1], r[2], r[4]] for r in before["want"]]
        before["after"] = got
        checked.append(max(a for *_, a in got))

    real_age = kdamond.age_regions
    monkeypatch.setattr(kdamond, "kdamond_merge_regions", merge)
    monkeypatch.setattr(kdamond, "age_regions", age_regions)
    zigzag = REPO / "examples" / "workloads" / "zigzag.toml"
    ops = SimOperations(parse(zigzag.read_text(), str(zigzag)))
    ctx = Context(Attrs(), ops, Callbacks(after_aggregation=after_aggregation),
                  np.random.default_rng(4), VirtualClock(), adjust="seed")
    ctx.set_targets([SIM_TARGET_ID])
    kdamond.kdamond_fn(ctx)
    assert len(checked) >= 390
    assert max(checked) >= 40  # ages did grow over the 5 s phases
    assert len(inherited) >= 390 * 10 and max(inherited) >= 40  # the pieces were checked


def b_idle_bytes(ages, snaps, b, aggr_ns=100_000_000):
    """(idle ns, bytes) of each region of the last snapshot inside region b."""
    lo, hi = snaps.offsets[-2], snaps.offsets[-1]
    start, end = snaps.start[lo:hi].astype(np.int64), snaps.end[lo:hi].astype(np.int64)
    inside = (start >= b.start) & (end <= b.end) & (snaps.nr_accesses[lo:hi] == 0)
    return (ages[lo:hi][inside] + 1) * aggr_ns, (end - start)[inside]


def test_idle_region_age_is_its_idle_time_on_sim(tmp_path):
    """A region untouched for the last 10 s of a sim run: its bytes show 10 s of idle time
    (age + the aggregation it was seen idle in), the median within one aggregation, and
    at least 95 % of them, on each of 12 seeds.

    The region that straddled the hot and the idle region when the phase changed is
    younger (its pieces read 0 an aggregation or two later); when ages were rounded down
    at each merge, every region of the idle one that took a sliver of that younger
    neighbour lost a whole aggregation, again at every aggregation as the boundaries
    moved: seeds 1, 2 and 11 had the median 1-2 aggregations short and 39-59 % of the
    bytes within one.  Rounded to the nearest (damo.core.age), all 12 seeds have every
    byte within one aggregation, by the engine's ages and by ages derived from the
    record alike."""
    from damo.core.attrs import Attrs
    from damo.recording import Recording
    from damo.records.reader import read_snapshots
    from damo.workload.truth import read_truth

    wl = tmp_path / "idle.toml"
    wl.write_text('[[regions]]\nname = "a"\nsize = "8 MiB"\n[[regions]]\nname = "b"\n'
                  'size = "8 MiB"\n[[phases]]\nname = "both"\nduration_ms = 3000\n'
                  'access = ["a", "b"]\n[[phases]]\nname = "a"\nduration_ms = 10000\n'
                  'access = ["a"]\n')
    out = str(tmp_path / "r.data")
    for seed in range(1, 13):
        Recording.prepare([str(wl)], "sim", Attrs(), out, seed=seed,
                          truth=str(tmp_path / "t.jsonl")).run()
        runs = read_truth(str(tmp_path / "t.jsonl"))
        b = next(r for r in runs[-1].regions if r.name == "b")
        idle_truth = runs[-1].end_ns - runs[-1].start_ns
        snaps = read_snapshots(out)
        for source in (out, None):  # the sidecar's ages, then ages derived from the record
            ages = record_ages.RecordAges(source)
            idle, size = b_idle_bytes(ages.for_chunk(snaps), snaps, b)
            assert (ages.from_sidecar if source else ages.derived) == len(snaps)
            assert size.sum() >= 0.9 * (b.end - b.start)
            order = np.argsort(idle)
            median = idle[order][np.searchsorted(np.cumsum(size[order]), size.sum() / 2)]
            assert abs(median - idle_truth) <= 100_000_000, (seed, source, median)
            close = size[np.abs(idle - idle_truth) <= 100_000_000].sum()
            assert close >= 0.95 * size.sum(), (seed, source, idle.tolist())


def test_sidecar_ages_round_trip_in_the_smallest_width():
    for top, width in ((255, 1), (256, 2), (65536, 4), (1 << 40, 4)):
        fields = record_ages.encode([np.array([0, 3]), np.array([top])])
        assert fields["width"] == width and fields["nr"] == 3
        back = record_ages.decode({"type": "ages", "time_ns": 1, **fields})
        assert back.tolist() == [0, 3, min(top, record_ages.AGE_MAX)]
    assert record_ages.decode({"nr": 2, "width": 1, "ages": b"\0"}) is None


def test_derived_ages_by_hand():
    last = record_ages._Last(np.array([0, 100]), np.array([100, 200]), np.array([0, 10]),
                             np.array([5, 7]))
    # one snapshot: [0, 50) still idle (continues age 5), [50, 150) half idle half hot
    # while now idle (the hot half's count changed: 0), [150, 200) hot alike (7 + 1).
    start, end, nr = np.array([0, 50, 150]), np.array([50, 150, 200]), np.array([0, 0, 10])
    got, new_last = record_ages.derive(start, end, nr, np.zeros(3, dtype=np.int64), 1,
                                       [None], last)
    assert got.tolist() == [6, (6 * 50 + 0 * 50) // 100, 8]
    assert new_last.age.tolist() == got.tolist()
    # the first snapshot of a target: idle regions 1 (the kernel's first aggregation), else 0
    got, _ = record_ages.derive(start, end, nr, np.zeros(3, dtype=np.int64), 1, [None], None)
    assert got.tolist() == [1, 1, 0]


def test_derived_ages_follow_the_kernel_rule_on_fixed_regions():
    """Over 40 snapshots of the same regions (no merge or split between them) the
    derived ages are the kernel's rule itself, worked out here region by region: +1
    while a count stays alike (within a tenth of the snapshot's highest, both zero or
    both not), else 0; a snapshot with sidecar ages takes them, the next go on from them."""
    rng = np.random.default_rng(3)
    cuts = np.unique(rng.integers(1, 999, 30)) * 4096
    s = np.concatenate(([0], cuts))
    e = np.concatenate((cuts, [1000 * 4096]))
    # Highest 20: a threshold of 2, and counts 2 and 3 apart either side of it.
    nrs = [rng.choice([0, 0, 1, 3, 5, 8, 20], len(s)) for _ in range(40)]
    for k in range(1, 40):  # long runs of the same count, so ages grow
        keep = rng.random(len(s)) < 0.8
        nrs[k] = np.where(keep, nrs[k - 1], nrs[k])
    known = [None] * 40
    known[7] = np.arange(len(s))
    got, last = record_ages.derive(np.tile(s, 40), np.tile(e, 40), np.concatenate(nrs),
                                   np.repeat(np.arange(40), len(s)), 40, known, None)
    want, age, prev = [], [0] * len(s), [0] * len(s)  # before the first: idle, age 0
    for k in range(40):
        thres = int(max(nrs[k])) // 10
        cur = [int(x) for x in nrs[k]]
        if known[k] is not None:
            age = [int(a) for a in known[k]]
        else:
            age = [a + 1 if abs(c - p) <= thres and (c == 0) == (p == 0) else 0
                   for a, c, p in zip(age, cur, prev, strict=True)]
        want += age
        prev = cur
    assert got.tolist() == want
    assert last.age.tolist() == age and max(want) > 10


def test_kernel_events_age_goes_to_the_record():
    asm = SnapshotAssembler({KDAMOND: 1})
    ev = events([(1, [(0x1000, 0x2000, 0), (0x2000, 0x3000, 4)])] * 2)
    ev["age"] = [12, 3, 13, 0]
    asm.has_age = True
    records = asm.feed(ev)
    assert [r[1][0].age.tolist() for r in records] == [[12, 3], [13, 0]]
    asm = SnapshotAssembler({KDAMOND: 1})  # a kernel whose event has no age
    assert all(r[1][0].age is None for r in asm.feed(ev))
