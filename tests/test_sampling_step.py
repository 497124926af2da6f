"""The address draw of the sampling step (sim; the BPF draw is in test_sample_program.py)."""

import numpy as np

from damo.ops.common import draw_sampling_addrs

PAGE = 4096


class _TopRng:
    """A generator whose every draw is the largest double below 1."""

    def random(self, n: int) -> np.ndarray:
        return np.full(n, 1 - 2**-53)


def test_draw_stays_inside_each_region_at_the_top_of_the_draw():
    sizes = [1, 3, PAGE - 1, PAGE, 3 * 2**45 + 7, 2**47 - PAGE, 2**47 - 1]
    start = np.arange(len(sizes), dtype=np.int64) * 2**48
    end = start + np.array(sizes, dtype=np.int64)
    addrs = draw_sampling_addrs(_TopRng(), start, end)
    assert (addrs >= start).all() and (addrs < end).all()
    assert (addrs == end - 1)[:2].all()  # small regions: the top draw is the last byte


def test_draw_is_uniform_over_the_pages_of_a_region():
    rng = np.random.default_rng(7)
    n, pages = 100_000, 10
    start = np.full(n, 1 << 40, dtype=np.int64)
    addrs = draw_sampling_addrs(rng, start, start + pages * PAGE)
    counts = np.bincount((addrs - start) // PAGE, minlength=pages)
    assert len(counts) == pages
    # chi-squared, 9 degrees of freedom: 27.9 is the 0.1 % tail
    expected = n / pages
    assert ((counts - expected) ** 2 / expected).sum() < 27.9


def test_draw_is_one_address_per_region_and_follows_each_region():
    rng = np.random.default_rng(3)
    start = np.array([0, 10 * PAGE, 1 << 30], dtype=np.int64)
    end = np.array([PAGE, 12 * PAGE, (1 << 30) + 5 * PAGE], dtype=np.int64)
    for _ in range(200):
        addrs = draw_sampling_addrs(rng, start, end)
        assert addrs.dtype == np.int64 and len(addrs) == 3
        assert (addrs >= start).all() and (addrs < end).all()
