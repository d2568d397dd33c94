"""Which exception an HTTP response becomes: the one place that decides."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from datetime import timezone
from http import HTTPStatus
from typing import Any

from dify_ingest_tools.errors import (
    RATE_LIMIT_MARKER,
    DifyAPIError,
    DifyAuthenticationError,
    DifyDocumentNotAvailableError,
    DifyNotFoundError,
    DifyPermissionError,
    DifyRateLimitError,
    DifyServerError,
    NotFoundResource,
)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or an HTTP date) into seconds (>= 0).

    Negative values and past dates give 0; ``nan``, ``inf`` and garbage give None. The retry
    policy then applies its own floor and ceiling (see `RetryPolicy.delay`).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan" and "inf" parse as floats: a server that says them said nothing usable.
        return max(0.0, seconds) if math.isfinite(seconds) else None
    import email.utils  # only HTTP-date Retry-After values need it

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _text_summary(text: str, status: int) -> str:
    """A short human message for a non-JSON error body (usually an HTML page)."""
    text = text[:65536]  # a title or a first sentence is near the top
    title = _TITLE.search(text)
    summary = title.group(1) if title else " ".join(_TAG.sub(" ", text).split())
    summary = summary.strip()[:200]
    return summary or _phrase(status)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _code_for(status: int) -> str:
    phrase = _phrase(status)
    return "_".join(phrase.lower().replace("-", " ").split()) if phrase else str(status)


def _not_found_resource(message: str, is_json: bool) -> NotFoundResource:
    if not is_json:
        return "route"
    lowered = message.lower()
    if lowered.startswith("dataset not found"):
        return "dataset"
    if lowered.startswith("documents not found"):
        return "documents"
    if lowered.startswith(("document not found", "document not exists")):
        return "document"
    return "unknown"


BASE_URL_HINT = (
    "Is base_url the API root ending in /v1 (https://api.dify.ai/v1, http://your-host/v1), "
    "not the web console's address?"
)


def not_dify_hint(url: str) -> str:
    """What to check when something other than Dify's API answered ``url``."""
    if url and "/v1/" not in url:
        return f"base_url has no /v1 path. {BASE_URL_HINT}"
    return BASE_URL_HINT


def decode_json(raw: bytes | str) -> Any:
    """Parse a JSON body; raise ValueError for anything unusable (absurd nesting included).

    The one parser for error bodies and generic success bodies, so both fail the same way.
    """
    try:
        return json.loads(raw)
    except RecursionError:  # `[` x 100,000: deeper than the parser's recursion limit
        raise ValueError("JSON nested too deeply") from None


def error_from_response(
    status: int,
    body: str | bytes,
    headers: Mapping[str, str] | None = None,
    *,
    url: str = "",
    method: str = "",
) -> DifyAPIError:
    """Build the typed error for an HTTP error answer.

    Args:
        status: HTTP status (>= 400).
        body: The body (text or bytes); Dify's JSON envelope ``{"code", "message", "status"}``
            or any other text (proxies answer with HTML). Any size and nesting: what is kept
            is redacted and bounded.
        headers: Response headers (``Retry-After`` is read from them).
        url: The request URL, already free of secrets.
        method: The request method.
    """
    headers = headers or {}
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    payload: Any = None
    is_json = False
    if text.strip():
        try:
            payload = decode_json(text)
        except ValueError:
            payload = None
    if isinstance(payload, dict) and ("message" in payload or "code" in payload):
        is_json = True
        message = str(payload.get("message") or "")
        code = str(payload.get("code") or _code_for(status))
        stored: Any = payload
    else:
        message = _text_summary(text, status) if text else _phrase(status)
        code = _code_for(status)
        stored = text
    # A page that is not Dify's envelope: for a 4xx, something other than Dify's API answered.
    hint = None if is_json or status >= 500 else not_dify_hint(url)
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "url": url,
        "method": method,
        "body": stored,
        "hint": hint,
        "from_dify": is_json,
    }
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    if status == 401:
        return DifyAuthenticationError(message, **common)
    if status == 403:
        if RATE_LIMIT_MARKER in message.lower():
            return DifyRateLimitError(message, retry_after=retry_after, **common)
        return DifyPermissionError(message, **common)
    if status == 404:
        return DifyNotFoundError(message, resource=_not_found_resource(message, is_json), **common)
    if status == 429:
        return DifyRateLimitError(message, retry_after=retry_after, **common)
    if status >= 500:
        return DifyServerError(message, **common)
    if status == 400 and _is_unavailable(message):
        return DifyDocumentNotAvailableError(message, **common)
    return DifyAPIError(message, **common)


_UNAVAILABLE_MARKERS = (
    "document is not available",
    "please try again later",
    "is not completed.",
)


def _is_unavailable(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _UNAVAILABLE_MARKERS)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value
