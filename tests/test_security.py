"""Hostile input and hostile servers: no route changes, no hang past a deadline, bounded reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyNotFoundError,
    DifyResponseError,
    DifyTimeoutError,
)
from dify_ingest_tools.testing import DifySimulator

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Serve any handler on loopback; yields a function returning the base URL."""
    runners: list[web.AppRunner] = []

    async def serve(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/v1"

    yield serve
    for runner in runners:
        await runner.cleanup()


HOSTILE_BATCHES = [
    "../../datasets",
    "..%2F..%2Fdatasets",
    "x%2fy",
    "a?b=c",
    "a#b",
    "a b",
    "\u202e\u0000",
    "x" * 5000,
    "",
]


@pytest.mark.parametrize("batch", HOSTILE_BATCHES)
async def test_hostile_batches_never_reach_the_server(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, batch: str
) -> None:
    with pytest.raises(ValueError):
        await client.get_indexing_status(dataset_id, batch)
    with pytest.raises(ValueError):
        await client.wait_for_indexing(dataset_id, batch, timeout=1)
    assert sim.requests == []


@pytest.mark.parametrize("batch", ["ünïcödé", "%", "20261128154005508280-ok", "~tilde"])
async def test_odd_but_safe_batches_stay_one_path_segment(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, batch: str
) -> None:
    if "%" in batch:
        with pytest.raises(ValueError):
            await client.get_indexing_status(dataset_id, batch)
        return
    with pytest.raises(DifyNotFoundError) as caught:
        await client.get_indexing_status(dataset_id, batch)
    assert caught.value.resource == "documents"  # routed as a batch, nothing else
    [record] = sim.requests
    assert record.route == "indexing_status"


async def test_huge_streamed_body_is_cut_off(hostile: Callable[[Handler], Awaitable[str]]) -> None:
    async def endless_json(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)  # chunked: no Content-Length to check up front
        await response.write(b'{"data": [')
        chunk = b'{"id": "x", "indexing_status": "indexing"},' * 1000
        try:
            for _ in range(10_000):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    base_url = await hostile(endless_json)
    async with AsyncDifyKnowledgeClient(
        "k", base_url, max_retries=0, max_response_bytes=1_000_000
    ) as client:
        with pytest.raises(DifyResponseError) as caught:
            await client.get_indexing_status(DS, "1")
    assert caught.value.code == "response_too_large"


async def test_declared_huge_body_is_refused_before_reading(
    hostile: Callable[[Handler], Awaitable[str]],
) -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 2_000_000, content_type="application/json")

    base_url = await hostile(big)
    async with AsyncDifyKnowledgeClient("k", base_url, max_response_bytes=1_000_000) as client:
        with pytest.raises(DifyResponseError, match="over the 1000000-byte limit"):
            await client.get_indexing_status(DS, "1")


async def test_slow_endless_body_cannot_outlive_the_timeout(
    hostile: Callable[[Handler], Awaitable[str]],
) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b" ")
                await asyncio.sleep(0.05)
        except (ConnectionError, RuntimeError):
            pass
        return response

    base_url = await hostile(trickle)
    async with AsyncDifyKnowledgeClient("k", base_url, timeout=0.5, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(DifyTimeoutError):
            await client.get_indexing_status(DS, "1")
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        with pytest.raises((DifyTimeoutError, TimeoutError)):
            await client.wait_for_indexing(DS, "1", timeout=1.0, poll_interval=0.05)
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser's recursion limit
        b'{"data": [{"id": 5, "indexing_status": ["nope"]}]}',
        b'{"data": {"id": "x"}}',
        b"null",
        b'"just a string"',
    ],
)
async def test_malicious_bodies_are_response_errors(
    hostile: Callable[[Handler], Awaitable[str]], body: bytes
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    base_url = await hostile(answer)
    async with AsyncDifyKnowledgeClient("k", base_url, max_retries=0) as client:
        with pytest.raises(DifyResponseError):
            await client.get_indexing_status(DS, "1")
        with pytest.raises(DifyResponseError):
            await client.get_document(DS, DS)
        with pytest.raises(DifyResponseError):
            await client.retrieve(DS, "q")
