"""The one request path: a session, a budget, per-attempt timeouts, retries, typed errors.

`AsyncDifyKnowledgeClient` builds the URLs and reads the answers; everything between "send
this" and "here are the bytes, or a typed error" happens here, once.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from pydantic import ValidationError
from yarl import URL

from ._budget import RequestBudget
from ._config import public_url
from ._policy import RetryPolicy
from .errors import (
    DifyAPIError,
    DifyConnectionError,
    DifyError,
    DifyResponseError,
    DifyTimeoutError,
    error_from_response,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Transport",
    "first_error",
    "invalid_json",
    "loads_or_text",
    "shape_error",
    "short",
]

logger = logging.getLogger("dify_ingest_tools")

# Bodies larger than this are refused: an indexing-status answer for a 100-document batch is
# a few tens of KB, so a body this size means a broken or hostile server.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_READ_CHUNK = 64 * 1024


class Transport:
    """One ``aiohttp.ClientSession`` (opened on first use) and the request path over it.

    A caller-supplied session is used as is and never closed here.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        timeout: float,
        retry_policy: RetryPolicy,
        max_response_bytes: int,
        budget: RequestBudget | None,
        session: aiohttp.ClientSession | None,
    ) -> None:
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.max_response_bytes = max_response_bytes
        self.budget = budget
        self._headers = dict(headers)
        self._default_timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        self._closed = False
        # Injectable, for tests.
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.rng = random.Random()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session in use, if one was opened or given."""
        return self._session

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the Dify client is closed; create a new client")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport opened it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    async def request(
        self,
        method: str,
        url: URL,
        *,
        json_body: Any = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        deadline: float | None = None,
        retry: bool = True,
    ) -> bytes:
        """Send one logical request with transport retries; return the 2xx body.

        ``deadline`` (a `time.monotonic` instant) bounds every attempt and every backoff.
        ``retry=False`` makes a single attempt (the monitor retries on its own schedule).
        Error answers are raised as typed errors; callers decode the body (`json`).
        """
        session = self._open()
        attempt = 0
        while True:
            timeout = self._default_timeout
            if deadline is not None:
                left = deadline - self.clock()
                if left <= 0:
                    raise DifyTimeoutError(
                        "the deadline passed before the request could be sent",
                        url=public_url(url),
                        method=method,
                    )
                if left < self.timeout:
                    timeout = aiohttp.ClientTimeout(total=left)
            if self.budget is not None:
                await self.budget.acquire(deadline)
            try:
                return await self._attempt(
                    session,
                    method,
                    url,
                    json_body=json_body,
                    data=form() if form is not None else None,
                    params=params,
                    timeout=timeout,
                )
            except DifyError as error:
                if not self.retry_policy.should_retry(
                    attempt, error, idempotent=idempotent and retry
                ):
                    raise
                delay = self.retry_policy.delay(attempt, error, self.rng)
                if deadline is not None and self.clock() + delay >= deadline:
                    raise
                attempt += 1
                logger.info(
                    "%s %s failed (%s); retry %d/%d in %.2fs",
                    method,
                    public_url(url),
                    short(error),
                    attempt,
                    self.retry_policy.max_retries,
                    delay,
                )
                await self.sleep(delay)

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        *,
        json_body: Any,
        data: aiohttp.FormData | None,
        params: Mapping[str, str] | None,
        timeout: aiohttp.ClientTimeout,
    ) -> bytes:
        started = self.clock()
        try:
            async with session.request(
                method,
                url,
                headers=self._headers,
                json=json_body,
                data=data,
                params=params,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                raw = await self._read_body(response, url, method)
                status = response.status
                headers = response.headers
        except asyncio.TimeoutError as exc:
            raise DifyTimeoutError(
                f"no complete answer within {timeout.total or 0:.1f}s",
                url=public_url(url),
                method=method,
            ) from exc
        except aiohttp.ClientResponseError as exc:
            # Its repr carries the request headers (and so the key): do not chain it.
            raise DifyConnectionError(
                f"malformed HTTP answer ({exc.status}: {exc.message})",
                url=public_url(url),
                method=method,
            ) from None
        except aiohttp.ClientError as exc:
            raise DifyConnectionError(
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                url=public_url(url),
                method=method,
            ) from exc
        if logger.isEnabledFor(logging.DEBUG):
            elapsed_ms = (self.clock() - started) * 1000
            logger.debug("%s %s -> %d in %.1f ms", method, public_url(url), status, elapsed_ms)
        if status >= 300:
            shown = public_url(url)
            text = raw.decode("utf-8", errors="replace")
            if status >= 400:
                raise error_from_response(status, text, headers, url=shown, method=method)
            raise DifyResponseError(
                f"unexpected redirect to {headers.get('Location', '?')!r}; check base_url "
                "(it should end in /v1)",
                status=status,
                code="redirect",
                url=shown,
                method=method,
            )
        return raw

    async def json(self, method: str, url: URL, **kwargs: Any) -> Any:
        """`request`, then decode the JSON body (None for an empty body, e.g. a 204)."""
        raw = await self.request(method, url, **kwargs)
        if not raw.strip():
            return None
        try:
            return jsonlib.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise invalid_json(raw, url, method) from None

    async def _read_body(self, response: aiohttp.ClientResponse, url: URL, method: str) -> bytes:
        limit = self.max_response_bytes
        declared = response.content_length
        if declared is not None:
            if declared > limit:
                raise DifyResponseError(
                    f"the answer is {declared} bytes, over the {limit}-byte limit",
                    status=response.status,
                    code="response_too_large",
                    url=public_url(url),
                    method=method,
                )
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise DifyResponseError(
                    f"the answer exceeded the {limit}-byte limit",
                    status=response.status,
                    code="response_too_large",
                    url=public_url(url),
                    method=method,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def short(error: BaseException) -> str:
    if isinstance(error, DifyAPIError):
        return f"HTTP {error.status} {error.code}: {error.message[:120]}"
    return f"{type(error).__name__}: {str(error)[:160]}"


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
    )


def loads_or_text(raw: bytes) -> Any:
    try:
        return jsonlib.loads(raw)
    except (ValueError, RecursionError):
        return raw[:300].decode("utf-8", errors="replace")


def invalid_json(raw: bytes, url: URL, method: str) -> DifyResponseError:
    text = raw.decode("utf-8", errors="replace")
    return DifyResponseError(
        f"the answer is not JSON: {text[:200]!r}",
        status=200,
        code="invalid_json",
        url=public_url(url),
        method=method,
        body=text[:2000],
    )
