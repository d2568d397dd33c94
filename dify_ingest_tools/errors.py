"""The exception hierarchy, and the one function that maps an HTTP response to a class.

```
DifyError
├── DifyAPIError                      HTTP answered with an error (.status .code .message .url)
│   ├── DifyAuthenticationError       401
│   ├── DifyPermissionError           403 (API access disabled, plan limits, ...)
│   ├── DifyRateLimitError            429, and Dify Cloud's 403 knowledge rate limit
│   ├── DifyNotFoundError             404 (.resource tells dataset / documents / document / route)
│   ├── DifyServerError               5xx, JSON or a proxy's HTML page
│   └── DifyResponseError             2xx whose body is not the JSON we expect
├── DifyConnectionError               the request never got an HTTP answer
│   └── DifyTimeoutError              ... because it ran out of time (also a TimeoutError)
└── IndexingError                     a wait ended without the batch being ready (.last_status)
    ├── IndexingFailedError           a document ended in `error` (or paused with on_paused="fail")
    ├── IndexingTimeoutError          the deadline passed (also a TimeoutError)
    └── IndexingStalledError          nothing changed for stall_timeout seconds
```
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .models import BatchIndexingStatus, DocumentIndexingStatus

__all__ = [
    "RATE_LIMIT_MESSAGE",
    "DifyAPIError",
    "DifyAuthenticationError",
    "DifyConnectionError",
    "DifyError",
    "DifyNotFoundError",
    "DifyPermissionError",
    "DifyRateLimitError",
    "DifyResponseError",
    "DifyServerError",
    "DifyTimeoutError",
    "IndexingError",
    "IndexingFailedError",
    "IndexingStalledError",
    "IndexingTimeoutError",
    "error_from_response",
    "parse_retry_after",
]

# Dify Cloud answers its per-workspace knowledge rate limit with 403 `forbidden`, not 429, and
# sends no Retry-After (contract §c). Only the message tells it from a fatal 403.
RATE_LIMIT_MESSAGE = (
    "Sorry, you have reached the knowledge base request rate limit of your subscription."
)
_RATE_LIMIT_MARKER = "request rate limit"

NotFoundResource = Literal["dataset", "documents", "document", "route", "unknown"]


class DifyError(Exception):
    """Base class of every error this library raises.

    Attributes:
        last_status: For errors raised by a wait, the last observed batch status (or None).
    """

    last_status: BatchIndexingStatus | None = None


class DifyAPIError(DifyError):
    """Dify (or a proxy in front of it) answered with an HTTP error.

    Attributes:
        status: The HTTP status code.
        code: Dify's error code (``not_found``, ``unauthorized``, ...), or one derived from the
            status when the body was not Dify's JSON envelope (an HTML page from a proxy).
        message: Dify's message, verbatim; for non-JSON bodies a short description.
        url: The request URL. It never contains the API key (the key only travels in a header).
        method: The request method.
        body: The decoded JSON body, or the raw text cut to 2,000 characters.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        url: str = "",
        method: str = "",
        body: Any = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.url = url
        self.method = method
        self.body = body
        self.hint = hint
        super().__init__(message)

    def _describe(self) -> str:
        where = f" [{self.method} {self.url}]" if self.url else ""
        text = self.message or "(Dify sent no message)"
        hint = f" {self.hint}" if self.hint else ""
        return f"{text} (HTTP {self.status}, code {self.code!r}){where}{hint}"

    def __str__(self) -> str:
        return self._describe()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"message={self.message!r}, url={self.url!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not pickle by default; errors cross process pools.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[DifyAPIError], state: dict[str, Any]) -> DifyAPIError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.message)
    return error


class DifyAuthenticationError(DifyAPIError):
    """401: the API key is missing, malformed or not a valid *dataset* key."""


class DifyPermissionError(DifyAPIError):
    """403: the key may not do this (dataset API access disabled, a plan limit, ...)."""


class DifyRateLimitError(DifyAPIError):
    """429, or Dify Cloud's 403 knowledge-base rate limit. Transient: cool down and retry.

    Attributes:
        retry_after: Seconds to wait as the server asked (``Retry-After``), or None when the
            server did not say. Dify's own 403 rate limit never says; its window is 60 s.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)

    @property
    def is_knowledge_rate_limit(self) -> bool:
        """True for Dify Cloud's per-workspace knowledge rate limit (a 403)."""
        return self.status == 403


class DifyNotFoundError(DifyAPIError):
    """404. ``resource`` says what was missing.

    * ``"dataset"`` — ``Dataset not found.``: wrong dataset id, or a dataset of another workspace.
    * ``"documents"`` — ``Documents not found.``: the batch is unknown, belongs to another
      dataset, its documents were deleted, or it is not visible *yet* (right after creation).
    * ``"document"`` — ``Document not found.`` for a document id.
    * ``"route"`` — an HTML 404 page: the path did not match any route (wrong base URL, or a
      server that does not have this endpoint).
    """

    def __init__(self, message: str, *, resource: NotFoundResource = "unknown", **kw: Any) -> None:
        self.resource = resource
        super().__init__(message, **kw)

    @property
    def is_dataset_missing(self) -> bool:
        return self.resource == "dataset"

    @property
    def is_batch_missing(self) -> bool:
        return self.resource == "documents"


class DifyServerError(DifyAPIError):
    """5xx from Dify or a proxy in front of it. Transient for reads."""


class DifyResponseError(DifyAPIError):
    """A 2xx answer whose body is not JSON, or not the shape this endpoint returns."""


class DifyConnectionError(DifyError):
    """No HTTP answer: DNS, refused or dropped connection, TLS failure."""

    def __init__(self, message: str, *, url: str = "", method: str = "") -> None:
        self.url = url
        self.method = method
        self.message = message
        super().__init__(f"{message} [{method} {url}]" if url else message)


class DifyTimeoutError(DifyConnectionError, TimeoutError):
    """The request got no complete answer within its time budget."""


class IndexingError(DifyError):
    """A wait ended without the batch being ready.

    Attributes:
        last_status: The last observed batch status, or None when none was observed.
    """

    def __init__(self, message: str, *, last_status: BatchIndexingStatus | None = None) -> None:
        self.last_status = last_status
        super().__init__(message)


class IndexingFailedError(IndexingError):
    """At least one document of the batch ended in ``error`` (or was paused, if asked to fail)."""

    @property
    def failed_documents(self) -> tuple[DocumentIndexingStatus, ...]:
        return self.last_status.failed_documents if self.last_status else ()


class IndexingTimeoutError(IndexingError, TimeoutError):
    """The wait's deadline passed. Dify is still indexing server-side and may finish later."""


class IndexingStalledError(IndexingError):
    """Nothing observable changed for ``stall_timeout`` seconds: the indexing worker may be down."""


# ---------------------------------------------------------------------------------------------
# status -> class: the one place that decides


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or an HTTP date) into seconds (>= 0)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
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


def error_from_response(
    status: int,
    body: str,
    headers: Mapping[str, str] | None = None,
    *,
    url: str = "",
    method: str = "",
) -> DifyAPIError:
    """Build the typed error for an HTTP error answer.

    Args:
        status: HTTP status (>= 400).
        body: The body as text; Dify's JSON envelope ``{"code", "message", "status"}`` or any
            other text (proxies answer with HTML).
        headers: Response headers (``Retry-After`` is read from them).
        url: The request URL, already free of secrets.
        method: The request method.
    """
    headers = headers or {}
    payload: Any = None
    is_json = False
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and ("message" in payload or "code" in payload):
        is_json = True
        message = str(payload.get("message") or "")
        code = str(payload.get("code") or _code_for(status))
        stored: Any = payload
    else:
        message = _text_summary(body, status) if body else _phrase(status)
        code = _code_for(status)
        stored = body[:2000]
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "url": url,
        "method": method,
        "body": stored,
    }
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    if status == 401:
        return DifyAuthenticationError(message, **common)
    if status == 403:
        if _RATE_LIMIT_MARKER in message.lower():
            return DifyRateLimitError(message, retry_after=retry_after, **common)
        return DifyPermissionError(message, **common)
    if status == 404:
        return DifyNotFoundError(message, resource=_not_found_resource(message, is_json), **common)
    if status == 429:
        return DifyRateLimitError(message, retry_after=retry_after, **common)
    if status >= 500:
        return DifyServerError(message, **common)
    return DifyAPIError(message, **common)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value
