"""The one request path: a session, a budget, per-attempt timeouts, retries, typed errors.

`AsyncDifyKnowledgeClient` builds the URLs and reads the answers; everything between "send
this" and "here are the bytes, or a typed error" happens here, once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import aiohttp
from aiohttp import hdrs
from yarl import URL

from dify_ingest_tools._base.clock import SYSTEM_CLOCK, Clock
from dify_ingest_tools._base.config import public_url
from dify_ingest_tools._base.inputs import check_number
from dify_ingest_tools._base.redaction import register_secret
from dify_ingest_tools._http.answer_errors import (
    invalid_json,
    is_html,
    raise_for_answer,
    too_large,
)
from dify_ingest_tools._http.exchange_errors import raise_exchange_error
from dify_ingest_tools._http.responses import decode_json
from dify_ingest_tools._http.retry import RetryPolicy
from dify_ingest_tools._http.telemetry import Telemetry
from dify_ingest_tools.backends.budget import BudgetBackend
from dify_ingest_tools.backends.request_budget import (
    KnowledgeCooldown,
    counts_against_knowledge_limit,
)
from dify_ingest_tools.errors import (
    DifyAPIError,
    DifyError,
    DifyRateLimitError,
    DifyTimeoutError,
)

logger = logging.getLogger("dify_ingest_tools")

_T = TypeVar("_T")

# Bodies larger than this (once decoded: gzip, deflate, br, ...) are refused: an
# indexing-status answer for a 100-document batch is a few tens of KB, so a body this size
# means a broken or hostile server.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_READ_CHUNK = 64 * 1024
# One-shot calls end within this many per-attempt timeouts unless told otherwise.
CALL_TIMEOUT_FACTOR = 2.0


class RequestGuard(Protocol):
    """Brackets every request (a client's lifecycle: closing it ends requests in flight)."""

    def enter(self) -> asyncio.Task[Any] | None:
        """Called as a request starts (raises to refuse it); returns the task running it."""

    def cancelled(self, task: asyncio.Task[Any] | None) -> None:
        """Called when the request was cancelled; may raise an error to surface instead."""

    def leave(self, task: asyncio.Task[Any] | None) -> None:
        """Called as the request ends, however it ends."""


class Transport:
    """One ``aiohttp.ClientSession`` (opened on first use) and the request path over it.

    A caller-supplied session is used as is and never closed here.

    Time: each attempt gets at most ``timeout`` seconds; a whole call at most its
    ``deadline`` (a wait's), else ``call_timeout`` seconds from its start. A retry or a
    rate-limit pause that would end past it is not started: the last error is raised.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        timeout: float,
        retry_policy: RetryPolicy,
        max_response_bytes: int,
        budget: BudgetBackend | None,
        session: aiohttp.ClientSession | None,
        call_timeout: float | None = None,
        telemetry: Telemetry | None = None,
        guard: RequestGuard | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.guard = guard
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.timeout = check_number(timeout, "timeout", minimum=0, exclusive_minimum=True)
        self.call_timeout = (
            check_number(call_timeout, "call_timeout", minimum=0, exclusive_minimum=True)
            if call_timeout is not None
            else self.timeout * CALL_TIMEOUT_FACTOR
        )
        self.retry_policy = retry_policy
        self.max_response_bytes = max_response_bytes
        self.budget = budget
        self.cooldown = KnowledgeCooldown()
        self._headers = dict(headers)
        credential = self._headers.get("Authorization", "")
        if credential.lower().startswith("bearer "):
            # Whatever a server echoes back is scrubbed of the key before we show it.
            register_secret(credential[len("bearer ") :].strip())
        self._default_timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        # A session of our own carries the headers as its defaults (aiohttp merges fewer
        # per request: measurably cheaper on the polling hot path); a caller's gets them
        # with every request.
        self._request_headers: dict[str, str] | None = None if session is None else self._headers
        self._closed = False
        #: Deadlines, backoffs and pauses are measured on it (the client's).
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK
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
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport opened it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()
        if self.budget is not None:
            await self.budget.aclose()

    async def request(
        self,
        method: str,
        url: URL,
        *,
        json_body: Any = None,
        form: Callable[[], aiohttp.FormData | aiohttp.MultipartWriter] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        deadline: float | None = None,
        retry: bool = True,
        rate_limited: bool | None = None,
    ) -> bytes:
        """Send one logical request with transport retries; return the 2xx body.

        See `decoded` for the arguments; this is it with the raw body as the result.
        """
        return await self.decoded(
            method,
            url,
            _raw,
            json_body=json_body,
            form=form,
            params=params,
            idempotent=idempotent,
            deadline=deadline,
            retry=retry,
            rate_limited=rate_limited,
        )

    async def decoded(
        self,
        method: str,
        url: URL,
        decode: Callable[[bytes], _T],
        *,
        json_body: Any = None,
        form: Callable[[], aiohttp.FormData | aiohttp.MultipartWriter] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        deadline: float | None = None,
        retry: bool = True,
        rate_limited: bool | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> _T:
        """Send one logical request with transport retries; return ``decode(2xx body)``.

        ``decode`` runs inside the retry loop, so a body it rejects as transient (JSON cut
        off mid-way: ``invalid_json``) is retried like a dropped connection.

        ``deadline`` (an instant on the transport's `clock`) bounds every attempt, backoff and
        pause; without one the call ends within ``call_timeout``. ``retry=False`` makes a single
        attempt (the monitor retries on its own schedule). ``rate_limited`` says whether
        Dify Cloud counts this request in its knowledge rate limit (default: every non-GET);
        such requests wait out the client's cool-down after a 403 rate limit.
        ``on_send`` is called as each attempt leaves, after any cool-down and budget wait:
        the monitor tells time queued behind the client's own limits from time Dify took.
        Error answers are raised as typed errors; callers decode the body (`json`).
        """
        session = self._session
        if session is None or self._closed:
            session = self._open()
        clock = self.clock.monotonic
        if deadline is None:
            deadline = clock() + self.call_timeout
        else:
            check_number(deadline, "deadline")
        if rate_limited is not None:
            counted = rate_limited
        else:  # GETs (every poll) never count
            counted = method != "GET" and counts_against_knowledge_limit(method)
        telemetry = self.telemetry
        io = self.clock.io
        debug = logger.isEnabledFor(logging.DEBUG)
        started = 0.0
        guard = self.guard
        task = guard.enter() if guard is not None else None
        try:
            attempt = 0
            while True:
                if counted:
                    await self._cool_down(deadline, url, method)
                left = deadline - clock()
                if left <= 0:
                    raise DifyTimeoutError(
                        "the deadline passed before the request could be sent",
                        url=public_url(url),
                        method=method,
                    )
                timeout = self._default_timeout
                if left < self.timeout:
                    timeout = aiohttp.ClientTimeout(total=left)
                if self.budget is not None:
                    queued = clock()
                    await self.budget.acquire(deadline, counted=counted)
                    telemetry.record_budget_wait(clock() - queued, "budget")
                if on_send is not None:
                    on_send()
                span = telemetry.start_attempt(method, url, attempt)
                if debug:
                    started = clock()
                try:
                    # One HTTP exchange, inline: a coroutine per attempt costs measurably on
                    # the polling hot path (bench_client.py).
                    if json_body is None and form is None and params is None:
                        # A poll: fewer keywords for aiohttp to pass along.
                        exchange = session.request(
                            method,
                            url,
                            headers=self._request_headers,
                            timeout=timeout,
                            allow_redirects=False,
                        )
                    else:
                        exchange = session.request(
                            method,
                            url,
                            headers=self._request_headers,
                            json=json_body,
                            data=form() if form is not None else None,
                            params=params,
                            timeout=timeout,
                            allow_redirects=False,
                        )
                    try:
                        with io():  # real time: a fake clock stands still meanwhile
                            async with exchange as response:
                                raw = await self._read_body(response, url, method)
                                status = response.status
                                headers = response.headers
                    except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                        raise_exchange_error(exc, url, method, timeout)
                    if debug:
                        elapsed_ms = (clock() - started) * 1000
                        logger.debug(
                            "%s %s -> %d in %.1f ms", method, public_url(url), status, elapsed_ms
                        )
                    if status >= 300 or is_html(headers.get(hdrs.CONTENT_TYPE)):
                        raise_for_answer(status, headers, raw, url, method)
                    result = decode(raw)
                except DifyError as failure:
                    telemetry.end_attempt(
                        span,
                        status=failure.status if isinstance(failure, DifyAPIError) else None,
                        # An HTTP error status is its own error.type; anything else is named.
                        error=None if _is_http_error(failure) else failure,
                        rate_limited=isinstance(failure, DifyRateLimitError),
                    )
                    error, delay = self._cool_down_after(failure)
                    if delay is not None and self.budget is not None:
                        # A shared budget pauses every process of the workspace, not this one.
                        await self.budget.report_rate_limited(delay)
                    if not self.retry_policy.should_retry(
                        attempt, error, idempotent=idempotent and retry
                    ):
                        if error is failure:
                            raise
                        raise error from failure
                    if delay is None:
                        delay = self.retry_policy.delay(attempt, error, self.rng)
                    if clock() + delay >= deadline:
                        if error is failure:
                            raise
                        raise error from failure
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
                    # Unlike ``failure``, not unbound when the handler ends: a reference from
                    # this frame to its traceback would keep the attempt's body (a file) alive.
                    del error
                    await self.clock.sleep(delay)
                except BaseException as error:  # cancelled mid-attempt: the span still ends
                    telemetry.end_attempt(span, error=error)
                    raise
                else:
                    if span is not None:
                        telemetry.end_attempt(span, status=status)
                    return result
        except asyncio.CancelledError:
            if guard is not None:
                guard.cancelled(task)  # raises DifyClientClosedError if closing did it
            raise
        finally:
            if guard is not None:
                guard.leave(task)

    def _cool_down_after(self, error: DifyError) -> tuple[DifyError, float | None]:
        """After Dify Cloud's 403 rate limit, pause the client's counted requests.

        Returns the error to raise (the rate limit with the pause as its ``retry_after`` and
        a hint, unless the server gave them) and the pause (None: no cool-down).
        """
        if not (isinstance(error, DifyRateLimitError) and error.is_knowledge_rate_limit):
            return error, None
        pause = self.retry_policy.knowledge_cooldown(self.rng)
        hint = error.hint or (
            f"Dify Cloud's knowledge rate limit (a 60 s window per workspace that counts "
            f"refused calls too): this client holds its creates, updates, deletes and "
            f"retrievals for {pause:.0f}s. To stay under it, pass "
            "requests_per_minute='sandbox' (10/min), 'professional' or 'team'."
        )
        retry_after = pause if error.retry_after is None else error.retry_after
        limited = error.with_context(hint=hint, retry_after=retry_after)
        self.cooldown.start(self.clock.monotonic() + pause, limited)
        return limited, pause

    async def _cool_down(self, deadline: float, url: URL, method: str) -> None:
        """Wait out the knowledge rate-limit pause; refuse at once if it outlasts ``deadline``."""
        while True:
            now = self.clock.monotonic()
            left = self.cooldown.remaining(now)
            if left <= 0:
                return
            if self.cooldown.until() > deadline:
                raise self.cooldown.refusal(now, url=public_url(url), method=method)
            logger.info(
                "%s %s waits %.1fs for the knowledge rate-limit cool-down",
                method,
                public_url(url),
                left,
            )
            await self.clock.sleep(left)
            self.telemetry.record_budget_wait(left, "cooldown")

    async def json(self, method: str, url: URL, **kwargs: Any) -> Any:
        """`request`, then decode the JSON body (None for an empty body, e.g. a 204)."""

        def decode(raw: bytes) -> Any:
            if not raw.strip():
                return None
            try:
                return decode_json(raw)
            except ValueError:
                raise invalid_json(raw, url, method) from None

        return await self.decoded(method, url, decode, **kwargs)

    def _read_body(
        self, response: aiohttp.ClientResponse, url: URL, method: str
    ) -> Awaitable[bytes]:
        """The body as aiohttp decodes it, refused once it grows past ``max_response_bytes``.

        The limit is on the decoded bytes: a gzip bomb is small on the wire (and in its
        Content-Length) and huge once inflated; aiohttp inflates chunk by chunk as we read.
        Not a coroutine itself: the common answer (a declared length within the limit,
        nothing to inflate) awaits aiohttp's read directly, one coroutine fewer per request.
        """
        limit = self.max_response_bytes
        headers = response.headers
        length = headers.get(hdrs.CONTENT_LENGTH)
        # As aiohttp reads it (its parser refuses a malformed Content-Length).
        declared = int(length) if length is not None else None
        if declared is not None and declared > limit:
            raise too_large(
                f"the answer is {declared} bytes, over the {limit}-byte limit",
                response.status,
                url,
                method,
            )
        encoding = headers.get(hdrs.CONTENT_ENCODING, "")
        if encoding:
            encoding = encoding.strip().lower()
        if declared is not None and encoding in ("", "identity"):
            return response.read()  # exactly `declared` bytes, nothing inflates
        return self._read_capped(response, url, method, encoding)

    async def _read_capped(
        self, response: aiohttp.ClientResponse, url: URL, method: str, encoding: str
    ) -> bytes:
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large(
                    f"the answer exceeded the {limit}-byte limit"
                    + (f" once decoded ({encoding})" if encoding else ""),
                    response.status,
                    url,
                    method,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _raw(body: bytes) -> bytes:
    return body


def _is_http_error(error: DifyError) -> bool:
    """An error status from the server (its code is the span's ``error.type``)."""
    return isinstance(error, DifyAPIError) and error.status >= 400


def short(error: BaseException) -> str:
    if isinstance(error, DifyAPIError):
        return f"HTTP {error.status} {error.code}: {error.message[:120]}"
    return f"{type(error).__name__}: {str(error)[:160]}"
