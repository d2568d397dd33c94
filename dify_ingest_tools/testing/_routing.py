"""The URL map: which paths exist, and which route name each method reaches.

Matching happens before authentication, like Werkzeug's router in front of Dify's views: a path
that matches nothing gets the HTML 404 even without an ``Authorization`` header (03).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Werkzeug's uuid converter: 8-4-4-4-12 hex digits in either case (03b: upper case worked).
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Werkzeug's string converter: anything without a slash (batch ids are not validated).
_STRING = r"[^/]+"
_DATASET = rf"/v1/datasets/(?P<dataset_id>{_UUID})"
_DOCUMENT = rf"{_DATASET}/documents/(?P<document_id>{_UUID})"

ROUTE_NAMES = (
    "create_dataset",
    "get_dataset",
    "delete_dataset",
    "create_by_text",
    "create_by_file",
    "indexing_status",
    "list_documents",
    "get_document",
    "delete_document",
    "retrieve",
    # Document maintenance (recordings 09-16, handlers in _routes_documents).
    "update_by_text",
    "update_by_file",
    "document_status",
    "metadata_fields",
    "metadata_field",
    "builtin_fields",
    "builtin_action",
    "documents_metadata",
    "list_segments",
    "get_segment",
    # The knowledge-base list and knowledge pipelines (handlers in _routes_pipeline).
    "list_datasets",
    "pipeline_run",
)


@dataclass(frozen=True)
class PathRule:
    """A path pattern and the route name of each method it accepts."""

    pattern: re.Pattern[str]
    methods: Mapping[str, str]


def _rule(pattern: str, **methods: str) -> PathRule:
    return PathRule(re.compile(pattern), methods)


# Trailing slashes and the `indexing_status` underscore spelling are not registered, so they
# fall through to the HTML 404 (03). The deprecated underscore create aliases are registered.
RULES: tuple[PathRule, ...] = (
    _rule(r"/v1/datasets", POST="create_dataset", GET="list_datasets"),
    _rule(rf"{_DATASET}/pipeline/run", POST="pipeline_run"),
    _rule(_DATASET, GET="get_dataset", DELETE="delete_dataset"),
    _rule(rf"{_DATASET}/document/create(?:-by-|_by_)text", POST="create_by_text"),
    _rule(rf"{_DATASET}/document/create(?:-by-|_by_)file", POST="create_by_file"),
    _rule(rf"{_DATASET}/documents/(?P<batch>{_STRING})/indexing-status", GET="indexing_status"),
    _rule(rf"{_DATASET}/documents", GET="list_documents"),
    _rule(
        rf"{_DATASET}/documents/(?P<document_id>{_UUID})",
        GET="get_document",
        DELETE="delete_document",
        PATCH="update_by_file",
    ),
    _rule(rf"{_DATASET}/(?:retrieve|hit-testing)", POST="retrieve"),
    *(
        _rule(
            rf"{_DOCUMENT}/update(?:-by-|_by_)text",
            POST="update_by_text",
        ),
        _rule(
            rf"{_DOCUMENT}/update(?:-by-|_by_)file",
            POST="update_by_file",
        ),
        _rule(rf"{_DATASET}/documents/status/(?P<action>{_STRING})", PATCH="document_status"),
        _rule(rf"{_DATASET}/documents/metadata", POST="documents_metadata"),
        _rule(rf"{_DATASET}/metadata", GET="metadata_fields", POST="metadata_fields"),
        _rule(rf"{_DATASET}/metadata/built-in", GET="builtin_fields"),
        _rule(rf"{_DATASET}/metadata/built-in/(?P<action>{_STRING})", POST="builtin_action"),
        _rule(
            rf"{_DATASET}/metadata/(?P<metadata_id>{_UUID})",
            PATCH="metadata_field",
            DELETE="metadata_field",
        ),
        _rule(rf"{_DOCUMENT}/segments", GET="list_segments"),
        _rule(
            rf"{_DOCUMENT}/segments/(?P<segment_id>{_UUID})",
            GET="get_segment",
        ),
    ),
)


@dataclass(frozen=True)
class Match:
    """A path that matched a rule.

    Attributes:
        route: The route name for the request's method, or the path's first route name when
            the method is not allowed.
        allowed: Whether the method is allowed on this path.
        methods: The methods the path accepts.
        params: The path parameters (``dataset_id``, ``batch``, ``document_id``).
    """

    route: str
    allowed: bool
    methods: list[str]
    params: dict[str, str]


def match(method: str, path: str) -> Match | None:
    """Find the rule for a request; ``None`` when no path matches (the HTML 404)."""
    for rule in RULES:
        found = rule.pattern.fullmatch(path)
        if found is None:
            continue
        wanted = "GET" if method == "HEAD" else method
        route = rule.methods.get(wanted)
        return Match(
            route=route or next(iter(rule.methods.values())),
            allowed=route is not None,
            methods=list(rule.methods),
            params=found.groupdict(),
        )
    return None
