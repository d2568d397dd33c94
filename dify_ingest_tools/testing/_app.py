"""The request pipeline and the servers that run it.

Every request goes through the same steps, in Dify's order: route matching (HTML 404 / JSON
405), fault injection, authentication, then the route handler. Each request is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from aiohttp import web

from ._auth import check_authorization
from ._core import Core
from ._faults import Dropped, Fault, respond_with_fault
from ._http import (
    html_not_found,
    invalid_param,
    json_response,
    method_not_allowed,
    preflight,
    unauthorized,
)
from ._ratelimit import admit
from ._records import RequestRecord
from ._routes import HANDLERS
from ._routes_documents import DOCUMENT_HANDLERS
from ._routes_pipeline import PIPELINE_HANDLERS
from ._routing import match

logger = logging.getLogger(__name__)

# Seconds a stopping server waits for in-flight requests (e.g. a long latency fault) before
# cancelling them; keeps test teardown fast.
_SHUTDOWN_TIMEOUT = 0.5
_REQUEST_LINE = re.compile(rb"[A-Z]+ \S+ HTTP/1\.[01]\r\n")
_AUTHORIZATION_LINE = re.compile(rb"^authorization:[ \t]*([^\r\n]*)\r?$", re.IGNORECASE | re.M)


class Dispatcher:
    """The aiohttp handler for every path.

    Args:
        core: The simulator state.
        raw_authorization: Raw ``Authorization`` values per transport, filled by the server's
            protocol wrapper (see :class:`_HeaderSniffingProtocol`); ``None`` when serving
            through a plain :class:`aiohttp.web.Application`.
    """

    def __init__(self, core: Core, raw_authorization: dict[int, str] | None = None) -> None:
        self._core = core
        self._raw = raw_authorization

    def _authorization(self, request: web.BaseRequest) -> str | None:
        parsed = request.headers.get("Authorization")
        if parsed is None or self._raw is None or request.transport is None:
            return parsed
        raw = self._raw.get(id(request.transport))
        # Only trust the sniffed value when it is this request's header, up to whitespace.
        return raw if raw is not None and raw.strip() == parsed.strip() else parsed

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        core = self._core
        with core.store.lock:
            arrived = core.store.clock()
            ticket = core.log.reserve()
        found = match(request.method, request.path)
        failure = check_authorization(self._authorization(request), core.keys)
        fault: Fault | None = None
        response: web.StreamResponse | None = None
        try:
            if found is None:
                response = html_not_found()
            elif request.method == "OPTIONS":
                response = preflight(request, found.methods)
            elif not found.allowed:
                response = method_not_allowed(found.methods)
            else:
                with core.store.lock:
                    fault = core.faults.pick(found.route, request.method)
                if fault is not None:
                    response = await respond_with_fault(fault, request)
                if response is None:
                    if failure is None:
                        authorization = self._authorization(request)
                        response = admit(
                            core, found.route, request.method, found.params, authorization
                        )
                        if response is None:
                            handler = (
                                HANDLERS.get(found.route)
                                or PIPELINE_HANDLERS.get(found.route)
                                or DOCUMENT_HANDLERS[found.route]
                            )
                            response = await handler(core, request, found.params)
                    elif failure.status == 401:
                        response = unauthorized(failure.message)
                    else:
                        response = invalid_param(failure.message)
        except Dropped:
            response = None
        except Exception:
            logger.exception("Dify simulator failed on %s %s", request.method, request.path)
            # Dify's generic handler: note the key order and the "unknown" code.
            response = json_response(
                {"message": "Internal Server Error", "code": "unknown", "status": 500}, 500
            )
        finally:
            record = RequestRecord(
                method=request.method,
                path=request.path,
                route=found.route if found is not None else None,
                status=response.status if response is not None else 0,
                at=arrived,
                authorized=failure is None,
                fault=fault.kind if fault is not None else None,
                query=dict(request.query),
            )
            with core.store.lock:
                core.log.fill(ticket, record)
        # After a dropped connection aiohttp discards whatever is returned.
        return response if response is not None else web.Response(status=500)


def build_app(core: Core) -> web.Application:
    """A fresh :class:`aiohttp.web.Application` answering every path through the pipeline."""
    dispatcher = Dispatcher(core)

    # aiohttp's router wants a coroutine function, not a callable object.
    async def handle(request: web.Request) -> web.StreamResponse:
        return await dispatcher(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


class _HeaderSniffingProtocol(asyncio.Protocol):
    """Wraps aiohttp's protocol to keep the raw ``Authorization`` header of each request.

    aiohttp strips trailing whitespace from header values (RFC 9110 allows it) while Werkzeug
    keeps it, and Dify answers ``Bearer `` (trailing space) with a 400, not a 401 (04). Request
    heads arrive at the start of a read in practice, which is all this looks at.
    """

    def __init__(self, inner: asyncio.Protocol, registry: dict[int, str]) -> None:
        self._inner = inner
        self._registry = registry
        self._key = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._key = id(transport)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if _REQUEST_LINE.match(data):
            head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
            found = _AUTHORIZATION_LINE.search(head)
            if found is None:
                self._registry.pop(self._key, None)
            else:
                self._registry[self._key] = found.group(1).decode("latin-1")
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.pop(self._key, None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


@dataclass
class RunningServer:
    """A listening simulator server; :meth:`close` stops it and its connections."""

    runner: web.ServerRunner
    server: asyncio.Server
    port: int

    async def close(self) -> None:
        """Stop listening, close connections, wait for in-flight requests (briefly)."""
        self.server.close()
        await self.runner.cleanup()
        await self.server.wait_closed()


async def start_server(core: Core, host: str, port: int) -> RunningServer:
    """Listen on ``host:port`` (0 = any free port) on the running loop."""
    registry: dict[int, str] = {}
    runner = web.ServerRunner(
        web.Server(Dispatcher(core, registry), handler_cancellation=True),
        shutdown_timeout=_SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    protocol_factory = runner.server
    assert protocol_factory is not None
    try:
        server = await asyncio.get_running_loop().create_server(
            lambda: _HeaderSniffingProtocol(protocol_factory(), registry), host, port
        )
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(server.sockets[0].getsockname()[1])
    return RunningServer(runner, server, bound_port)
