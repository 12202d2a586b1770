"""The package's layering: no import cycle among the modules of ``search``, at module level or inside functions.

Read statically (``ast``): every ``import``/``from ... import`` of a module, outside ``if TYPE_CHECKING:``
blocks, those inside functions included (kept there so that ``cnn-search --help`` never imports
TensorFlow, they are still a dependency); docs/architecture.md lists the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import search

ROOT = Path(search.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ("search", *path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(tree: ast.Module, *, inside_functions: bool) -> list[ast.stmt]:
    """The import statements of a module (outside ``if TYPE_CHECKING:``), those in functions too if asked."""
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    nodes = ast.walk(tree) if inside_functions else iter(tree.body)
    return [n for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in typing_only]


def _graph(modules: dict[str, Path], *, inside_functions: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in _imports(ast.parse(path.read_text()), inside_functions=inside_functions):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "search":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    edges.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.split(".")[0] == "search"}
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


@pytest.mark.parametrize("inside_functions", [False, True], ids=["module level", "inside functions too"])
def test_no_import_cycle(inside_functions):
    modules = _modules()
    assert len(modules) > 50 and "search.engines._optuna" in modules  # the whole package was read
    graph = _graph(modules, inside_functions=inside_functions)
    assert sum(map(len, graph.values())) > 100  # the imports were read
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


#: The floors, top first: a module may import its own floor and those below it, never one above.
FLOORS = ("search.cli", "search.engines", "search.runtime")


def _floor(module: str) -> int | None:
    return next((i for i, top in enumerate(FLOORS) if module == top or module.startswith(top + ".")), None)


def _upwards(graph: dict[str, set[str]]) -> list[str]:
    """The imports that climb a floor; ``search.cli`` is imported by nothing but itself and ``python -m search``."""
    found = []
    for name, targets in graph.items():
        for target in targets:
            own, floor = _floor(name), _floor(target)
            if floor is None:
                continue
            if (own is not None and floor < own) or (own is None and floor == 0 and name != "search.__main__"):
                found.append(f"{name} -> {target}")
    return sorted(found)


def test_imports_run_only_downwards():
    """The CLI above the engines above the runtime (docs/architecture.md): nothing below imports what is above."""
    graph = _graph(_modules(), inside_functions=True)
    assert {_floor(m) for m in graph} >= {0, 1, 2}  # every floor was read
    assert _upwards(graph) == []


def test_the_upward_finder_finds_an_upward_import():
    graph = {
        "search.runtime._session": {"search.engines._base", "search.space"},
        "search.engines._base": {"search.runtime._session"},
        "search.space": {"search.cli"},
        "search.__main__": {"search.cli"},
    }
    assert _upwards(graph) == ["search.runtime._session -> search.engines._base", "search.space -> search.cli"]


def test_no_engine_name_is_compared_outside_its_engine():
    """What depends on an engine is an attribute of it (``cpu_workers``, ``preload``, ``workers``...): no
    ``engine == "optuna"`` anywhere but in that engine's own module."""
    from search.engines import ENGINES

    names = set(ENGINES)
    found = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                compared = {s.value for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)}
                for name in compared & names:
                    if name.replace("-", "_") not in module:
                        found.append(f"{module}:{node.lineno} compares with {name!r}")
    assert found == []
