"""Check JSON output against the field tables of docs/reports.md.

A table row is ``| `path` | type | meaning |`` with paths such as
``ranges[].annotation.parts[].start`` and types ``string``, ``integer``,
``number``, ``boolean``, ``array``, ``object``, each maybe ``or null``.
"""

from pathlib import Path

DOC = Path(__file__).parents[1] / "docs" / "reports.md"
TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def documented_fields(heading: str) -> dict[str, list[str]]:
    """path -> allowed types, from the table under `heading` (up to the next heading)."""
    lines = DOC.read_text().splitlines()
    start = lines.index(heading)
    fields = {}
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            fields[cells[0].strip("`")] = [t.strip() for t in cells[1].split(" or ")]
    assert fields, f"no field table under {heading!r}"
    return fields


def walk(value, path: str = ""):
    """(path, value) of every field and array element of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            yield sub, item
            yield from walk(item, sub)
    elif isinstance(value, list):
        for item in value:
            yield path + "[]", item
            yield from walk(item, path + "[]")


def check(doc: dict, heading: str) -> set[str]:
    """Assert every field of `doc` is documented with its type; the paths seen."""
    fields = documented_fields(heading)
    seen = set()
    for path, value in walk(doc):
        if path.endswith("[]") and isinstance(value, dict):
            continue  # an array of objects: its elements' fields are the rows
        assert path in fields, f"undocumented field {path}"
        assert any(TYPES[t](value) for t in fields[path]), \
            f"{path}: {value!r} is not {' or '.join(fields[path])}"
        seen.add(path)
    return seen
