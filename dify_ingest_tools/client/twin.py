"""Writes `blocking.py`: the blocking twin's methods, generated from the async client.

The blocking `DifyKnowledgeClient` once forwarded its 37 methods by hand, and seven
signatures drifted from the async ones (a lost ``deadline``, six collapsed to ``**options``).
Now every public method and property of `AsyncDifyKnowledgeClient` is rendered here into a
typed, one-line forward with the same parameters, defaults, return annotation and docstring;
``tests/test_blocking_twin.py`` fails when the file on disk is not what this renders (run
``python -m dify_ingest_tools.client.twin`` to write it again) and compares both clients' members.

Rules: a coroutine method runs on the client's worker loop (``self._run``); an async
generator is driven as a blocking iterator (``self._worker.iterate``); a plain method or a
property is forwarded as is. ``Iterable`` arguments are materialised on the caller's thread,
so a generator is not consumed from the loop's thread. Lifecycle (``aclose``, ``async with``)
stays hand-written on each client.
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

__all__ = ["LIFECYCLE", "OUTPUT", "public_members", "render"]

#: Members each client writes by hand: its own way to close and to enter a ``with``.
LIFECYCLE = frozenset({"aclose", "close", "async_client"})
OUTPUT = Path(__file__).with_name("blocking.py")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BUILTINS = frozenset({"str", "int", "float", "bool", "bytes", "None", "dict", "list", "tuple"})
_BUILTINS |= frozenset({"set", "type", "object"})
# Imported by the generated module at run time (not again under TYPE_CHECKING).
_RUNTIME = {
    "typing": {"Any", "TypeVar", "TYPE_CHECKING"},
    "collections.abc": {"Coroutine"},
    "dify_ingest_tools.models.created": {"CreatedDocument"},
}


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
            value = f"_listed({parameter.name})"
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


def render() -> str:
    """The source of `blocking.py` for the async client as it is now."""
    client = importlib.import_module("dify_ingest_tools.client.async_client")
    imports = _Imports()
    body: list[str] = []
    for name, member in public_members(client.AsyncDifyKnowledgeClient).items():
        body.append("")
        if isinstance(member, property):
            body += _property(name, member, imports)
        else:
            body += _method(name, member, imports)
    head = [
        '"""The blocking twin\'s methods: GENERATED by `twin.py` from `AsyncDifyKnowledgeClient`.',
        "",
        "Do not edit: run ``python -m dify_ingest_tools.client.twin`` after changing the async",
        "client.",
        '"""',
        "",
        "# ruff: noqa: I001",
        "from __future__ import annotations",
        "",
        "from collections.abc import Coroutine",
        "from typing import TYPE_CHECKING, Any, TypeVar",
        "",
        "from dify_ingest_tools.models.created import CreatedDocument",
        "",
        "if TYPE_CHECKING:",
        "    from dify_ingest_tools.client.bridge import LoopThread",
        "    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient",
        *imports.render(),
        "",
        '__all__ = ["BlockingMethods"]',
        "",
        'T = TypeVar("T")',
        "",
        "",
        "def _listed(value: Any) -> Any:",
        '    """An iterable argument as a list (a str or one created document stays itself)."""',
        "    if isinstance(value, (str, bytes, CreatedDocument)):",
        "        return value",
        "    return list(value)",
        "",
        "",
        "class BlockingMethods:",
        '    """Every public method and property of the async client, blocking."""',
        "",
        "    if TYPE_CHECKING:",
        "        _async: AsyncDifyKnowledgeClient",
        "        _worker: LoopThread",
        "",
        "        def _run(self, coro: Coroutine[Any, Any, T]) -> T: ...",
    ]
    return "\n".join([*head, *body]) + "\n"


def _check_parses(source: str) -> None:
    ast.parse(source)


def main() -> Iterator[str]:  # pragma: no cover - a developer's command
    source = render()
    _check_parses(source)
    OUTPUT.write_text(source)
    yield f"wrote {OUTPUT}"


if __name__ == "__main__":  # pragma: no cover
    for line in main():
        print(line)
