"""The import architecture, read from the source with ``ast`` (nothing is imported).

Folders map to module names as pyproject's ``package-dir`` says (exporter/ is ``wattfleet.exporter``), so
the graph has the arrows that tools unaware of the mapping miss.  Guarded here:

(a) the exporter, the aggregator and the dashboards import only ``wattfleet.core`` of wattfleet (besides
    the stdlib, third-party libraries and themselves), never each other, the simulator or the CLI; the core
    imports none of them;
(b) no import cycles between modules, counting only the imports that run at import time (module and class
    level, outside ``if TYPE_CHECKING:``);
(c) every import inside a function says why on its line or the line above (``# lazy: optional dependency
    duckdb``), since imports belong at the top of the file.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from paths import REPO

# tomllib is Python 3.11+; wattfleet itself supports 3.10, where these tests are skipped.
tomllib = pytest.importorskip("tomllib")

# Areas of wattfleet, most specific prefix first; "app" is what composes everything (cli, demo, __main__).
AREAS = {
    "wattfleet.exporter": "exporter",
    "wattfleet.aggregator": "aggregator",
    "wattfleet.dashboards": "dashboards",
    "wattfleet.sql": "sql",
    "wattfleet.core": "core",
    "wattfleet.sim": "sim",
    "wattfleet": "app",
}
# What each area may import of wattfleet, besides itself.  The package root (wattfleet/__init__.py, only
# __version__) runs before any submodule anyway, so it is allowed everywhere.  The aggregator's SQL lives in
# wattfleet.sql (files by layer plus the small loader that reads them), its data layer: only the aggregator
# may import it.
ALLOWED = {
    "core": {"root"},
    "exporter": {"root", "core"},
    "aggregator": {"root", "core", "sql"},
    "dashboards": {"root", "core"},
    "sql": {"root"},
}


@dataclass
class Import:
    target: str  # the wattfleet module it names (the deepest that exists)
    line: int
    at_import_time: bool  # module or class level, outside `if TYPE_CHECKING:`


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: list[Import] = field(default_factory=list)  # of wattfleet modules
    nested: list[tuple[int, bool]] = field(default_factory=list)  # (line, commented) of any import in a function


def area(module: str) -> str:
    if module == "wattfleet":
        return "root"
    for prefix, name in AREAS.items():
        if module == prefix or module.startswith(prefix + "."):
            return name
    raise AssertionError(f"{module} is in no area")


def discover() -> dict[str, Module]:
    """Every module of the distribution, named as pyproject's package-dir maps its folder."""
    package_dir: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    mapped = {(REPO / folder).resolve(): name for name, folder in package_dir.items()}
    modules: dict[str, Module] = {}
    for root_name, folder in package_dir.items():
        root = REPO / folder
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            # A subfolder that is itself mapped (none today) is discovered under its own name.
            if any(parent.resolve() in mapped and parent.resolve() != root.resolve()
                   for parent in path.parents if root in parent.parents):
                continue
            parts = [root_name, *rel.with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            modules[name] = Module(name, path, is_package)
    return modules


def _comment_lines(source: str) -> set[int]:
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            lines.add(tok.start[0])
    return lines


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


Found = tuple[ast.Import | ast.ImportFrom, bool, bool]


def _walk(node: ast.AST, in_function: bool, type_only: bool) -> Iterator[Found]:
    """(import statement, inside a function, only under TYPE_CHECKING) for every import below node."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function, type_only
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _walk(child, True, type_only)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, type_only)
        else:
            yield from _walk(child, in_function, type_only)


def _targets(module: Module, node: ast.Import | ast.ImportFrom, known: dict[str, Module]) -> list[str]:
    """The wattfleet modules an import statement names (an imported name that is a submodule counts)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.name if module.is_package else module.name.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    found = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name not in found:
            found.append(name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, Module]:
    modules = discover()
    for module in modules.values():
        source = module.path.read_text()
        comments = _comment_lines(source)
        for node, nested, type_only in _walk(ast.parse(source, str(module.path)), False, False):
            if nested:
                end = node.end_lineno or node.lineno
                module.nested.append((node.lineno, any(line in comments for line in range(node.lineno - 1, end + 1))))
            for target in _targets(module, node, modules):
                module.imports.append(Import(target, node.lineno, not nested and not type_only))
    return modules


def where(module: Module, imp: Import) -> str:
    return f"{module.path.relative_to(REPO)}:{imp.line} {module.name} -> {imp.target}"


def test_the_mapping_is_followed(graph: dict[str, Module]) -> None:
    """Every mapped folder is found under its package name and its imports of the core are arrows here."""
    names = set(graph)
    for package in ("wattfleet.exporter.sampler", "wattfleet.aggregator", "wattfleet.dashboards.build",
                    "wattfleet.sql", "wattfleet.core.catalog", "wattfleet.sim"):
        assert package in names
    for part in ("exporter", "aggregator", "dashboards"):
        assert any(area(m.name) == part and area(i.target) == "core" for m in graph.values() for i in m.imports)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_layers(graph: dict[str, Module], part: str) -> None:
    """(a) exporter, aggregator, dashboards, sql and core import only what their layer allows of wattfleet."""
    offenders = [where(m, i) for m in graph.values() if area(m.name) == part for i in m.imports
                 if area(i.target) != part and area(i.target) not in ALLOWED[part]]
    assert not offenders, f"{part} may import only {sorted(ALLOWED[part])} of wattfleet:\n" + "\n".join(offenders)


def import_cycles(graph: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components of the import-time graph with more than one module, or a self-import
    (Tarjan's algorithm, iterative so a deep graph cannot hit the recursion limit)."""
    edges = {name: sorted({i.target for i in m.imports if i.at_import_time}) for name, m in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    cycles.append(sorted(component))
    return cycles


def test_cycle_finder_finds_a_cycle() -> None:
    """The checker itself: a -> b -> c -> a is one cycle, d -> a is not part of it, e imports itself."""
    def mod(name: str, *targets: str) -> Module:
        m = Module(name, REPO / f"{name}.py", False)
        m.imports = [Import(t, 1, True) for t in targets]
        return m

    fake = {m.name: m for m in (mod("a", "b"), mod("b", "c"), mod("c", "a"), mod("d", "a"), mod("e", "e"))}
    assert import_cycles(fake) == [["a", "b", "c"], ["e"]]


PARTS = ("core", "exporter", "dashboards", "sql", "aggregator", "sim", "app")


@pytest.mark.parametrize("part", PARTS)
def test_no_import_cycles(graph: dict[str, Module], part: str) -> None:
    """(b) no cycle through the modules of this area among the imports that run at import time."""
    cycles = [c for c in import_cycles(graph) if any(area(name) == part for name in c)]
    assert not cycles, "modules importing each other in a cycle:\n" + "\n".join(", ".join(c) for c in cycles)


@pytest.mark.parametrize("part", PARTS)
def test_function_level_imports_say_why(graph: dict[str, Module], part: str) -> None:
    """(c) an import inside a function has a comment on its line or the line above giving the reason."""
    offenders = sorted(f"{m.path.relative_to(REPO)}:{line}" for m in graph.values() if area(m.name) == part
                       for line, commented in m.nested if not commented)
    assert not offenders, ("imports inside functions without a reason (comment on the line or the line above), "
                           "or move them to the top of the file:\n" + "\n".join(offenders))
