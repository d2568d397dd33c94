"""Writes `blocking.py` and `blocking_more.py`: the blocking twin's methods, generated.

The blocking `DifyKnowledgeClient` once forwarded its 37 methods by hand, and seven
signatures drifted from the async ones (a lost ``deadline``, six collapsed to ``**options``).
Now every public method and property of `AsyncDifyKnowledgeClient` is rendered here into a
typed, one-line forward with the same parameters, defaults, return annotation and docstring;
``tests/test_blocking_twin.py`` fails when a file on disk is not what this renders (run
``python -m dify_ingest_tools.client.twin`` to write them again) and compares both clients' members.
The members, in name order, are shared out between the parts (``PARTS``) so that none is longer
than ``MAX_LINES``; each part's class inherits the next, the last `BlockingBase`.

Rules: a coroutine method runs on the client's worker loop (``self._run``); an async
generator is driven as a blocking iterator (``self._worker.iterate``); a plain method or a
property is forwarded as is. ``Iterable`` arguments are materialised on the caller's thread,
so a generator is not consumed from the loop's thread (``listed``, in `blocking_base`).
Lifecycle (``aclose``, ``async with``) stays hand-written on each client.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: Members each client writes by hand: its own way to close and to enter a ``with``.
LIFECYCLE = frozenset({"aclose", "close", "async_client"})
#: The generated modules and their classes, outermost first (`bridge` imports the first).
PARTS = (
    (Path(__file__).with_name("blocking.py"), "BlockingMethods"),
    (Path(__file__).with_name("blocking_more.py"), "MoreBlockingMethods"),
)
#: No generated module is longer than this (the package's limit on a module, with room).
MAX_LINES = 480
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BUILTINS = frozenset({"str", "int", "float", "bool", "bytes", "None", "dict", "list", "tuple"})
_BUILTINS |= frozenset({"set", "type", "object"})
# Imported by the generated modules at run time (not again under TYPE_CHECKING).
_RUNTIME = {"typing": {"TYPE_CHECKING"}}


def public_members(cls: type) -> dict[str, Any]:
    """The public methods and properties of ``cls`` (inherited ones too), by name."""
    members: dict[str, Any] = {}
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in LIFECYCLE:
            continue
        value = inspect.getattr_static(cls, name)
        if isinstance(value, property) or inspect.isfunction(value):
            members[name] = value
    return members


def _defining_module(name: str, hint: str) -> str:
    """Where ``name`` (used in an annotation of module ``hint``) is defined."""
    import collections.abc
    import typing

    if name not in vars(sys.modules[hint]):
        for standard in (collections.abc, typing):
            if hasattr(standard, name):
                return standard.__name__
    value = vars(sys.modules[hint]).get(name)
    origin = getattr(value, "__module__", None)
    if isinstance(origin, str) and getattr(value, "__name__", None) == name:
        return "collections.abc" if origin == "_collections_abc" else origin
    for module_name in sorted(m for m in sys.modules if m.startswith("dify_ingest_tools")):
        module = sys.modules[module_name]
        source = getattr(module, "__file__", None)
        if source and re.search(rf"^{name}\b[^=\n]*=", Path(source).read_text(), re.M):
            return module_name
    raise LookupError(f"cannot tell where {name!r} (used in {hint}) is defined")


class _Imports:
    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}

    def need(self, annotation: str, hint: str) -> None:
        for name in _NAME.findall(annotation):
            if name in _BUILTINS or name == "typing":
                continue
            self.names.setdefault(_defining_module(name, hint), set()).add(name)

    def render(self) -> list[str]:
        lines = []
        for module, names in _RUNTIME.items():
            self.names.get(module, set()).difference_update(names)
        for module in sorted(m for m in self.names if self.names[m]):
            lines.append(f"    from {module} import {', '.join(sorted(self.names[module]))}")
        return lines


def _params(function: Callable[..., Any], imports: _Imports) -> tuple[str, str]:
    """The parameter list (without self) and the call's arguments."""
    signature = inspect.signature(function)
    hint = function.__module__
    declared: list[str] = []
    passed: list[str] = []
    star = False
    for parameter in list(signature.parameters.values())[1:]:
        annotation = parameter.annotation
        text = parameter.name
        if annotation is not inspect.Parameter.empty:
            imports.need(str(annotation), hint)
            text += f": {annotation}"
        if parameter.default is not inspect.Parameter.empty:
            text += " = " if ":" in text else "="
            text += repr(parameter.default)
        value = parameter.name
        if "Iterable[" in str(annotation):
            value = f"listed({parameter.name})"
        kind = parameter.kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            declared.append("*" + text)
            passed.append("*" + parameter.name)
            star = True
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            declared.append("**" + text)
            passed.append("**" + parameter.name)
            continue
        if kind is inspect.Parameter.KEYWORD_ONLY and not star:
            declared.append("*")
            star = True
        declared.append(text)
        passed.append(f"{parameter.name}={value}" if kind.name == "KEYWORD_ONLY" else value)
    return ", ".join(["self", *declared]), ", ".join(passed)


def _method(name: str, function: Callable[..., Any], imports: _Imports) -> list[str]:
    declared, passed = _params(function, imports)
    returns = str(inspect.signature(function).return_annotation)
    call = f"self._async.{name}({passed})"
    if inspect.isasyncgenfunction(function) or returns.startswith("AsyncIterator["):
        returns = "Iterator[" + returns.removeprefix("AsyncIterator[")
        imports.names.setdefault("collections.abc", set()).add("Iterator")
        body = f"return self._worker.iterate({call})"
    elif inspect.iscoroutinefunction(function):
        body = f"return self._run({call})"
    else:
        body = f"return {call}"
    imports.need(returns, function.__module__)
    lines = [f"    def {name}({declared}) -> {returns}:"]
    lines += _docstring(function)
    lines.append(f"        {body}")
    return lines


def _property(name: str, prop: property, imports: _Imports) -> list[str]:
    getter = prop.fget
    assert getter is not None
    returns = str(inspect.signature(getter).return_annotation)
    imports.need(returns, getter.__module__)
    lines = ["    @property", f"    def {name}(self) -> {returns}:"]
    lines += _docstring(getter)
    lines.append(f"        return self._async.{name}")
    return lines


def _docstring(function: Callable[..., Any]) -> list[str]:
    doc = inspect.getdoc(function)
    if not doc:
        return []
    body = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    indented = [("        " + line).rstrip() for line in body.splitlines()]
    indented[0] = '        """' + indented[0].lstrip()
    if len(indented) == 1:
        return [indented[0] + '"""']
    return [*indented, '        """']


def _members() -> list[tuple[list[str], _Imports]]:
    """Each public member of the async client rendered, with the names its lines need."""
    client = importlib.import_module("dify_ingest_tools.client.async_client")
    rendered = []
    for name, member in public_members(client.AsyncDifyKnowledgeClient).items():
        imports = _Imports()
        if isinstance(member, property):
            lines = ["", *_property(name, member, imports)]
        else:
            lines = ["", *_method(name, member, imports)]
        rendered.append((lines, imports))
    return rendered


def _shared_out(
    members: list[tuple[list[str], _Imports]],
) -> list[list[tuple[list[str], _Imports]]]:
    """The members in name order, cut into ``len(PARTS)`` runs of about equal length."""
    total = sum(len(lines) for lines, _ in members)
    share = total / len(PARTS)
    runs: list[list[tuple[list[str], _Imports]]] = [[] for _ in PARTS]
    done = 0
    for lines, imports in members:
        index = min(int(done // share), len(PARTS) - 1)
        runs[index].append((lines, imports))
        done += len(lines)
    return runs


def _part(index: int, members: list[tuple[list[str], _Imports]]) -> str:
    path, class_name = PARTS[index]
    imports = _Imports()
    body: list[str] = []
    for lines, needed in members:
        body += lines
        for module, names in needed.names.items():
            imports.names.setdefault(module, set()).update(names)
    runtime: dict[str, list[str]] = {"blocking_base": []}
    if index + 1 < len(PARTS):
        following, base = PARTS[index + 1]
        runtime[following.stem] = [base]
    else:
        base = "BlockingBase"
        runtime["blocking_base"].append(base)
    if any(re.search(r"\blisted\(", line) for line in body):
        runtime["blocking_base"].append("listed")
    runtime_imports = [
        f"from dify_ingest_tools.client.{module} import {', '.join(names)}"
        for module, names in runtime.items()
        if names
    ]
    first, last = _first_and_last(members)
    annotations = imports.render()
    head = [
        f'"""The blocking twin\'s methods {first} to {last}: GENERATED by `twin.py` from',
        "`AsyncDifyKnowledgeClient`.",
        "",
        "Do not edit: run ``python -m dify_ingest_tools.client.twin`` after changing the async",
        "client.",
        '"""',
        "",
        "# ruff: noqa: I001",
        "from __future__ import annotations",
        "",
        "from typing import TYPE_CHECKING",
        "",
        *runtime_imports,
        "",
        *(["if TYPE_CHECKING:", *annotations, ""] if annotations else []),
        "",
        f"class {class_name}({base}):",
        f'    """The async client\'s public members {first} to {last}, blocking."""',
    ]
    source = "\n".join([*head, *body]) + "\n"
    if source.count("\n") > MAX_LINES:
        raise ValueError(
            f"{path.name} would be {source.count(chr(10))} lines (over {MAX_LINES}): "
            "add a part to PARTS"
        )
    return source


def _first_and_last(members: list[tuple[list[str], _Imports]]) -> tuple[str, str]:
    """The first and the last member name of a run (its ``def`` lines)."""
    names = [
        line.split("(")[0].removeprefix("    def ")
        for lines, _ in members
        for line in lines
        if line.startswith("    def ")
    ]
    return f"`{names[0]}`", f"`{names[-1]}`"


def render() -> dict[Path, str]:
    """The source of each generated module (`PARTS`) for the async client as it is now."""
    runs = _shared_out(_members())
    return {
        path: _part(index, run)
        for index, ((path, _), run) in enumerate(zip(PARTS, runs, strict=True))
    }


def _check_parses(source: str) -> None:
    ast.parse(source)


def main() -> Iterator[str]:  # pragma: no cover - a developer's command
    for path, source in render().items():
        _check_parses(source)
        path.write_text(source)
        yield f"wrote {path}"


if __name__ == "__main__":  # pragma: no cover
    for line in main():
        print(line)
