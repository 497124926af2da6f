"""Workload files: sizes, the bundled examples, and one clear error per mistake."""

from pathlib import Path

import pytest

from damo.errors import WorkloadError
from damo.workload.load import load, parse
from damo.workload.size import parse_size

EXAMPLES = Path(__file__).parents[1] / "examples" / "workloads"

GOOD = """\
loop = true
[[regions]]
name = "a"
size = "100 MiB"
gap_before = "1 GiB"

[[regions]]
name = "b"
size = 8192

[[phases]]
name = "a hot"
duration_ms = 5000
access = ["a", { region = "b", probability = 0.3 }]

[[phases]]
name = "idle"
duration_ms = 100
access = []
"""


@pytest.mark.parametrize(
    "text, size",
    [
        (4096, 4096),
        ("4096", 4096),
        ("4096 B", 4096),
        ("10 KiB", 10 << 10),
        ("100 MiB", 100 << 20),
        ("100MiB", 100 << 20),
        ("1.5 GiB", 3 << 29),
        ("2 TiB", 2 << 40),
        (0, 0),
    ],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "10 MB", "-1", -1, "1.3 B", True, 1.5, "1 GiB x"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_parse_good():
    w = parse(GOOD, "good.toml")
    assert w.loop is True
    assert [(r.name, r.size, r.gap_before) for r in w.regions] == [
        ("a", 100 << 20, 1 << 30),
        ("b", 8192, 0),
    ]
    assert w.phases[0].access == {"a": 1.0, "b": 0.3}
    assert w.phases[1].access == {}
    assert w.duration_ns == 5_100_000_000


def test_bundled_stairs():
    w = load(str(EXAMPLES / "stairs.toml"))
    assert [r.size for r in w.regions] == [10 << 20] * 10
    assert w.phases[0].duration_ms == 5000 and len(w.phases[0].access) == 10
    assert [p.duration_ms for p in w.phases[1:]] == [2500] * 10
    assert [list(p.access) for p in w.phases[1:]] == [[r.name] for r in w.regions]
    assert not w.loop


def test_bundled_zigzag():
    w = load(str(EXAMPLES / "zigzag.toml"))
    assert [(r.name, r.size) for r in w.regions] == [("a", 100 << 20), ("b", 100 << 20)]
    assert (w.phases[0].duration_ms, set(w.phases[0].access)) == (10000, {"a", "b"})
    assert [list(p.access) for p in w.phases[1:]] == [["a"], ["b"]] * 3
    assert [p.duration_ms for p in w.phases[1:]] == [5000] * 6


def _error(text: str) -> str:
    with pytest.raises(WorkloadError) as err:
        parse(text, "w.toml")
    return str(err.value)


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # unknown keys, with the line they are on
        ('gap_before = "1 GiB"', 'gap_befor = "1 GiB"', "w.toml:5: unknown key 'gap_befor'"),
        ("loop = true", "looop = true", "w.toml:1: unknown key 'looop'"),
        ("duration_ms = 100", "duration_ms = 100\ncolour = 1", "w.toml:19: unknown key 'colour'"),
        ("probability = 0.3", "prob = 0.3", "w.toml:14: unknown key 'prob'"),
        # unknown region names
        (
            'access = ["a",',
            'access = ["c",',
            "w.toml:14: phase 'a hot' accesses unknown region 'c'",
        ),
        # sizes that do not parse
        (
            'size = "100 MiB"',
            'size = "100 MB"',
            "w.toml:4: size of region 'a': '100 MB' has unknown",
        ),
        ('size = "100 MiB"', 'size = "lots"', "w.toml:4: size of region 'a': 'lots' is not"),
        ('size = "100 MiB"', "size = 0", "w.toml:4: region 'a' has size 0"),
        ('gap_before = "1 GiB"', "gap_before = -5", "w.toml:5: gap_before of region 'a'"),
        ('size = "100 MiB"\n', "", "w.toml:2: region 'a' needs a size"),
        # phases that cannot run
        ("duration_ms = 5000", "duration_ms = 0", "w.toml:13: phase 'a hot' needs duration_ms"),
        ("duration_ms = 5000", 'duration_ms = "5s"', "w.toml:13: phase 'a hot' needs duration_ms"),
        ("access = []", "", "w.toml:16: phase 'idle' has no access list"),
        ("probability = 0.3", "probability = 1.5", "must be in [0, 1], not 1.5"),
        ('access = ["a",', 'access = ["a", "a",', "lists region 'a' twice"),
        ('access = ["a",', "access = [3,", "is neither a region name"),
        ('name = "b"', 'name = "a"', "w.toml:8: region name 'a' is used twice"),
        ("loop = true", "loop = 1", "w.toml:1: loop must be true or false"),
        # TOML syntax, with tomllib's line
        ("duration_ms = 100", "duration_ms = = 100", "w.toml:18: "),
    ],
)
def test_errors_name_file_line_and_problem(old, new, expected):
    assert old in GOOD
    assert expected in _error(GOOD.replace(old, new, 1))


def test_empty_phases_and_regions():
    no_phases = GOOD[: GOOD.index("[[phases]]")]
    assert "w.toml: no [[phases]]" in _error(no_phases)
    assert "no [[regions]]" in _error("phases = []\n")
    assert "w.toml:1: no [[phases]]" in _error("phases = []\n" + no_phases)


def test_load_missing_file(tmp_path):
    with pytest.raises(WorkloadError, match="cannot read workload .*nope.toml"):
        load(str(tmp_path / "nope.toml"))


def test_load_binary_file(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(WorkloadError, match="not a text"):
        load(str(path))
