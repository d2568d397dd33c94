"""The blocking twin is the async client, blocking: same members, signatures and docstrings."""

from __future__ import annotations

import inspect

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.client.twin import LIFECYCLE, MAX_LINES, PARTS, public_members, render

ASYNC = public_members(AsyncDifyKnowledgeClient)
BLOCKING = public_members(DifyKnowledgeClient)


def test_the_generated_methods_are_current() -> None:
    rendered = render()
    assert sorted(rendered) == sorted(path for path, _ in PARTS)
    for path, source in rendered.items():
        assert path.read_text() == source, (
            f"{path.name} is stale: run `python -m dify_ingest_tools.client.twin`"
        )


def test_no_generated_module_is_longer_than_the_limit() -> None:
    for path, _ in PARTS:
        assert len(path.read_text().splitlines()) <= MAX_LINES, path.name


def test_both_clients_have_the_same_public_members() -> None:
    assert sorted(ASYNC) == sorted(BLOCKING)
    assert {"aclose"} <= set(dir(AsyncDifyKnowledgeClient)) and {"close"} <= LIFECYCLE


@pytest.mark.parametrize("name", sorted(ASYNC))
def test_each_member_has_the_same_signature_and_docstring(name: str) -> None:
    source, twin = ASYNC[name], BLOCKING[name]
    assert isinstance(source, property) == isinstance(twin, property)
    if isinstance(source, property):
        source, twin = source.fget, twin.fget
    theirs, ours = inspect.signature(source), inspect.signature(twin)
    shape = [(p.name, p.kind, p.default, p.annotation) for p in theirs.parameters.values()]
    assert shape == [(p.name, p.kind, p.default, p.annotation) for p in ours.parameters.values()]
    expected = str(theirs.return_annotation).replace("AsyncIterator[", "Iterator[", 1)
    assert str(ours.return_annotation) == expected
    assert inspect.getdoc(twin) == inspect.getdoc(source)
    assert inspect.getdoc(twin), f"{name} has no docstring"
