"""The typed errors for an answer that is not a 2xx of Dify's JSON API.

An error status, a redirect, a web page, JSON cut off mid-way (``invalid_json``, transient),
text or HTML (``not_json``: something else answered), JSON of another shape
(``unexpected_shape``), or a body over the size limit (``response_too_large``).
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import Any, NoReturn

from pydantic import ValidationError
from yarl import URL

from dify_ingest_tools._base.config import public_url
from dify_ingest_tools._base.redaction import scrub
from dify_ingest_tools._http.responses import decode_json, error_from_response, not_dify_hint
from dify_ingest_tools.errors import DifyResponseError


def raise_for_answer(
    status: int, headers: Mapping[str, str], raw: bytes, url: URL, method: str
) -> NoReturn:
    """Raise the typed error for an answer that is not a 2xx of Dify's JSON API."""
    shown = public_url(url)
    if status >= 400:
        raise error_from_response(status, raw, headers, url=shown, method=method)
    if status >= 300:
        raise DifyResponseError(
            f"unexpected redirect to {scrub(headers.get('Location', '?'), 300)!r}",
            status=status,
            code="redirect",
            url=shown,
            method=method,
            hint=not_dify_hint(shown),
        )
    raise not_json(raw, url, method, status)


def too_large(message: str, status: int, url: URL, method: str) -> DifyResponseError:
    return DifyResponseError(
        message,
        status=status,
        code="response_too_large",
        url=public_url(url),
        method=method,
        hint="A Dify answer is never this large: check base_url, or raise max_response_bytes.",
    )


_HTML_TYPES: dict[str, bool] = {}
_HTML_CACHE_SIZE = 64


def is_html(content_type: str | None) -> bool:
    # Cached: a server sends the same few Content-Type values on every answer.
    if content_type is None:
        return False
    html = _HTML_TYPES.get(content_type)
    if html is None:
        kind = content_type.split(";", 1)[0].strip().lower()
        html = kind in ("text/html", "application/xhtml+xml")
        if len(_HTML_TYPES) >= _HTML_CACHE_SIZE:
            _HTML_TYPES.clear()
        _HTML_TYPES[content_type] = html
    return html


def first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))


def shape_error(detail: str, payload: Any, url: URL, method: str) -> DifyResponseError:
    snippet = jsonlib.dumps(payload, default=str)[:300] if payload is not None else "(empty body)"
    return DifyResponseError(
        f"unexpected answer shape — {detail}; got {snippet}",
        status=200,
        code="unexpected_shape",
        url=public_url(url),
        method=method,
        body=payload,
        hint=not_dify_hint(public_url(url)),
    )


def validation_error(
    exc: ValidationError, raw: bytes, url: URL, method: str, model: str = ""
) -> DifyResponseError:
    """The error for a 2xx body validated straight from its bytes.

    JSON that does not parse (cut off, garbled, nested absurdly deep) is ``invalid_json``;
    JSON of another shape is ``unexpected_shape``, named after ``model`` when given.
    """
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        return invalid_json(raw, url, method)
    detail = f"{model}: {first_error(exc)}" if model else first_error(exc)
    return shape_error(detail, loads_or_text(raw), url, method)


def loads_or_text(raw: bytes) -> Any:
    try:
        return decode_json(raw)
    except ValueError:
        return raw[:300].decode("utf-8", errors="replace")


def invalid_json(raw: bytes, url: URL, method: str, status: int = 200) -> DifyResponseError:
    """The error for a 2xx body that does not parse.

    JSON that starts but does not parse (cut off, garbled: a dropped connection or a
    proxy) is ``invalid_json``, transient. Anything else (an HTML page, plain text) is
    ``not_json``: something other than Dify's API answered, which retrying will not change.
    """
    start = raw.lstrip()[:1]
    if start and start not in (b"{", b"["):
        return not_json(raw, url, method, status)
    text = raw[:4000].decode("utf-8", errors="replace")
    return DifyResponseError(
        f"the answer is not valid JSON (cut off or garbled): {scrub(text, 200)!r}",
        status=status,
        code="invalid_json",
        url=public_url(url),
        method=method,
        body=text,
    )


def not_json(raw: bytes, url: URL, method: str, status: int = 200) -> DifyResponseError:
    """The error for a 2xx that is a web page or text, not Dify's JSON API."""
    text = raw[:4000].decode("utf-8", errors="replace")
    looks_html = text.lstrip()[:1] == "<"
    what = "an HTML page" if looks_html else "text that is not JSON"
    shown = public_url(url)
    return DifyResponseError(
        f"the server answered HTTP {status} with {what}, not Dify's JSON: {scrub(text, 200)!r}",
        status=status,
        code="not_json",
        url=shown,
        method=method,
        body=text,
        hint=not_dify_hint(shown),
    )
