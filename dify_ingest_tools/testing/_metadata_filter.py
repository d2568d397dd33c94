"""Which documents a retrieve searches: enabled, not archived, and matching its metadata filter.

``retrieval_model.metadata_filtering_conditions`` is ``{"logical_operator": "and" | "or",
"conditions": [{"name", "comparison_operator", "value"}]}``; an unknown field or value matches
nothing, an unknown operator is a 400 listing the allowed ones (recording 12).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._clock import Epoch
from ._documents_views import BUILT_IN_FIELDS, builtin_value
from ._http import invalid_param
from ._state import Dataset, Document
from ._validation import FieldError, validation_message

#: In the order Dify's 400 lists them.
OPERATORS = (
    "contains",
    "not contains",
    "start with",
    "end with",
    "is",
    "is not",
    "empty",
    "not empty",
    "in",
    "not in",
    "=",
    "≠",
    ">",
    "<",
    "≥",
    "≤",
    "before",
    "after",
)
_NUMERIC = {"=", "≠", ">", "<", "≥", "≤", "before", "after"}
_MODEL = "HitTestingPayload"
_WHERE = "retrieval_model.metadata_filtering_conditions"


def ranks_everything(dataset: Dataset, model: dict[str, Any] | None) -> bool:
    """Whether the search behaves like a vector index (every segment ranked, none dropped).

    A ``high_quality`` dataset searched semantically (or hybrid / full text) returns its
    nearest neighbours whatever they say; keyword search, and every search of an economy
    dataset (it has only the keyword table), returns only segments sharing a query word.
    """
    method = (model or dataset.retrieval_model).get("search_method")
    return dataset.indexing_technique == "high_quality" and method != "keyword_search"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _holds(operator: str, actual: Any, expected: Any) -> bool:
    if operator == "empty":
        return actual is None or actual == ""
    if operator == "not empty":
        return actual is not None and actual != ""
    if actual is None:
        return False
    if operator in _NUMERIC:
        left, right = _number(actual), _number(expected)
        if left is None or right is None:
            return False
        return {
            "=": left == right,
            "≠": left != right,
            ">": left > right,
            "<": left < right,
            "≥": left >= right,
            "≤": left <= right,
            "before": left < right,
            "after": left > right,
        }[operator]
    text = str(actual)
    if operator in ("in", "not in"):
        options = expected if isinstance(expected, list) else str(expected).split(",")
        found = text in [str(option) for option in options]
        return found if operator == "in" else not found
    wanted = str(expected)
    return {
        "contains": wanted in text,
        "not contains": wanted not in text,
        "start with": text.startswith(wanted),
        "end with": text.endswith(wanted),
        "is": text == wanted,
        "is not": text != wanted,
    }[operator]


def _value(dataset: Dataset, document: Document, name: str, epoch: Epoch) -> Any:
    for entry in document.state.metadata.values():
        if entry["name"] == name:
            return entry["value"]
    if dataset.metadata.built_in_enabled and any(name == n for n, _ in BUILT_IN_FIELDS):
        return builtin_value(document, name, epoch)
    return None


def _known(dataset: Dataset, name: str) -> bool:
    if dataset.metadata.by_name(name) is not None:
        return True
    return dataset.metadata.built_in_enabled and any(name == n for n, _ in BUILT_IN_FIELDS)


def document_filter(
    dataset: Dataset, model: dict[str, Any] | None, now: float, epoch: Epoch
) -> Callable[[Document], bool] | web.Response:
    """The documents the retrieve may return, or the 400 for a malformed filter."""
    spec = (model or {}).get("metadata_filtering_conditions")
    conditions: list[dict[str, Any]] = []
    logical = "and"
    if isinstance(spec, dict):
        logical = spec.get("logical_operator") or "and"
        raw = spec.get("conditions") or []
        for index, condition in enumerate(raw if isinstance(raw, list) else []):
            operator = condition.get("comparison_operator") if isinstance(condition, dict) else None
            if operator not in OPERATORS:
                quoted = [repr(o) for o in OPERATORS]
                expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}"
                error = FieldError(
                    f"{_WHERE}.conditions.{index}.comparison_operator",
                    f"Input should be {expected}",
                    "literal_error",
                    operator,
                )
                return invalid_param(validation_message(_MODEL, [error]))
            conditions.append(condition)

    def accept(document: Document) -> bool:
        if not document.state.in_index(now):
            return False  # disabled or archived, once the change reached the index
        if not conditions:
            return True
        results = [
            _known(dataset, str(c.get("name")))
            and _holds(
                c["comparison_operator"],
                _value(dataset, document, str(c.get("name")), epoch),
                c.get("value"),
            )
            for c in conditions
        ]
        return any(results) if logical == "or" else all(results)

    return accept
