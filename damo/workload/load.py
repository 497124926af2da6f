"""Reading and checking a workload file.

Every problem becomes one `WorkloadError` naming the file, the line when it
can be found, and what is wrong, before anything runs.
"""

import re
import tomllib

from damo.errors import WorkloadError
from damo.workload.model import Phase, RegionSpec, Workload
from damo.workload.size import parse_size

TOP_KEYS = {"loop", "regions", "phases"}
REGION_KEYS = {"name", "size", "gap_before"}
PHASE_KEYS = {"name", "duration_ms", "access"}
ACCESS_KEYS = {"region", "probability"}


class _Locator:
    """Finds the line of a key in the source, for messages (tomllib keeps no positions)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line(self, table: str | None, index: int = 0, key: str | None = None) -> int | None:
        header = re.compile(r"\s*\[\[\s*" + re.escape(table) + r"\s*\]\]") if table else None
        key_re = re.compile(r"\s*[\"']?" + re.escape(key) + r"[\"']?\s*=") if key else None
        seen, inside = -1, table is None
        for number, line in enumerate(self.lines, 1):
            if re.match(r"\s*\[", line):
                if header and header.match(line):
                    seen += 1
                    inside = seen == index
                    if inside and key is None:
                        return number
                    continue
                if inside and (table is None or seen == index):
                    # another table starts: the key is not in ours
                    if table is None:
                        return None
                    inside = False
                continue
            if inside and key_re and key_re.match(line):
                return number
        return None


class _Checker:
    def __init__(self, path: str, text: str):
        self.path = path
        self.where = _Locator(text)

    def fail(self, message: str, table: str | None = None, index: int = 0, key: str | None = None):
        line = self.where.line(table, index, key)
        place = f"{self.path}:{line}" if line else self.path
        raise WorkloadError(f"{place}: {message}")

    def check_keys(self, data: dict, allowed: set[str], what: str, table: str | None, index: int):
        for key in data:
            if key not in allowed:
                self.fail(
                    f"unknown key {key!r} in {what} (known: {', '.join(sorted(allowed))})",
                    table,
                    index,
                    key,
                )

    def tables(self, doc: dict, name: str) -> list[dict]:
        value = doc.get(name)
        if value is None:
            self.fail(f"no [[{name}]]: a workload needs at least one")
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(f"{name} must be written as [[{name}]] tables", None, 0, name)
        if not value:
            self.fail(f"no [[{name}]]: a workload needs at least one", None, 0, name)
        return value

    def name(self, data: dict, table: str, i: int) -> str:
        """The `name` of entry `i` of `table`, which must be a non-empty string."""
        name = data.get("name")
        if not isinstance(name, str) or not name:
            self.fail(f"{table}[{i}] needs a name (a non-empty string)", table, i, "name")
        return name

    def region(self, i: int, data: dict, names: set[str]) -> RegionSpec:
        self.check_keys(data, REGION_KEYS, f"regions[{i}]", "regions", i)
        name = self.name(data, "regions", i)
        if name in names:
            self.fail(f"region name {name!r} is used twice", "regions", i, "name")
        if "size" not in data:
            self.fail(f"region {name!r} needs a size", "regions", i)
        sizes = {}
        for key in ("size", "gap_before"):
            try:
                sizes[key] = parse_size(data.get(key, 0))
            except ValueError as err:
                self.fail(f"{key} of region {name!r}: {err}", "regions", i, key)
        if sizes["size"] == 0:
            self.fail(f"region {name!r} has size 0", "regions", i, "size")
        return RegionSpec(name, sizes["size"], sizes["gap_before"])

    def phase(self, i: int, data: dict, regions: set[str]) -> Phase:
        self.check_keys(data, PHASE_KEYS, f"phases[{i}]", "phases", i)
        name = self.name(data, "phases", i)
        duration = data.get("duration_ms")
        if isinstance(duration, float) and duration.is_integer():
            duration = int(duration)
        if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
            self.fail(
                f"phase {name!r} needs duration_ms, a positive whole number of milliseconds",
                "phases",
                i,
                "duration_ms" if "duration_ms" in data else None,
            )
        if "access" not in data:
            self.fail(
                f"phase {name!r} has no access list (write access = [] for an idle phase)",
                "phases",
                i,
            )
        items = data["access"]
        if not isinstance(items, list):
            self.fail(f"access of phase {name!r} must be a list", "phases", i, "access")
        access: dict[str, float] = {}
        for item in items:
            if isinstance(item, str):
                region, probability = item, 1.0
            elif isinstance(item, dict):
                for key in item:
                    if key not in ACCESS_KEYS:
                        self.fail(
                            f"unknown key {key!r} in an access of phase {name!r} "
                            f"(known: {', '.join(sorted(ACCESS_KEYS))})",
                            "phases",
                            i,
                            "access",
                        )
                region, probability = item.get("region"), item.get("probability", 1.0)
            else:
                self.fail(
                    f"access of phase {name!r}: {item!r} is neither a region name "
                    "nor { region = ..., probability = ... }",
                    "phases",
                    i,
                    "access",
                )
            if region not in regions:
                self.fail(
                    f"phase {name!r} accesses unknown region {region!r}", "phases", i, "access"
                )
            if region in access:
                self.fail(f"phase {name!r} lists region {region!r} twice", "phases", i, "access")
            if (
                isinstance(probability, bool)
                or not isinstance(probability, int | float)
                or not 0 <= probability <= 1
            ):
                self.fail(
                    f"probability of region {region!r} in phase {name!r} must be in [0, 1], "
                    f"not {probability!r}",
                    "phases",
                    i,
                    "access",
                )
            access[region] = float(probability)
        return Phase(name, duration, access)


def parse(text: str, path: str = "<workload>") -> Workload:
    """Check the TOML `text` (read from `path`, for messages) and build the workload."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message)
        if match:
            raise WorkloadError(f"{path}:{match[2]}: {match[1]} (column {match[3]})") from None
        raise WorkloadError(f"{path}: {message}") from None
    check = _Checker(path, text)
    check.check_keys(doc, TOP_KEYS, "the workload", None, 0)
    loop = doc.get("loop", False)
    if not isinstance(loop, bool):
        check.fail("loop must be true or false", None, 0, "loop")
    regions: list[RegionSpec] = []
    for i, data in enumerate(check.tables(doc, "regions")):
        regions.append(check.region(i, data, {r.name for r in regions}))
    names = {r.name for r in regions}
    phases = tuple(
        check.phase(i, data, names) for i, data in enumerate(check.tables(doc, "phases"))
    )
    return Workload(tuple(regions), phases, loop, path)


def load(path: str) -> Workload:
    """Read and check the workload file at `path`."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except OSError as err:
        raise WorkloadError(f"cannot read workload {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise WorkloadError(f"{path}: not a text (UTF-8) file") from None
    return parse(text, path)
