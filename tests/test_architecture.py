"""The package's shape (design §3): folders are layers, no circles, small modules.

`lint-imports` (run by `.ci/run`) checks that imports point down the layers; these tests check
what a layers contract cannot: that there is no import circle even inside one folder, that
no module outgrows its job, and that every module sits in a layer folder.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import grimp
import pytest

import dify_ingest_tools

PACKAGE = Path(dify_ingest_tools.__file__).parent
MAX_LINES = 500
# Route tables read best whole: one handler per Dify endpoint, in the spec's order.
LONG_ON_PURPOSE: dict[str, str] = {}
# What may sit at the top of the package beside the layer folders (design §3).
TOP_LEVEL = {"__init__.py", "_version.py", "errors.py", "events.py"}
LAYERS = {
    "cli",
    "langchain",
    "llama_index",
    "mcp_server",
    "agent",
    "folder_sync",
    "client",
    "readiness",
    "_http",
    "backends",
    "models",
    "_base",
    "testing",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_500_lines(path: Path) -> None:
    relative = str(path.relative_to(PACKAGE))
    lines = len(path.read_text().splitlines())
    if relative in LONG_ON_PURPOSE:
        return
    assert lines <= MAX_LINES, f"{relative}: {lines} lines; split it by what it holds"


def test_every_module_sits_in_a_layer_folder() -> None:
    top = {p.name for p in PACKAGE.iterdir() if p.suffix == ".py"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top <= TOP_LEVEL, f"modules outside the layer folders: {sorted(top - TOP_LEVEL)}"
    assert folders == LAYERS


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child) & modules
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_there_is_no_import_circle() -> None:
    # As lint-imports sees them: imports under `if TYPE_CHECKING:` are annotations only. A
    # package's own __init__ re-exporting its modules is not a circle through its children.
    graph = grimp.build_graph("dify_ingest_tools", exclude_type_checking_imports=True)
    packages = {m for m in graph.modules if (PACKAGE.parent / m.replace(".", "/")).is_dir()}
    modules = set(graph.modules) - packages
    assert _cycles(graph, modules) == []


def test_the_circle_finder_finds_a_circle(tmp_path: Path) -> None:
    # The check above must be able to fail: a two-module circle is found.
    root = tmp_path / "circled"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from circled import b\n")
    (root / "b.py").write_text("from circled import a\n")
    (root / "c.py").write_text("from circled import a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("circled", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    modules = {"circled.a", "circled.b", "circled.c"}
    assert _cycles(graph, modules) == [["circled.a", "circled.b"]]


def test_only_public_modules_advertise_names() -> None:
    # Design §4: names other than the public ones are private; no `__all__` advertises them.
    # The public packages (the top, the adapters, the simulator, and the layer packages that
    # re-export their module's public class) say what they offer; inner modules do not.
    advertising = []
    for path in _modules():
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py" or relative.parts[0] in {"langchain", "llama_index"}:
            continue
        if relative.parts[0] in {"testing", "mcp_server"}:
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                advertising.append(str(relative))
    assert advertising == []


def test_every_public_name_loads_from_its_one_home() -> None:
    # The top-level table says where each public name is defined; a name that only passes
    # through another module (a re-export) would be a second home, and one that is gone would
    # fail at first use, in a user's code.
    for name, (module, _) in dify_ingest_tools._EXPORTS.items():
        value = getattr(importlib.import_module(f"dify_ingest_tools.{module}"), name)
        assert getattr(value, "__module__", None) == f"dify_ingest_tools.{module}", name
        assert getattr(dify_ingest_tools, name) is value


def test_modules_that_moved_still_import_under_their_old_names() -> None:
    for old, new in dify_ingest_tools._MOVED.items():
        moved = importlib.import_module(f"dify_ingest_tools.{new}")
        assert importlib.import_module(f"dify_ingest_tools.{old}") is moved
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("dify_ingest_tools.no_such_module")
