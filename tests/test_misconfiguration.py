"""A wrong base_url fails fast and says what to check; it never looks like slow indexing.

Each test points a client at a real misconfigured server on 127.0.0.1 (or at nothing).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyConnectionError,
    DifyError,
    DifyKnowledgeClient,
    DifyNotFoundError,
    DifyResponseError,
    DifyServerError,
    DifyTimeoutError,
    IndexingError,
)
from dify_ingest_tools.testing import DifySimulator, Fault

from .conftest import FAST, QUICK
from .hostile import BATCH, DS, HostileServers, free_port, servers, status_response

__all__ = ["servers"]

# Generous: the contact budget is 3 failed polls and 2 s, or contact_timeout.
FAST_FAIL = 6.0


async def fails_fast(client: AsyncDifyKnowledgeClient, **options: Any) -> DifyError:
    """Run a long wait that must end early with a non-indexing DifyError; return it."""
    options.setdefault("contact_timeout", 0.5)  # keeps the test short; the default is 10 s
    started = time.monotonic()
    with pytest.raises(DifyError) as caught:
        await client.wait_for_indexing(DS, BATCH, timeout=60, **options)
    assert time.monotonic() - started < FAST_FAIL
    assert not isinstance(caught.value, IndexingError), caught.value  # not "still indexing"
    return caught.value


async def test_wait_fails_fast_when_nothing_listens() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    async with AsyncDifyKnowledgeClient("k", base_url, **FAST) as client:
        error = await fails_fast(client)
    assert isinstance(error, DifyConnectionError)
    assert error.hint is not None and "Nothing accepted the connection" in error.hint
    assert "gave up after" in str(error) and "/v1" in str(error)


async def test_wait_fails_fast_with_default_backoff_too() -> None:
    async with AsyncDifyKnowledgeClient("k", f"http://127.0.0.1:{free_port()}/v1") as client:
        started = time.monotonic()
        error = await fails_fast(client, contact_timeout=10.0)  # the defaults throughout
    assert time.monotonic() - started >= 2.0  # 3 failed polls and 2 s, not the 60 s deadline
    assert isinstance(error, DifyConnectionError)


class _NoSuchHost(AbstractResolver):
    """A resolver for which no name exists, as for a mistyped host (no network needed)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise OSError(socket.EAI_NONAME, f"Name or service not known: {host}")

    async def close(self) -> None:
        return None


async def test_wait_fails_fast_when_the_host_does_not_resolve() -> None:
    connector = aiohttp.TCPConnector(resolver=_NoSuchHost())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        AsyncDifyKnowledgeClient("k", "http://dify.invalid/v1", session=session, **FAST) as client,
    ):
        error = await fails_fast(client)
    assert isinstance(error, DifyConnectionError)
    assert error.hint is not None and "did not resolve" in error.hint


async def test_wait_fails_at_once_when_base_url_serves_an_html_page(
    servers: HostileServers,
) -> None:
    async def console(request: web.Request) -> web.Response:
        return web.Response(
            text="<!DOCTYPE html><html><title>Dify</title></html>", content_type="text/html"
        )

    base_url = await servers.serve(console)
    async with AsyncDifyKnowledgeClient("k", base_url, **FAST) as client:
        error = await fails_fast(client)
        assert isinstance(error, DifyResponseError) and error.code == "not_json"
        assert error.hint is not None and "ending in /v1" in error.hint
        assert len(servers.seen) == 1  # a web page is not transient: not retried
        with pytest.raises(DifyResponseError, match="HTML page"):
            await client.get_indexing_status(DS, BATCH)
    assert len(servers.seen) == 2


async def test_html_sent_as_json_is_still_not_retried(servers: HostileServers) -> None:
    async def mislabelled(request: web.Request) -> web.Response:
        return web.Response(
            body=b"\n<html><body>Welcome</body></html>", content_type="application/json"
        )

    base_url = await servers.serve(mislabelled)
    async with AsyncDifyKnowledgeClient("k", base_url, **FAST) as client:
        with pytest.raises(DifyResponseError) as caught:
            await client.get_indexing_status(DS, BATCH)
    assert caught.value.code == "not_json"
    assert len(servers.seen) == 1


async def test_truncated_json_is_retried_as_transient(servers: HostileServers) -> None:
    answers = [b'{"data": [{"id": "x", "indexing_st']

    async def flaky(request: web.Request) -> web.Response:
        if answers:
            return web.Response(body=answers.pop(), content_type="application/json")
        return status_response()

    base_url = await servers.serve(flaky)
    async with AsyncDifyKnowledgeClient("k", base_url, **FAST) as client:
        status = await client.get_indexing_status(DS, BATCH)
    assert status.documents[0].completed_segments == 1
    assert len(servers.seen) == 2


async def test_wait_fails_at_once_on_a_plain_web_servers_404(servers: HostileServers) -> None:
    async def nginx(request: web.Request) -> web.Response:
        return web.Response(
            status=404,
            text="<html><head><title>404 Not Found</title></head>"
            "<body><center>nginx</center></body></html>",
            content_type="text/html",
        )

    base_url = await servers.serve(nginx)
    async with AsyncDifyKnowledgeClient("k", base_url, **FAST) as client:
        error = await fails_fast(client)
    assert isinstance(error, DifyNotFoundError) and error.resource == "route"
    assert error.hint is not None and "/v1" in error.hint
    assert len(servers.seen) == 1


async def test_wait_names_the_missing_v1_when_base_url_lacks_it(sim: DifySimulator) -> None:
    async with sim.serve() as url:
        root = url.removesuffix("/v1")
        dataset_id = sim.create_dataset("x")
        async with AsyncDifyKnowledgeClient(sim.api_key, root, **FAST) as client:
            with pytest.raises(DifyError) as caught:
                await client.wait_for_indexing(dataset_id, BATCH, timeout=60)
    assert not isinstance(caught.value, IndexingError)
    assert "base_url has no /v1 path" in str(caught.value)


async def test_wait_gives_up_on_a_proxy_error_page_before_dify_ever_answered(
    servers: HostileServers,
) -> None:
    async def bad_gateway(request: web.Request) -> web.Response:
        return web.Response(
            status=502, text="<html><title>502 Bad Gateway</title></html>", content_type="text/html"
        )

    base_url = await servers.serve(bad_gateway)
    async with AsyncDifyKnowledgeClient("k", base_url, **FAST) as client:
        error = await fails_fast(client)
    assert isinstance(error, DifyServerError) and not error.from_dify
    assert "gave up after" in str(error)
    assert len(servers.seen) >= 3


async def test_wait_gives_up_on_a_server_that_never_answers(servers: HostileServers) -> None:
    base_url = await servers.silent()
    async with AsyncDifyKnowledgeClient("k", base_url, timeout=30, **FAST) as client:
        started = time.monotonic()
        error = await fails_fast(client, contact_timeout=1.0)
    assert time.monotonic() - started >= 0.9
    assert isinstance(error, DifyTimeoutError)
    assert "does not answer" in str(error)


async def test_deadline_before_any_answer_is_not_reported_as_slow_indexing(
    servers: HostileServers,
) -> None:
    base_url = await servers.silent()
    async with AsyncDifyKnowledgeClient("k", base_url, timeout=30, **FAST) as client:
        with pytest.raises(DifyTimeoutError) as caught:
            await client.wait_for_indexing(DS, BATCH, timeout=0.5)
    assert not isinstance(caught.value, IndexingError)
    assert "still indexing" not in str(caught.value)


@pytest.mark.usefixtures("advancing")
async def test_wait_rides_out_an_outage_once_dify_has_answered(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha " * 50)
    seen: list[str] = []

    async def outage_after_first_status(event: Any) -> None:
        seen.append(event.kind)
        if len(seen) == 1:  # the first snapshot arrived: now the network goes away
            sim.inject(Fault.drop_connection(), route="indexing_status", times=12)

    status = await client.wait_for_indexing(
        dataset_id, batch, timeout=20, on_event=outage_after_first_status, **QUICK
    )
    assert status.is_completed
    assert seen.count("retrying") >= 3  # more failures than the contact budget allows


async def test_a_difys_json_error_counts_as_contact(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    # "Documents not found." proves base_url reaches Dify: no contact give-up, the grace runs.
    started = time.monotonic()
    with pytest.raises(DifyNotFoundError) as caught:
        await client.wait_for_indexing(
            dataset_id, BATCH, timeout=30, not_found_grace=0.3, contact_timeout=0.1, **QUICK
        )
    assert caught.value.resource == "documents"
    assert time.monotonic() - started >= 0.3


async def test_one_shot_status_against_a_silent_server_is_bounded(
    servers: HostileServers,
) -> None:
    base_url = await servers.silent()
    async with AsyncDifyKnowledgeClient("k", base_url, timeout=0.4, **FAST) as client:
        started = time.monotonic()
        with pytest.raises(DifyTimeoutError):
            await client.get_indexing_status(DS, BATCH)
        took = time.monotonic() - started
    assert 0.7 <= took < 3.0  # call_timeout = 2 x timeout: two attempts, not four
    async with AsyncDifyKnowledgeClient(
        "k", base_url, timeout=30, call_timeout=0.5, **FAST
    ) as client:
        started = time.monotonic()
        with pytest.raises(DifyTimeoutError):
            await client.retrieve(DS, "q")
        assert time.monotonic() - started < 2.5


def test_blocking_status_against_a_silent_port_is_bounded() -> None:
    async def serve_silently() -> None:
        pass

    with socket.socket() as listener:  # listens, never accepts: connects hang in the backlog
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with DifyKnowledgeClient("k", f"http://127.0.0.1:{port}/v1", timeout=0.3, **FAST) as c:
            started = time.monotonic()
            with pytest.raises(DifyConnectionError):
                c.get_indexing_status(DS, BATCH)
            assert time.monotonic() - started < 3.0


def test_cli_wait_exits_3_not_4_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    from dify_ingest_tools import cli

    started = time.monotonic()
    code = cli.main(
        [
            "wait",
            DS,
            BATCH,
            "--timeout",
            "30",
            "--api-key",
            "k",
            "--base-url",
            f"http://127.0.0.1:{free_port()}/v1",
        ]
    )
    assert code == 3
    assert time.monotonic() - started < FAST_FAIL + 2
    err = capsys.readouterr().err
    assert "still indexing" not in err and "--base-url" in err  # the hint in CLI words


async def test_unreachable_error_copies_are_independent_per_waiter() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    async with AsyncDifyKnowledgeClient("k", base_url, **FAST) as client:
        results = await asyncio.gather(
            *(
                client.wait_for_indexing(DS, BATCH, timeout=30, contact_timeout=0.5)
                for _ in range(3)
            ),
            return_exceptions=True,
        )
    assert all(isinstance(r, DifyConnectionError) for r in results)
    for result in results:
        assert str(result).count("gave up after") == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_connection_errors_name_the_host_and_port_tried(host: str) -> None:
    port = free_port()
    async with AsyncDifyKnowledgeClient("k", f"http://{host}:{port}/v1", **FAST) as client:
        with pytest.raises(DifyConnectionError) as refused:
            await client.get_indexing_status(DS, BATCH)
    message = refused.value.message
    assert message.startswith(f"Cannot connect to {host}:{port}: "), message
    assert "ssl:default" not in message and "Connect call failed" not in message
    if host == "localhost":  # a name: the address it resolved to is named too
        assert f"(tried 127.0.0.1:{port})" in message or f"(tried ::1:{port})" in message


async def test_a_host_that_does_not_resolve_is_named_with_the_reason() -> None:
    connector = aiohttp.TCPConnector(resolver=_NoSuchHost())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        AsyncDifyKnowledgeClient(
            "k", "http://dify.invalid:5001/v1", session=session, **FAST
        ) as client,
    ):
        with pytest.raises(DifyConnectionError) as unresolved:
            await client.get_indexing_status(DS, BATCH)
    message = unresolved.value.message
    assert message.startswith("Cannot connect to dify.invalid:5001: Name or service not known")
