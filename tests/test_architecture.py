"""The folder map of docs/ARCHITECTURE.md, enforced: no import cycle among the project's modules,
and each top-level package imports only the packages it may.

Imports are read with `ast` from every module, wherever they stand (function bodies and
`TYPE_CHECKING` blocks included: a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = (
    "telephony",
    "workflows",
    "activities",
    "worker",
    "webhook_gateway",
    "livekit_emulator",
    "operator_tools",
)
# What each package may import besides itself (docs/ARCHITECTURE.md, "Folders").
ALLOWED: Mapping[str, frozenset[str]] = {
    "telephony": frozenset(),
    "workflows": frozenset({"telephony"}),
    "activities": frozenset({"telephony"}),
    "worker": frozenset({"telephony", "workflows", "activities"}),
    "webhook_gateway": frozenset({"telephony"}),
    "livekit_emulator": frozenset(),
    "operator_tools": frozenset(PACKAGES),
}

Graph = Mapping[str, frozenset[str]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
    }


def imported_names(module: str, path: Path) -> Iterable[str]:
    """Every dotted name `module` imports, absolute (relative imports resolved): `import a.b`
    gives `a.b`; `from a import b` gives `a.b` (a module or a name in `a`)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            yield from (f"{origin}.{alias.name}" for alias in node.names)


def resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The project module a dotted name refers to (its longest existing prefix), if any: a
    submodule when one is named, else the module the name is taken from."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> Graph:
    modules = project_modules()
    graph: dict[str, frozenset[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name, modules) for name in imported_names(module, path)}
        graph[module] = frozenset(t for t in targets if t is not None and t != module)
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def package_of(module: str) -> str:
    return module.split(".", 1)[0]


def test_the_cycle_finder_finds_a_two_module_cycle_and_ignores_a_chain() -> None:
    graph = {
        "a": frozenset({"b"}),
        "b": frozenset({"a", "c"}),
        "c": frozenset({"d"}),
        "d": frozenset(),
    }

    assert find_cycles(graph) == [["a", "b"]]


def test_the_import_reader_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from telephony.settings import Settings\n"
        "def f():\n    import worker.app\n"
    )

    names = set(imported_names("probe", source))

    assert {"telephony.settings.Settings", "worker.app"} <= names


def test_no_import_cycle_among_the_project_modules() -> None:
    assert find_cycles(import_graph()) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_the_folder_map_allows(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    forbidden = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if package_of(module) == package
        for target in targets
        if package_of(target) not in allowed
    )

    assert forbidden == []


def test_the_domain_package_imports_no_other_package_of_the_project() -> None:
    outside = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if package_of(module) == "telephony"
        for target in targets
        if package_of(target) != "telephony"
    )

    assert outside == []


def test_every_package_is_installed_type_checked_and_copied_into_the_image() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    installed = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    checked = set(pyproject["tool"]["mypy"]["files"])
    copied = {
        line.split()[1]
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and not line.split()[1].endswith((".toml", ".md"))
    }

    assert set(PACKAGES) == installed == copied
    assert set(PACKAGES) <= checked
