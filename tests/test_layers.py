"""The house has one straight way through it: no import circles, none back up a layer.

Imports are read from the source, those inside functions included (a circle hidden in a
function is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "registry"

# What each part may never import: everything above it.
NEVER = {
    "registry.models": ("registry.services", "registry.schemas", "registry.present"),
    "registry.services": (
        "registry.api",
        "registry.pages",
        "registry.present",
        "registry.schemas",
        "registry.security",
        "registry.web",
        "registry.app",
    ),
    "registry.schemas": ("registry.api", "registry.pages", "registry.present"),
    "registry.present": ("registry.api", "registry.pages"),
    "registry.pages": ("registry.api",),
    "registry.api": ("registry.pages",),
    "registry.extensions": ("registry.api", "registry.pages"),
    "registry.work": ("registry.services", "registry.api", "registry.pages"),
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # ``from registry import work`` imports registry.work, not the package's
                # own __init__; ``from registry.db import db`` imports registry.db.
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                targets = [m for m in submodules if m in modules]
                if len(targets) < len(submodules):
                    targets.append(node.module)
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle() -> None:
    graph = _graph()
    assert len(graph) > 60
    assert _circles(graph) == []


def test_no_import_runs_back_up_a_layer() -> None:
    upward = [
        f"{name} imports {target}"
        for name, targets in _graph().items()
        for part, banned in NEVER.items()
        if name == part or name.startswith(part + ".")
        for target in targets
        if any(target == b or target.startswith(b + ".") for b in banned)
    ]
    assert upward == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
