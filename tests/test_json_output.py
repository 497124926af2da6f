"""Every --json output against the schema of docs/reports.md ("JSON output").

The schema is read from the document itself, so the two cannot drift apart;
a small checker below implements the part of JSON Schema it uses (type,
const, enum, required, properties, additionalProperties, items, minimum,
oneOf, $ref).
"""

import json
import re

import numpy as np
import pytest
from conftest import REPO, run_damo

from damo.records.writer import RecordWriter, TargetRegions


def documented_schema() -> dict:
    text = (REPO / "docs" / "reports.md").read_text()
    section = text[text.index("## JSON output"):]
    return json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))


SCHEMA = documented_schema()
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def problems(value, schema, path="$") -> list[str]:
    """Where `value` breaks `schema` (empty when it conforms)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return problems(value, SCHEMA["$defs"][name], path)
    if "oneOf" in schema:
        fits = [s for s in schema["oneOf"] if not problems(value, s, path)]
        return [] if len(fits) == 1 else [f"{path}: fits {len(fits)} of oneOf, not 1"]
    found = []
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in {schema['enum']}")
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, k) for k in kinds):
            return found + [f"{path}: {value!r} is not {kinds}"]
    if "minimum" in schema and isinstance(value, int | float) and not isinstance(value, bool):
        if value < schema["minimum"]:
            found.append(f"{path}: {value} < {schema['minimum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{path}: no {key!r}")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                found += problems(item, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{path}: unexpected {key!r}")
    if isinstance(value, list) and "items" in schema:
        for k, item in enumerate(value):
            found += problems(item, schema["items"], f"{path}[{k}]")
    return found


def _is(value, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, TYPES[kind])


def test_the_checker_rejects_what_breaks_the_schema():
    good = {"report": "wss", "version": 1, "sort": "size", "targets": [
        {"target_id": 1, "nr_values": 2, "average": 3,
         "percentiles": [{"percentile": 0, "value": 4}]}]}
    assert problems(good, SCHEMA) == []
    assert problems({**good, "version": 2}, SCHEMA)
    assert problems({**good, "extra": 1}, SCHEMA)
    bad_value = json.loads(json.dumps(good))
    bad_value["targets"][0]["percentiles"][0]["value"] = "4"
    assert problems(bad_value, SCHEMA)
    del bad_value["targets"][0]["average"]
    assert problems(bad_value, SCHEMA)


@pytest.fixture
def two_targets(tmp_path):
    path = tmp_path / "damon.data"
    with RecordWriter(str(path)) as w:
        for k in range(30):
            w.write(10**9 + k * 100_000_000, [
                TargetRegions(tid, np.array([0x1000, 0x8000], dtype=np.uint64),
                              np.array([0x3000, 0x9000], dtype=np.uint64),
                              np.array([k % 7, 3], dtype=np.uint32))
                for tid in (3, 4)])
    return path


REPORT = {"wss_time": "wss", "validate_bad": "validate"}
COMMANDS = {
    "raw": ["report", "raw", "--json"],
    "wss": ["report", "wss", "--json", "-r", "0", "101", "10"],
    "wss_time": ["report", "wss", "--json", "--sortby", "time", "--work_time", "300000"],
    "nr_regions": ["report", "nr_regions", "--json"],
    "heats_guide": ["report", "heats", "--guide", "--json"],
    "hot": ["report", "hot", "--json"],
    "validate": ["validate", "--json"],
    "validate_bad": ["validate", "--json", "--aggr", "50000"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_output_follows_the_schema(two_targets, name):
    proc = run_damo(*COMMANDS[name], "-i", str(two_targets))
    assert proc.returncode == (1 if name == "validate_bad" else 0), proc.stderr
    doc = json.loads(proc.stdout)
    assert problems(doc, SCHEMA) == []
    assert doc["version"] == 1
    assert doc["report"] == REPORT.get(name, name)


@pytest.mark.parametrize("name", ["raw", "wss", "nr_regions", "heats_guide", "hot", "validate"])
def test_conformance_outputs_follow_the_schema(conformance_dir, name):
    proc = run_damo(*COMMANDS[name], cwd=conformance_dir)
    assert proc.returncode == 0, proc.stderr
    assert problems(json.loads(proc.stdout), SCHEMA) == []


def test_json_numbers_match_the_text_reports(two_targets):
    wss = json.loads(run_damo("report", "wss", "--json", "-i", str(two_targets)).stdout)
    text = run_damo("report", "wss", "-i", str(two_targets)).stdout.decode().splitlines()
    rows = [line.split("\t") for line in text if not line.startswith("#")]
    got = [(p["percentile"], p["value"]) for t in wss["targets"] for p in t["percentiles"]]
    assert got == [(int(p), int(v)) for p, v in rows]
    guide = json.loads(run_damo("report", "heats", "--guide", "--json", "-i",
                                str(two_targets)).stdout)
    target = guide["targets"][0]
    assert [(a["start"], a["end"]) for a in target["areas"]] == [(0x1000, 0x3000),
                                                                  (0x8000, 0x9000)]
    assert target["areas"][1]["accesses"] == 30 * 3 * 0x1000
    assert target["areas"][0]["accesses"] == sum(k % 7 for k in range(30)) * 0x2000
    assert (target["start_ns"], target["end_ns"], target["nr_snapshots"]) == (
        10**9, 10**9 + 29 * 100_000_000, 30)


def test_heats_json_needs_guide(two_targets):
    proc = run_damo("report", "heats", "--json", "-i", str(two_targets))
    assert proc.returncode == 2
    assert b"--json goes with --guide" in proc.stderr
