"""Serving: on the current loop, in a thread, as an aiohttp app, forever; and the fixture."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from importlib.metadata import entry_points
from typing import Any

import aiohttp
import pytest
from yarl import URL

from dify_ingest_tools.testing import DEFAULT_API_KEY, DifySimulator, describe, serve_forever

pytest_plugins = ["pytester"]


def blocking_get(base_url: str, path: str, api_key: str) -> tuple[int, Any]:
    """A plain blocking HTTP GET, like a synchronous client would make."""
    url = URL(base_url)
    assert url.host is not None
    assert url.port is not None
    connection = http.client.HTTPConnection(url.host, url.port, timeout=5)
    try:
        connection.request("GET", url.path + path, headers={"Authorization": f"Bearer {api_key}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_serve_in_thread_serves_blocking_clients() -> None:
    sim = DifySimulator(time_scale=0.01)
    dataset_id = sim.create_dataset()
    assert sim.base_url is None
    with sim.serve_in_thread() as base_url:
        assert sim.base_url == base_url
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        status, body = blocking_get(base_url, f"/datasets/{dataset_id}/documents", sim.api_key)
        assert (status, body["total"]) == (200, 0)
    assert sim.base_url is None


async def test_serve_in_thread_works_while_the_callers_loop_is_busy() -> None:
    sim = DifySimulator()
    dataset_id = sim.create_dataset()
    with sim.serve_in_thread() as base_url:
        # A blocking call made from inside a running loop: only a server on another loop
        # can answer it.
        status, _ = blocking_get(base_url, f"/datasets/{dataset_id}", sim.api_key)
        assert status == 200
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {sim.api_key}"}
            async with session.get(f"{base_url}/datasets/{dataset_id}", headers=headers) as reply:
                assert reply.status == 200


def test_serve_in_thread_reports_startup_errors() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError), DifySimulator().serve_in_thread(port=port):
            pass  # pragma: no cover - never reached


async def test_app_can_be_served_by_any_aiohttp_runner(aiohttp_client: Any) -> None:
    sim = DifySimulator()
    dataset_id = sim.create_dataset()
    client = await aiohttp_client(sim.app())
    reply = await client.get(
        f"/v1/datasets/{dataset_id}", headers={"Authorization": f"Bearer {sim.api_key}"}
    )
    assert reply.status == 200
    assert (await client.get("/v1/nope")).status == 404
    assert [record.route for record in sim.requests] == ["get_dataset", None]


async def test_serve_forever_creates_a_dataset_and_reports_readiness() -> None:
    sim = DifySimulator()
    ready: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(serve_forever(sim, port=0, on_ready=ready.put_nowait))
    base_url = await asyncio.wait_for(ready.get(), 5)
    assert sim.base_url == base_url
    (dataset_id,) = sim.dataset_ids
    text = describe(sim)
    for needle in (base_url, DEFAULT_API_KEY, dataset_id, "demo"):
        assert needle in text
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.base_url is None
    assert "(not serving)" in describe(sim)
    assert "(none)" in describe(DifySimulator())


def test_the_fixture_serves_a_dataset(dify_simulator: DifySimulator) -> None:
    assert dify_simulator.base_url is not None
    status, body = blocking_get(
        dify_simulator.base_url,
        f"/datasets/{dify_simulator.dataset_id}/documents",
        dify_simulator.api_key,
    )
    assert (status, body["data"]) == (200, [])


async def test_the_fixture_works_in_async_tests(dify_simulator: DifySimulator) -> None:
    document_id, batch = dify_simulator.add_document(dify_simulator.dataset_id, "a.txt", "alpha")
    dataset = f"{dify_simulator.base_url}/datasets/{dify_simulator.dataset_id}"
    url = f"{dataset}/documents/{batch}/indexing-status"
    headers = {"Authorization": f"Bearer {dify_simulator.api_key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(100):
            async with session.get(url) as reply:
                (entry,) = (await reply.json())["data"]
            if entry["indexing_status"] == "completed":
                break
            await asyncio.sleep(0.01)
    assert (entry["id"], entry["indexing_status"]) == (document_id, "completed")


def test_the_plugin_module_works_as_a_pytest_plugin(pytester: pytest.Pytester) -> None:
    plugin = "dify_ingest_tools.testing.pytest_plugin"
    registered = [e.value for e in entry_points(group="pytest11") if e.value == plugin]
    # Installed packages register it through their pytest11 entry point; a source checkout
    # can load it with -p.
    options = [] if registered else ["-p", plugin]
    pytester.makepyfile(
        """
        import http.client
        from yarl import URL

        def test_uses_fixture(dify_simulator):
            url = URL(dify_simulator.base_url)
            connection = http.client.HTTPConnection(url.host, url.port, timeout=5)
            connection.request(
                "GET",
                f"/v1/datasets/{dify_simulator.dataset_id}",
                headers={"Authorization": f"Bearer {dify_simulator.api_key}"},
            )
            assert connection.getresponse().status == 200
            connection.close()
        """
    )
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:cov",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        *options,
    )
    result.assert_outcomes(passed=1)
