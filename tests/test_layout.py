"""The shape of the code base: which package may import which, and how big a module may grow.

The pipeline's stages hand typed values forward, so an earlier stage never imports a later one;
``homecare`` wires everything into processes, so nothing but an entry point imports it (a stage
that read the settings would depend on every other stage's options). Cycles between top-level
packages make both rules meaningless, and a module past 500 lines usually holds two jobs.
"""

from __future__ import annotations

import ast
import subprocess
from collections import defaultdict
from pathlib import Path

from tests.support.packages import PACKAGES, ROOT

# Pipeline order (docs/architecture.md): each may import only those before it.
STAGES = ("catalogue", "store", "ingest", "rules", "alerts", "api")
MAX_LINES = 500


def _python_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in out if "node_modules/" not in name]


def _imports(path: Path) -> set[str]:
    """_imports: the top-level packages a module imports, anywhere in it (deferred imports in
    functions and TYPE_CHECKING blocks count: they are dependencies all the same)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def _graph() -> dict[str, dict[str, list[str]]]:
    """_graph maps each package to the packages it imports, with the modules that do it."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in _python_files():
        package = path.relative_to(ROOT).parts[0]
        if package not in PACKAGES:
            continue
        for imported in _imports(path) - {package}:
            graph[package][imported].append(str(path.relative_to(ROOT)))
    return graph


def test_no_package_but_the_entry_point_imports_the_wiring() -> None:
    offenders = {
        package: modules["homecare"]
        for package, modules in _graph().items()
        if package != "homecare" and "homecare" in modules
    }
    assert not offenders, f"the wiring is imported by {offenders}"


def test_no_earlier_stage_imports_a_later_one() -> None:
    graph = _graph()
    offenders = []
    for position, stage in enumerate(STAGES):
        for later in STAGES[position + 1 :]:
            offenders += [f"{m} imports {later}" for m in graph[stage].get(later, [])]
    assert not offenders, "\n".join(offenders)


def test_no_cycle_between_top_level_packages() -> None:
    graph = _graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif len(path) < len(PACKAGES):
                visit(nxt, [*path, nxt])

    for package in PACKAGES:
        visit(package, [package])
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_no_module_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in _python_files()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (lines): {long}"


def test_the_graph_sees_real_imports() -> None:
    # The checks above pass vacuously if the graph is empty: the API must be seen importing
    # the alerts stage, and the wiring every stage.
    graph = _graph()
    assert "alerts" in graph["api"]
    assert set(STAGES) - {"catalogue"} <= set(graph["homecare"])
