"""Metadata filters: from the ecosystems' filter dicts to Dify's ``metadata_filtering_conditions``.

Dify filters on one level only: a ``logical_operator`` (``and`` / ``or``) over a flat list of
``{name, comparison_operator, value}`` conditions (recording 12). String and number fields
use different operators (``is`` vs ``=``); an unknown field or value simply matches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: Every operator Dify 1.14.1 accepts (its 400 lists them, recording 12).
COMPARISON_OPERATORS = frozenset(
    {
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
    }
)

# Mongo-style operators (what LangChain stores take) -> (operator for strings, for numbers).
_OPERATORS: dict[str, tuple[str, str]] = {
    "$eq": ("is", "="),
    "$ne": ("is not", "≠"),
    "$gt": (">", ">"),
    "$gte": ("≥", "≥"),
    "$lt": ("<", "<"),
    "$lte": ("≤", "≤"),
    "$in": ("in", "in"),
    "$nin": ("not in", "not in"),
    "$contains": ("contains", "contains"),
    "$not_contains": ("not contains", "not contains"),
    "$startswith": ("start with", "start with"),
    "$endswith": ("end with", "end with"),
    "$before": ("before", "before"),
    "$after": ("after", "after"),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_value(key: str, value: Any) -> None:
    if isinstance(value, bool):
        raise ValueError(
            f"filter on {key!r}: Dify metadata has no boolean type (only string, number and "
            "time), so a boolean cannot match; filter on a string or number field"
        )
    if isinstance(value, Mapping):
        raise ValueError(f"filter on {key!r}: nested objects cannot be compared by Dify")


def _condition(name: str, operator: str, value: Any) -> dict[str, Any]:
    condition: dict[str, Any] = {"name": name, "comparison_operator": operator}
    if operator not in ("empty", "not empty"):
        condition["value"] = value
    return condition


def _field_conditions(
    key: str, spec: Any, field_name: Callable[[str], str]
) -> list[dict[str, Any]]:
    name = field_name(key)
    if not isinstance(spec, Mapping):
        if spec is None:
            return [_condition(name, "empty", None)]
        _check_value(key, spec)
        return [_condition(name, "=" if _is_number(spec) else "is", spec)]
    conditions = []
    for operator, value in spec.items():
        if operator == "$exists":
            conditions.append(_condition(name, "not empty" if value else "empty", None))
            continue
        if operator not in _OPERATORS:
            known = ", ".join(sorted([*_OPERATORS, "$exists"]))
            raise ValueError(f"filter on {key!r}: unknown operator {operator!r} (use {known})")
        if operator in ("$in", "$nin"):
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise ValueError(f"filter on {key!r}: {operator} takes a list of values")
            for item in value:
                _check_value(key, item)
            conditions.append(_condition(name, _OPERATORS[operator][0], list(value)))
            continue
        _check_value(key, value)
        for_string, for_number = _OPERATORS[operator]
        conditions.append(_condition(name, for_number if _is_number(value) else for_string, value))
    return conditions


def _flat(clauses: Any, key: str, field_name: Callable[[str], str]) -> list[dict[str, Any]]:
    if not isinstance(clauses, Sequence) or isinstance(clauses, (str, bytes)):
        raise ValueError(f"{key} takes a list of filters")
    conditions: list[dict[str, Any]] = []
    for clause in clauses:
        if not isinstance(clause, Mapping):
            raise ValueError(f"{key} takes a list of filters (dicts)")
        if any(str(name).startswith("$") for name in clause):
            raise ValueError(
                "Dify filters on one level only: an $and / $or list cannot nest another one"
            )
        for name, spec in clause.items():
            conditions.extend(_field_conditions(str(name), spec, field_name))
    return conditions


def metadata_conditions(
    filter: Mapping[str, Any], field_name: Callable[[str], str] = str
) -> dict[str, Any]:
    """Translate a filter into Dify's ``metadata_filtering_conditions``.

    Accepted forms:

    * Dify's own: ``{"logical_operator": "and", "conditions": [{"name", "comparison_operator",
      "value"}, ...]}`` (passed through after checking the operators; names untouched);
    * equality: ``{"author": "ann", "year": 2024}`` (all must hold);
    * operators: ``{"year": {"$gte": 2020, "$lt": 2025}, "tag": {"$in": ["a", "b"]}}``
      (``$eq $ne $gt $gte $lt $lte $in $nin $contains $not_contains $startswith
      $endswith $before $after $exists``);
    * one ``{"$and": [...]}`` or ``{"$or": [...]}`` list of the above.

    Args:
        filter: The filter.
        field_name: Maps a metadata key to its Dify field name (stores rename keys that
            collide with Dify's built-in fields).

    Raises:
        ValueError: For a shape Dify cannot express (nesting, booleans, unknown operators).
    """
    if not isinstance(filter, Mapping):
        raise ValueError(f"a metadata filter is a dict, got {type(filter).__name__}")
    if "conditions" in filter:
        operator = filter.get("logical_operator", "and")
        if operator not in ("and", "or"):
            raise ValueError("logical_operator must be 'and' or 'or'")
        conditions = [dict(item) for item in filter["conditions"]]
        for condition in conditions:
            if condition.get("comparison_operator") not in COMPARISON_OPERATORS:
                raise ValueError(
                    f"unknown comparison_operator {condition.get('comparison_operator')!r}; "
                    f"Dify accepts {', '.join(sorted(COMPARISON_OPERATORS))}"
                )
        return {"logical_operator": operator, "conditions": conditions}
    logical = "and"
    if set(filter) & {"$and", "$or"}:
        if len(filter) != 1:
            raise ValueError("use $and or $or alone at the top level of a filter")
        key, clauses = next(iter(filter.items()))
        logical = "and" if key == "$and" else "or"
        conditions = _flat(clauses, key, field_name)
    else:
        conditions = _flat([filter], "$and", field_name)
    if not conditions:
        raise ValueError("the filter has no conditions")
    return {"logical_operator": logical, "conditions": conditions}
