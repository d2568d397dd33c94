"""Small hostile or misconfigured servers on 127.0.0.1, for the edge tests.

`HostileServers.serve(handler)` runs an ``aiohttp.web`` handler for every path and returns a
base URL ending in ``/v1``; `HostileServers.silent()` accepts connections and never answers;
`free_port()` is a port nothing listens on; `serving_in_thread(handler)` runs a handler on its
own thread and loop, for blocking callers such as the CLI. Each server records the requests it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
BATCH = "20261128154005508280"
STATUS_BODY = (
    b'{"data": [{"id": "5c2a1d6e-0a6b-4f57-9c57-1c1e4a9e4f11", "indexing_status": "indexing",'
    b' "completed_segments": 1, "total_segments": 3}]}'
)


@dataclass
class Seen:
    """One request a hostile server received."""

    method: str
    path: str
    at: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HostileServers:
    runners: list[web.AppRunner] = field(default_factory=list)
    sockets: list[asyncio.AbstractServer] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    async def serve(self, handler: Handler, *, prefix: str = "/v1") -> str:
        async def recording(request: web.Request) -> web.StreamResponse:
            self.seen.append(
                Seen(request.method, request.path, time.monotonic(), dict(request.headers))
            )
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recording)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}{prefix}"

    async def silent(self) -> str:
        """A raw socket server that accepts, reads, and never answers."""

        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)
            self.seen.append(Seen("?", "?", time.monotonic()))
            try:
                while await reader.read(65536):
                    pass
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        self.sockets.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        for writer in self.writers:
            writer.close()
        for server in self.sockets:
            server.close()
            await asyncio.wait_for(server.wait_closed(), 2)


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def servers() -> AsyncIterator[HostileServers]:
    value = HostileServers()
    yield value
    await value.close()


def status_response() -> web.Response:
    return web.Response(body=STATUS_BODY, content_type="application/json")


@contextlib.contextmanager
def serving_in_thread(handler: Handler) -> Iterator[str]:
    """`HostileServers.serve` on a thread of its own; yields the base URL."""
    ready = threading.Event()
    state: list[Any] = []

    def serve() -> None:
        loop = asyncio.new_event_loop()
        hostile = HostileServers()
        state.extend([loop, loop.run_until_complete(hostile.serve(handler))])
        ready.set()
        loop.run_forever()
        loop.run_until_complete(hostile.close())
        loop.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(5), "the hostile server did not start"
        yield state[1]
    finally:
        if state:
            state[0].call_soon_threadsafe(state[0].stop)
        thread.join(5)
