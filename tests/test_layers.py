"""The packages of simulator/ depend one way: no package-level import cycle.

Issue 13 (item 5) orders the layers: plain data at the bottom, the knowledge loaders (profiles,
catalogue, YAML reading) above it, then target, driver, capture and logs, verify, infer and
generate, commands on top. A cycle between two packages means one of them reaches up; this walks
every import statement in the source (function-local and TYPE_CHECKING ones too: they are
dependencies all the same) and fails naming the imports that close each cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "simulator"


def _units() -> set[str]:
    """simulator's sub-packages and top-level modules: the nodes of the graph."""
    return ({p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
            | {p.stem for p in PACKAGE.glob("*.py")})


def _unit_of(name: str, units: set[str]) -> str | None:
    """The unit an imported dotted name belongs to (None: not ours; "__init__": the package itself)."""
    parts = name.split(".")
    if parts[0] != "simulator":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in units else "__init__"


def import_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> where ("file:line"), for every import between two units."""
    units = _units()
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from simulator import x` imports the unit x; `from simulator.x import y`, x.
                names = ([f"simulator.{alias.name}" for alias in node.names] if node.module == "simulator"
                         else [node.module])
            else:
                continue
            for name in names:
                target = _unit_of(name, units)
                if target is not None and target != source:
                    graph.setdefault(source, {}).setdefault(target, []).append(
                        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        on_stack.add(unit)
        for nxt in graph.get(unit, {}):
            if nxt not in index:
                visit(nxt)
                low[unit] = min(low[unit], low[nxt])
            elif nxt in on_stack:
                low[unit] = min(low[unit], index[nxt])
        if low[unit] == index[unit]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == unit:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for unit in sorted(set(graph) | {t for targets in graph.values() for t in targets}):
        if unit not in index:
            visit(unit)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b": ["a.py:1"]}, "b": {"c": ["b.py:1"]}, "c": {"a": ["c.py:1"]}, "d": {"a": ["d.py:1"]}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": ["a.py:1"]}, "b": {}}) == []


def test_the_graph_sees_function_local_imports() -> None:
    # scenario/loader.py checks profile overrides through a function-local import of the profiles.
    assert "profiles" in import_graph()["scenario"]


def test_no_package_level_import_cycle() -> None:
    graph = import_graph()
    problems = []
    for component in cycles(graph):
        edges = [f"  {a} -> {b}: {', '.join(graph[a][b][:3])}"
                 for a in component for b in component if b in graph.get(a, {})]
        problems.append(" <-> ".join(component) + "\n" + "\n".join(edges))
    assert not problems, "import cycles between packages of simulator/:\n" + "\n".join(problems)


# Issue 13 (item 5): a function-local import is kept only for start-up cost (or, where no module
# order can break it, an import cycle; or an optional extra that may be absent), and says so.
LOCAL_IMPORT_REASONS = ("start-up", "cycle", "optional extra")


def unexplained_local_imports(source: str, name: str) -> list[str]:
    """"name:line" of each import inside a function with no reason comment: on its own line, or
    on a comment line just above it or above the run of imports (blank lines between the
    third-party and first-party groups included) that it belongs to."""
    lines = source.splitlines()
    found: list[str] = []

    def explained(lineno: int) -> bool:
        i = lineno - 1
        if "#" in lines[i] and any(word in lines[i].split("#", 1)[1] for word in LOCAL_IMPORT_REASONS):
            return True
        i -= 1
        while i >= 0:
            text = lines[i].strip()
            if text.startswith("#"):
                if any(word in text for word in LOCAL_IMPORT_REASONS):
                    return True
            elif text and not text.startswith(("import ", "from ")):
                return False
            i -= 1
        return False

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(child, True)
            elif isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                if not explained(child.lineno):
                    found.append(f"{name}:{child.lineno}")
            else:
                walk(child, in_function)

    walk(ast.parse(source, name), False)
    return found


def test_the_reason_check_flags_a_bare_local_import() -> None:
    source = ("import os\n\n\ndef f():\n    x = 1\n    import json\n\n    return json, x, os\n\n\n"
              "def g():\n    # imported here: start-up cost of `sshsim parse` (rich)\n    import rich\n"
              "    from rich.text import Text\n\n    from simulator import limits\n    return rich, Text, limits\n")
    assert unexplained_local_imports(source, "m.py") == ["m.py:6"]


def test_every_function_local_import_says_why() -> None:
    missing = [where for path in sorted(PACKAGE.rglob("*.py"))
               for where in unexplained_local_imports(path.read_text(), str(path.relative_to(PACKAGE.parent)))]
    assert not missing, ("function-local imports without a reason comment (move them to the top of the "
                         f"module, or say {' / '.join(LOCAL_IMPORT_REASONS)} on or above the line): {missing}")
