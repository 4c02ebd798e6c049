"""No module imports from a floor above its own (function-level imports included), and generic code never
imports a specific task: the table is :data:`proactiv.layers.FLOORS`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from proactiv.layers import FLOORS, TASK_AWARE, floor_of, rank

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "proactiv"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, name: str) -> bool:
    return (root / f"{name}.py").is_file() or (root / name / "__init__.py").is_file()


def imported_modules(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in a file, relative imports resolved; ``from proactiv import x``
    counts as an import of ``proactiv.x`` when ``x`` is a module, else of the package ``proactiv`` itself."""
    module = _module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            if target == "proactiv":
                found += [
                    (node.lineno, f"proactiv.{a.name}" if _is_module(root, a.name) else "proactiv")
                    for a in node.names
                ]
            else:
                found.append((node.lineno, target))
    return found


def layer_violations(root: Path = PACKAGE) -> list[str]:
    """One line per import that climbs a floor or reaches a specific task from a floor that may not."""
    out = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        here = floor_of(module)
        for line, target in imported_modules(path, root):
            if target.split(".")[0] != "proactiv":
                continue
            there = floor_of(target)
            where = f"{path.relative_to(root.parent)}:{line}"
            if rank(there) > rank(here):
                out.append(f"{where} imports {target}: {here} floor imports from the {there} floor above it")
            parts = target.split(".")
            specific = len(parts) > 2 and parts[1] == "tasks" and parts[2] != "base"
            own_task = module.split(".")[:3] == parts[:3]
            if specific and here not in TASK_AWARE and not own_task:
                out.append(f"{where} imports {target}: generic {here} code imports a specific task")
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the proactiv modules it imports (``from package import submodule`` counts as the submodule)."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        targets = set()
        for _, target in imported_modules(path, root):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                targets.add(target)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in modules and not node.level:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                if subs and len(subs) == len(
                    node.names
                ):  # imports only submodules: not the package's own code
                    targets = (targets - {node.module}) | subs
        graph[module] = targets - {module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan's algorithm)."""
    index, low, stack, cycles = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_modules_import_each_other():
    assert import_cycles(import_graph()) == []


def test_the_cycle_check_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_every_module_is_on_a_floor():
    for path in PACKAGE.rglob("*.py"):
        floor_of(_module_name(path, PACKAGE))  # raises naming the module


def test_no_import_climbs_a_floor():
    violations = layer_violations()
    assert not violations, f"{len(violations)} imports climb:\n" + "\n".join(violations)


def test_the_check_finds_a_planted_upward_import(tmp_path):
    root = tmp_path / "proactiv"
    for package in ("analysis", "dashboard"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "store.py").write_text("def f():\n    from proactiv.views import curves\n")
    (root / "analysis" / "x.py").write_text("from ..tasks.kws import frontend\nfrom . import y\n")
    (root / "analysis" / "y.py").write_text("from proactiv import dashboard\n")
    found = layer_violations(root)
    assert any("store.py:2" in v and "engine floor imports from the views floor" in v for v in found)
    assert any("x.py:1" in v and "specific task" in v for v in found)
    assert any("y.py:1" in v and "proactiv.dashboard" in v for v in found)
    assert len(found) == 3


@pytest.mark.parametrize("module", ["proactiv", "proactiv.cli"])
def test_entry_floor_is_the_top(module):
    assert rank(floor_of(module)) == len(FLOORS) - 1
