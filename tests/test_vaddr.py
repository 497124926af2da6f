"""The seed's vaddr-test.h (kunit), case by case, with its expected values (min region 1)."""

import pytest

from damo.core.target import Target
from damo.ops.common import (
    apply_three_regions,
    big_gap,
    evenly_split_region,
    init_regions,
    monitored_ranges,
    three_regions,
)


def test_damon_test_three_regions_in_vmas():
    # 10-20-25, 200-210-220, 300-305, 307-330
    vmas = [(10, 20), (20, 25), (200, 210), (210, 220), (300, 305), (307, 330)]
    assert three_regions(vmas, 1) == [(10, 25), (200, 220), (300, 330)]


REGIONS = [10, 20, 20, 30, 50, 55, 55, 57, 57, 59, 70, 80, 80, 90, 90, 100]


@pytest.mark.parametrize(
    "new_three, expected",
    [
        # 1: the three big regions only slightly changed; 57-59 falls out
        (
            [(5, 27), (45, 55), (73, 104)],
            [5, 20, 20, 27, 45, 55, 73, 80, 80, 90, 90, 104],
        ),
        # 2: the second big region now needs two regions (50-55, 57-59) removed
        (
            [(5, 27), (56, 57), (65, 104)],
            [5, 20, 20, 27, 56, 57, 65, 80, 80, 90, 90, 104],
        ),
        # 3: the second big region freed and mapped elsewhere (50-59 -> 61-63)
        (
            [(5, 27), (61, 63), (65, 104)],
            [5, 20, 20, 27, 61, 63, 65, 80, 80, 90, 90, 104],
        ),
        # 4: the second and third freed and mapped elsewhere (30-32, 65-68)
        (
            [(5, 7), (30, 32), (65, 68)],
            [5, 7, 30, 32, 65, 68],
        ),
        # 5: a gap left out before (30-50) is inside a range now: a region fills it
        (
            [(5, 59), (73, 104)],
            [5, 20, 20, 30, 30, 50, 50, 55, 55, 57, 57, 59, 73, 80, 80, 90, 90, 104],
        ),
    ],
    ids=["apply_three_regions1", "2", "3", "4", "a range over a hole"],
)
def test_damon_test_apply_three_regions(new_three, expected):
    t = Target(42)
    for i in range(0, len(REGIONS), 2):
        t.add_region(REGIONS[i], REGIONS[i + 1])
    apply_three_regions(t, new_three, 1)
    got = [x for r in t.regions() for x in r[:2]]
    assert got == expected


def test_damon_test_split_evenly():
    # no such region (the seed's NULL region)
    assert evenly_split_region(Target(42), 0, 5, 1) is False

    t = Target(42)
    t.add_region(0, 100)
    assert evenly_split_region(t, 0, 0, 1) is False
    assert evenly_split_region(t, 0, 10, 1) is True
    assert t.nr_regions == 10
    assert [r[:2] for r in t.regions()] == [(i * 10, i * 10 + 10) for i in range(10)]

    t = Target(42)
    t.add_region(5, 59)
    assert evenly_split_region(t, 0, 5, 1) is True
    assert t.nr_regions == 5
    assert [r[:2] for r in t.regions()] == [(5, 15), (15, 25), (25, 35), (35, 45), (45, 59)]

    t = Target(42)
    t.add_region(5, 6)
    assert evenly_split_region(t, 0, 2, 1) is False
    assert [r[:2] for r in t.regions()] == [(5, 6)]


# Beyond the kunit cases.


def test_three_regions_needs_two_gaps():
    assert three_regions([(0, 10), (10, 20), (30, 40)], 1) is None
    assert three_regions([(0, 10), (20, 30)], 1) is None


def test_three_regions_equal_gaps_take_the_lower_ones():
    maps = [(0, 10), (20, 30), (40, 50), (60, 70)]
    assert three_regions(maps, 1) == [(0, 10), (20, 30), (40, 70)]


def test_three_regions_aligns_up():
    maps = [(4096, 5000), (1 << 30, (1 << 30) + 100), (1 << 40, (1 << 40) + 10)]
    assert three_regions(maps, 4096) == [
        (4096, 8192),
        (1 << 30, (1 << 30) + 4096),
        (1 << 40, (1 << 40) + 4096),
    ]


def test_big_gaps_are_left_out_too():
    """A program, its heap 600 MiB above it (this kernel randomizes brk by up to
    1 GiB), libraries, the stack: the heap's gap goes too, small gaps stay."""
    mib = 1 << 20
    maps = [(0, 4 * mib), (604 * mib, 612 * mib),  # program, heap
            (1 << 40, (1 << 40) + 40 * mib), ((1 << 40) + 41 * mib, (1 << 40) + 60 * mib),
            (1 << 46, (1 << 46) + mib)]  # stack
    assert big_gap(maps, 10) == (4 + 8 + 40 + 19 + 1) * mib // 10
    assert monitored_ranges(maps, 4096, 10) == [
        (0, 4 * mib), (604 * mib, 612 * mib), (1 << 40, (1 << 40) + 60 * mib),
        (1 << 46, (1 << 46) + mib)]
    # DAMON's three, without a lower bound: the heap's gap is covered
    assert three_regions(maps, 4096)[0] == (0, 612 * mib)
    # a gap just under the bound stays
    assert three_regions(maps, 4096, 601 * mib, 10)[0] == (0, 612 * mib)


def test_big_gaps_left_out_are_the_biggest_up_to_max_ranges():
    # 10,000 pages 1 GiB apart, and one gap of 3 GiB: at most 10 ranges, the biggest
    # gaps first, then the lower ones of equal size
    gib = 1 << 30
    maps = [(k * gib, k * gib + 4096) for k in range(5)] + \
        [((k + 2) * gib, (k + 2) * gib + 4096) for k in range(5, 10_000)]
    ranges = three_regions(maps, 4096, big_gap(maps, 10), 10)
    assert len(ranges) == 10
    # the 3 GiB gap (after the fifth page), then the lowest 1 GiB ones
    assert ranges[:5] == maps[:5]
    assert ranges[5:9] == maps[5:9] and ranges[9] == (11 * gib, maps[-1][1])
    # DAMON's three by default
    assert three_regions(maps, 4096, big_gap(maps, 10)) == three_regions(maps, 4096) == [
        (0, 4096), (gib, 4 * gib + 4096), (7 * gib, maps[-1][1])]


def test_init_regions_splits_to_min_nr_regions():
    t = Target(1)
    init_regions(t, [(0, 1000), (5000, 5100), (9000, 9010)], 10, 1)
    # pieces of 1110 // 10 = 111: 1000 // 111 = 9 pieces, the others too small to split
    assert t.nr_regions == 9 + 1 + 1
    assert t.start[0] == 0 and t.end[8] == 1000
    assert t.region(9)[:2] == (5000, 5100)


def test_apply_keeps_counts_of_kept_regions():
    t = Target(1)
    t.add_region(10, 20, 3)
    t.add_region(20, 30, 4)
    apply_three_regions(t, [(10, 30), (40, 50), (60, 70)], 1)
    assert t.regions() == [(10, 20, 3), (20, 30, 4), (40, 50, 0), (60, 70, 0)]
