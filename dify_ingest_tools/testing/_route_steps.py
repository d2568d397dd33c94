"""What every route handler shares: the dataset of the path, the body, its JSON, query ints.

The dataset step keeps Dify's precedence: its decorator's 404/403 come before any body
validation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._core import Core
from ._http import error_response, not_found
from ._state import Dataset
from ._validation import Payload

Handler = Callable[[Core, web.BaseRequest, dict[str, str]], Awaitable[web.Response]]

_BAD_JSON = "Invalid JSON payload received or JSON payload is empty."


def _dataset(
    core: Core, request: web.BaseRequest, params: dict[str, str], route: str
) -> Dataset | web.Response:
    """The dataset of the path, or the 404/403 Dify's dataset decorator answers."""
    dataset = core.store.dataset(params["dataset_id"])
    if dataset is None:
        message = "Dataset not found."
        if route in ("create_by_text", "create_by_file"):
            # flask-restx appends its "did you mean" help to 404s raised on these routes (03).
            message += _did_you_mean(request.path, route)
        return not_found(message)
    if not dataset.enable_api:
        return error_response(403, "forbidden", "Dataset api access is not enabled.")
    return dataset


def _did_you_mean(path: str, route: str) -> str:
    kind, other = ("text", "file") if route == "create_by_text" else ("file", "text")
    base = "/v1/datasets/<uuid:dataset_id>/document/"
    return (
        f" You have requested this URI [{path}] but did you mean {base}create-by-{kind} or "
        f"{base}create_by_{kind} or {base}create-by-{other} ?"
    )


async def _body(request: web.BaseRequest) -> bytes:
    # `request.content` rather than `request.read()`: no 1 MiB cap, Dify takes large texts.
    return await request.content.read()


def _parse_json(raw: bytes) -> Any:
    """The decoded body; raises ``ValueError`` for malformed JSON."""
    # Dify validates `ns.payload or {}`, so an empty body reports every missing field.
    return json.loads(raw) if raw.strip() else {}


def _payload(raw: bytes, model: str) -> Payload | web.Response:
    """The JSON body, ready to validate as Dify's ``model``; or its 400 for malformed JSON."""
    try:
        data = _parse_json(raw)
    except ValueError:
        return error_response(400, "bad_request", _BAD_JSON)
    return Payload(model, data)


def like_pattern(keyword: str) -> re.Pattern[str]:
    """Dify's ``name LIKE '%keyword%'``: case-sensitive, and ``%``/``_`` are wildcards (15)."""
    parts: list[str] = []
    chars = iter(keyword)
    for char in chars:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        elif char == "\\":  # PostgreSQL's default escape character
            parts.append(re.escape(next(chars, "")))
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _int_arg(value: str | None, default: int) -> int:
    # Flask's `request.args.get(..., type=int)` falls back to the default on bad input.
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
