"""Fault injection: the failures a client meets between itself and a real Dify."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web

from ._http import SERVER_HEADERS, encode_json, error_response, json_response

SERVER_ERROR = "server_error"
PROXY_HTML = "proxy_html"
TOO_MANY_REQUESTS = "too_many_requests"
KNOWLEDGE_RATE_LIMIT = "knowledge_rate_limit"
DROP_CONNECTION = "drop_connection"
MALFORMED_JSON = "malformed_json"
LATENCY = "latency"
WRONG_SHAPE = "wrong_shape"

#: The message Dify Cloud sends with its per-workspace knowledge rate limit (a 403, no
#: Retry-After, sliding 60 s window).
RATE_LIMIT_MESSAGE = (
    "Sorry, you have reached the knowledge base request rate limit of your subscription."
)


@dataclass(frozen=True)
class Fault:
    """One failure to answer a request with. Build it with the class methods.

    Attributes:
        kind: The fault's name (also recorded in ``RequestRecord.fault``).
        status: The HTTP status sent (0 when nothing is sent).
        retry_after: The ``Retry-After`` header value, if any.
        seconds: The delay of a ``latency`` fault.
    """

    kind: str
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """Dify's generic 5xx: ``{"message": "Internal Server Error", "code": "unknown", ...}``.

        Args:
            status: A 5xx status.
        """
        if not 500 <= status <= 599:
            raise ValueError(f"server_error needs a 5xx status, not {status}")
        return cls(SERVER_ERROR, status)

    @classmethod
    def proxy_html(cls, status: int = 502) -> Fault:
        """An HTML error page from a reverse proxy in front of Dify (nginx style).

        Args:
            status: Usually 502, 503 or 504.
        """
        if not 400 <= status <= 599:
            raise ValueError(f"proxy_html needs an error status, not {status}")
        return cls(PROXY_HTML, status)

    @classmethod
    def too_many_requests(cls, retry_after: float | str | None = 1) -> Fault:
        """A 429 with JSON code ``too_many_requests`` (from Dify app quotas or a gateway).

        Args:
            retry_after: ``Retry-After`` in seconds, an HTTP date string, or ``None`` for no
                header.
        """
        if retry_after is None or isinstance(retry_after, str):
            header = retry_after
        elif retry_after < 0:
            raise ValueError(f"retry_after must be >= 0, not {retry_after!r}")
        elif float(retry_after).is_integer():
            header = str(int(retry_after))
        else:
            header = f"{retry_after:g}"
        return cls(TOO_MANY_REQUESTS, 429, retry_after=header)

    @classmethod
    def knowledge_rate_limit(cls) -> Fault:
        """Dify Cloud's knowledge rate limit: a 403 ``forbidden``, no ``Retry-After``."""
        return cls(KNOWLEDGE_RATE_LIMIT, 403)

    @classmethod
    def drop_connection(cls) -> Fault:
        """Close the TCP connection without answering.

        The client sees ``ServerDisconnectedError``. Note that aiohttp (3.10+) silently
        retries an idempotent request (GET, DELETE, ...) once when its connection drops, so
        inject this with ``times=2`` to make the failure reach an aiohttp client's GET; a POST
        is not retried.
        """
        return cls(DROP_CONNECTION)

    @classmethod
    def malformed_json(cls) -> Fault:
        """A 200 ``application/json`` response whose body is cut off mid-document."""
        return cls(MALFORMED_JSON, 200)

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Wait ``seconds`` (real time), then answer normally.

        Args:
            seconds: The delay; must not be negative.
        """
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 seconds, not {seconds!r}")
        return cls(LATENCY, seconds=float(seconds))

    @classmethod
    def wrong_shape(cls) -> Fault:
        """A 200 with valid JSON of the wrong shape: ``{"result": "ok"}``."""
        return cls(WRONG_SHAPE, 200)


#: Transient failures a robust client must ride out; used by chaos mode unless replaced.
DEFAULT_RANDOM_FAULTS: tuple[Fault, ...] = (
    Fault.server_error(),
    Fault.proxy_html(502),
    Fault.proxy_html(503),
    Fault.proxy_html(504),
    Fault.too_many_requests(retry_after=0),
    Fault.knowledge_rate_limit(),
    Fault.drop_connection(),
)


@dataclass
class _Queued:
    fault: Fault
    route: str | None
    method: str | None
    remaining: int  # -1 = until cleared


class FaultPlan:
    """Queued faults plus chaos mode. Callers hold the store lock around every method."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._queue: list[_Queued] = []
        self.fault_rate = 0.0
        self.random_faults: Sequence[Fault] = DEFAULT_RANDOM_FAULTS

    def inject(self, fault: Fault, route: str | None, method: str | None, times: int) -> None:
        """Queue ``fault`` for the next ``times`` matching requests (-1 = forever)."""
        if times == 0 or times < -1:
            raise ValueError(f"times must be a positive count or -1 (forever), not {times}")
        self._queue.append(_Queued(fault, route, method.upper() if method else None, times))

    def clear(self) -> None:
        """Drop every queued fault and switch chaos mode off."""
        self._queue.clear()
        self.fault_rate = 0.0

    def pick(self, route: str, method: str) -> Fault | None:
        """The fault for this request: a queued one first, else maybe a random one."""
        for entry in self._queue:
            if entry.route not in (None, route) or entry.method not in (None, method):
                continue
            if entry.remaining > 0:
                entry.remaining -= 1
                if entry.remaining == 0:
                    self._queue.remove(entry)
            return entry.fault
        if self.fault_rate > 0 and self.random_faults and self._rng.random() < self.fault_rate:
            return self._rng.choice(list(self.random_faults))
        return None


class Dropped(Exception):
    """Raised by :func:`respond_with_fault` after the connection was closed without a reply."""


async def respond_with_fault(fault: Fault, request: web.BaseRequest) -> web.Response | None:
    """Apply a fault.

    Returns:
        The response to send, or ``None`` to handle the request normally (after a latency
        fault's delay).

    Raises:
        Dropped: The connection was closed; nothing must be sent.
    """
    if fault.kind == LATENCY:
        await asyncio.sleep(fault.seconds)
        return None
    if fault.kind == SERVER_ERROR:
        message = (
            "Internal Server Error" if fault.status == 500 else HTTPStatus(fault.status).phrase
        )
        # The generic handler's key order differs from the other envelopes (thread #12605).
        return json_response(
            {"message": message, "code": "unknown", "status": fault.status}, fault.status
        )
    if fault.kind == PROXY_HTML:
        title = f"{fault.status} {HTTPStatus(fault.status).phrase}"
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return web.Response(
            status=fault.status,
            body=page.encode(),
            headers={"Content-Type": "text/html", "Server": "nginx"},
        )
    if fault.kind == TOO_MANY_REQUESTS:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        return error_response(
            429, "too_many_requests", "Too many requests. Please try again later.", headers=headers
        )
    if fault.kind == KNOWLEDGE_RATE_LIMIT:
        return error_response(403, "forbidden", RATE_LIMIT_MESSAGE)
    if fault.kind == MALFORMED_JSON:
        body = encode_json({"data": [{"id": "truncated", "indexing_status": "indexing"}]})
        return web.Response(
            status=200,
            body=body[: len(body) // 2],
            headers={**SERVER_HEADERS, "Content-Type": "application/json"},
        )
    if fault.kind == WRONG_SHAPE:
        return json_response({"result": "ok"})
    if fault.kind == DROP_CONNECTION:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise Dropped
    raise ValueError(f"unknown fault kind {fault.kind!r}")
