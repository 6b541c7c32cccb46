"""The module map holds: no import cycle in annotate, routing and jobs, and each package imports only what its
layer may (docs/architecture.md). Imports inside functions count: a lazy import is still a dependency."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import grimp
import pytest

PACKAGES = ("annotate", "routing", "jobs")
ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Rule:
    """Modules under `importer` (but not under `exempt`) may import modules under `imported` only when they are
    under one of `allowed`."""

    importer: str
    imported: str
    allowed: tuple[str, ...]
    why: str
    exempt: tuple[str, ...] = ()


# Routing's top layer (its pages, API views, URL modules and commands) sits beside annotate's views and may use
# annotate's access checks, API helpers and services; routing's core may not.
ROUTING_TOP = ("routing.views", "routing.urls", "routing.api_views", "routing.management")

RULES = (
    Rule("annotate", "routing", ("routing.api",), "annotate talks to routing only through routing.api"),
    Rule("jobs", "annotate", ("annotate.models",), "the job engine reads and writes job rows, nothing else"),
    Rule("jobs", "routing", (), "the job engine knows no job kind: handlers register into it"),
    Rule(
        "routing",
        "annotate",
        ("annotate.models", "annotate.schema", "annotate.stats"),
        "routing's core builds on annotate's models, label schemas and pure statistics only",
        exempt=ROUTING_TOP,
    ),
)


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def import_graph(*packages: str) -> grimp.ImportGraph:
    """Every import between the packages' modules, those inside functions and `if TYPE_CHECKING:` included."""
    importlib.invalidate_caches()
    return grimp.build_graph(*packages, cache_dir=None)


def _edge(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    lines = sorted({detail["line_number"] for detail in graph.get_import_details(importer=importer, imported=imported)})
    where = f" (line {', '.join(map(str, lines))})" if lines else ""
    return f"{importer} -> {imported}{where}"


def _components(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    successors = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in successors:
        if root in index:
            continue
        work = [(root, iter(successors[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _shortest_cycle(graph: grimp.ImportGraph, start: str, members: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for child in sorted(graph.find_modules_directly_imported_by(module) & members):
            if child == start:
                path = [module]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in came_from:
                came_from[child] = module
                queue.append(child)
    raise AssertionError(f"{start} is in a component but on no cycle")


def import_cycles(graph: grimp.ImportGraph) -> list[str]:
    """Each import cycle, as the chain of imports with their line numbers; one shortest cycle through each
    module of every strongly connected component, rotations removed."""
    cycles, seen = [], set()
    for component in _components(graph):
        members = set(component)
        for module in component:
            cycle = _shortest_cycle(graph, module, members)
            key = frozenset(zip(cycle, cycle[1:], strict=False))
            if key in seen:
                continue
            seen.add(key)
            edges = [_edge(graph, a, b) for a, b in zip(cycle, cycle[1:], strict=False)]
            cycles.append(f"cycle of {len(component)} modules {component}: " + "; ".join(edges))
    return cycles


def forbidden_imports(graph: grimp.ImportGraph, rules: tuple[Rule, ...]) -> list[str]:
    """Every import a rule forbids, with the rule's reason."""
    broken = []
    for rule in rules:
        for importer in sorted(graph.modules):
            if not _under(importer, (rule.importer,)) or _under(importer, rule.exempt):
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if _under(imported, (rule.imported,)) and not _under(imported, rule.allowed):
                    broken.append(f"{_edge(graph, importer, imported)}: {rule.why}")
    return broken


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return import_graph(*PACKAGES)


def test_no_import_cycle(graph):
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_each_package_imports_only_what_its_layer_may(graph):
    broken = forbidden_imports(graph, RULES)
    assert not broken, "forbidden imports:\n" + "\n".join(broken)


def test_the_graph_is_the_whole_code_base(graph):
    """A checker that saw only part of the code would pass for the wrong reason."""
    assert {"routing.api", "routing.router", "jobs.runner", "annotate.services.assignments"} <= graph.modules
    assert graph.direct_import_exists(importer="annotate.services.imports.items", imported="routing.api")


def test_the_architecture_map_lists_every_module_and_only_modules_that_exist():
    """docs/architecture.md is the map: a module added, moved or removed changes it in the same commit."""
    modules = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    pattern = r"`((?:" + "|".join(PACKAGES) + r")/[\w/]+\.py)`"
    named = set(re.findall(pattern, MAP.read_text()))
    assert not modules - named, f"modules missing from docs/architecture.md: {sorted(modules - named)}"
    assert not named - modules, f"docs/architecture.md names modules that do not exist: {sorted(named - modules)}"


# --- the checker itself, on small package trees ------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def fake_tree(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(files: dict[str, str]) -> None:
        _tree(tmp_path, files)

    yield make
    for name in [m for m in sys.modules if m.startswith(("shop", "engine"))]:
        del sys.modules[name]


# Routing and the job engine stay readable: a module a screen or so of scrolling, a function one screen.
MAX_MODULE_LINES = {"routing": 500}
MAX_FUNCTION_LINES = {"routing": 80, "jobs": 80}


def oversized(root: Path) -> list[str]:
    """Modules and functions of the packages above over their limits, as "path: what (lines)"."""
    found = []
    for package in sorted({*MAX_MODULE_LINES, *MAX_FUNCTION_LINES}):
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            lines = source.count("\n")
            where = path.relative_to(root)
            if lines > MAX_MODULE_LINES.get(package, lines):
                found.append(f"{where}: module ({lines} lines, at most {MAX_MODULE_LINES[package]})")
            limit = MAX_FUNCTION_LINES.get(package)
            for node in ast.walk(ast.parse(source)):
                if limit and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = node.end_lineno - node.lineno + 1
                    if length > limit:
                        found.append(f"{where}:{node.lineno}: function {node.name} ({length} lines, at most {limit})")
    return found


def test_no_routing_module_or_function_outgrows_its_limit():
    too_big = oversized(ROOT)
    assert not too_big, "split these:\n" + "\n".join(too_big)


def test_the_size_check_names_what_is_too_long(tmp_path):
    (tmp_path / "routing").mkdir()
    body = "\n".join(f"    x{n} = {n}" for n in range(81))
    (tmp_path / "routing" / "long.py").write_text(f"def long():\n{body}\n" + "\n" * 420)
    (tmp_path / "jobs").mkdir()
    assert oversized(tmp_path) == [
        "routing/long.py: module (502 lines, at most 500)",
        "routing/long.py:1: function long (82 lines, at most 80)",
    ]


def test_a_cycle_held_by_an_import_inside_a_function_is_found(fake_tree):
    fake_tree(
        {
            "shop/__init__.py": "",
            "shop/orders.py": "from shop import stock\n",
            "shop/stock.py": "import shop.prices\n",
            "shop/prices.py": "def price():\n    from shop.orders import total\n    return total()\n",
            "shop/cart.py": "from shop import orders\n",
        }
    )
    cycles = import_cycles(import_graph("shop"))
    assert len(cycles) == 1
    assert "cycle of 3 modules ['shop.orders', 'shop.prices', 'shop.stock']" in cycles[0]
    assert "shop.prices -> shop.orders (line 2)" in cycles[0]
    assert "shop.cart" not in cycles[0]


def test_two_separate_cycles_are_both_reported(fake_tree):
    fake_tree(
        {
            "shop/__init__.py": "",
            "shop/a.py": "import shop.b\n",
            "shop/b.py": "import shop.a\n",
            "shop/c.py": "import shop.d\n",
            "shop/d.py": "if True:\n    import shop.c\n",
        }
    )
    cycles = import_cycles(import_graph("shop"))
    assert len(cycles) == 2
    assert any("shop.d -> shop.c (line 2)" in cycle for cycle in cycles)


def test_a_tree_without_cycles_passes(fake_tree):
    fake_tree({"shop/__init__.py": "", "shop/a.py": "import shop.b\n", "shop/b.py": "import json\n"})
    assert import_cycles(import_graph("shop")) == []


def test_a_forbidden_import_is_named_with_its_rule(fake_tree):
    fake_tree(
        {
            "shop/__init__.py": "",
            "shop/views.py": "from engine import api, core\n",
            "shop/services.py": "def run():\n    from engine.api import go\n",
            "engine/__init__.py": "",
            "engine/api.py": "def go():\n    pass\n",
            "engine/core.py": "",
        }
    )
    rules = (Rule("shop", "engine", ("engine.api",), "shop calls engine.api only"),)
    broken = forbidden_imports(import_graph("shop", "engine"), rules)
    assert broken == ["shop.views -> engine.core (line 1): shop calls engine.api only"]
    exempted = (Rule("shop", "engine", ("engine.api",), "shop calls engine.api only", exempt=("shop.views",)),)
    assert forbidden_imports(import_graph("shop", "engine"), exempted) == []
