"""The package's import graph: the core stands alone, and no import runs in a circle.

For the core every import counts, at module level, inside a function or
under TYPE_CHECKING alike: each is an arrow a reader must follow.  For
circles, the imports that run count (module level and inside functions);
a type-only import is how two halves of one contract name each other (the
context and its operations, as the kernel's one header holds both).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "damo"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def type_only_nodes(tree: ast.AST) -> set[ast.AST]:
    """The import statements under `if TYPE_CHECKING:`."""
    nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                nodes.update(ast.walk(stmt))
    return nodes


def imports(path: Path, type_only: bool = True) -> set[str]:
    """The damo modules `path` imports (`from damo.x import y` counts damo.x.y too).

    Absolute imports only: the package uses no relative ones (ruff's TID252 would say).
    """
    tree = ast.parse(path.read_text(), str(path))
    skip = set() if type_only else type_only_nodes(tree)
    found = set()
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: a relative import"
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name == "damo" or name.startswith("damo.")}


def graph(type_only: bool = True) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {i for i in imports(path, type_only) if i in modules and i != name}
            for name, path in modules.items()}


def test_core_imports_only_the_core_and_errors():
    outside = {
        f"{name} imports {target}"
        for name, targets in graph().items() if name.startswith("damo.core")
        for target in targets
        if not (target.startswith("damo.core") or target == "damo.errors")
    }
    assert not outside


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            # a package importing its own submodule is not a cycle a reader follows back
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return groups


def test_no_module_imports_one_that_imports_it_back():
    g = graph(type_only=False)
    # A package's __init__ naming its submodules is how a package is read, not a cycle.
    g = {name: {t for t in targets if not t.startswith(name + ".")} for name, targets in g.items()}
    assert cycles(g) == []


def test_type_only_and_function_imports_are_seen(tmp_path):
    # The checks above would pass on a graph that missed these.
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                    "    from damo.ops import vaddr\n"
                    "def f():\n    import damo.records.reader\n")
    assert imports(path) == {"damo.ops", "damo.ops.vaddr", "damo.records.reader"}
    assert imports(path, type_only=False) == {"damo.records.reader"}
