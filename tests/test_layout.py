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


def _package_of(module: str) -> str:
    """_package_of names the directory a module lives in: ``homecare.rules.base`` is in
    ``rules``, ``homecare.settings`` in the wiring, ``homecare``."""
    parts = module.split(".")
    if parts[0] == "homecare" and len(parts) > 1 and parts[1] in PACKAGES:
        return parts[1]
    return parts[0]


def _imported_modules(path: Path) -> set[str]:
    """_imported_modules: every absolute module name a file imports, anywhere in it (deferred
    imports in functions and TYPE_CHECKING blocks count: they are dependencies all the same);
    ``from homecare import rules`` imports ``homecare.rules``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "homecare":
                found.update(f"homecare.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def _imports(path: Path) -> set[str]:
    """_imports: the top-level directories whose code a module imports."""
    return {_package_of(module) for module in _imported_modules(path)} & set(PACKAGES)


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


def test_the_stages_are_imported_only_under_the_one_import_name() -> None:
    # The wheel installs only ``homecare``: a bare ``import rules`` works in a checkout (the
    # repository root is on the path) and nowhere else, and would load a second copy of the
    # module beside ``homecare.rules``.
    bare = sorted(
        f"{path.relative_to(ROOT)}: {module}"
        for path in _python_files()
        for module in _imported_modules(path)
        if module.split(".")[0] in set(PACKAGES) - {"homecare"}
    )
    assert not bare, "import these as homecare.<stage>:\n" + "\n".join(bare)


def test_every_stage_is_linked_into_the_package() -> None:
    links = {p: ROOT / "homecare" / p for p in PACKAGES if p != "homecare"}
    wrong = [p for p, link in links.items() if link.resolve() != (ROOT / p).resolve()]
    assert not wrong, f"homecare/<stage> must link to the top-level directory: {wrong}"


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
