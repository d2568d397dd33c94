"""Fault injection, chaos mode and the request log."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from dify_ingest_tools.testing import DifySimulator, Fault, ManualClock

from .helpers import Api

KEYWORD = {
    "search_method": "keyword_search",
    "reranking_enable": False,
    "score_threshold_enabled": False,
}
RATE_LIMIT = "Sorry, you have reached the knowledge base request rate limit of your subscription."


@pytest.fixture
def list_path(dataset_id: str) -> str:
    return f"/v1/datasets/{dataset_id}/documents"


async def test_server_error(sim: DifySimulator, api: Api, list_path: str) -> None:
    sim.inject(Fault.server_error())
    sim.inject(Fault.server_error(503))
    first, second, third = [await api.get(list_path) for _ in range(3)]
    assert (first.status, first.json) == (
        500,
        {"message": "Internal Server Error", "code": "unknown", "status": 500},
    )
    assert (second.status, second.json["status"], second.json["code"]) == (503, 503, "unknown")
    assert third.status == 200


async def test_proxy_html(sim: DifySimulator, api: Api, list_path: str) -> None:
    sim.inject(Fault.proxy_html(504))
    reply = await api.get(list_path)
    assert reply.status == 504
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "<h1>504 Gateway Timeout</h1>" in reply.text


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [
        (1, "1"),
        (1.5, "1.5"),
        (0, "0"),
        ("Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:00 GMT"),
        (None, None),
    ],
)
async def test_too_many_requests(
    sim: DifySimulator,
    api: Api,
    list_path: str,
    retry_after: float | str | None,
    header: str | None,
) -> None:
    sim.inject(Fault.too_many_requests(retry_after))
    reply = await api.get(list_path)
    assert reply.status == 429
    assert reply.json["code"] == "too_many_requests"
    assert reply.json["status"] == 429
    assert reply.headers.get("Retry-After") == header


async def test_knowledge_rate_limit_is_a_403_without_retry_after(
    sim: DifySimulator, api: Api, list_path: str
) -> None:
    sim.inject(Fault.knowledge_rate_limit())
    reply = await api.get(list_path)
    assert reply.status == 403
    assert reply.json == {"code": "forbidden", "message": RATE_LIMIT, "status": 403}
    assert "Retry-After" not in reply.headers


async def test_drop_connection(sim: DifySimulator, base_url: str, dataset_id: str) -> None:
    # aiohttp retries an idempotent request once after a drop, so a GET needs two.
    sim.inject(Fault.drop_connection(), method="GET", times=2)
    sim.inject(Fault.drop_connection(), method="POST")
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    url = f"{base_url}/datasets/{dataset_id}"
    async with aiohttp.ClientSession(headers=headers) as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await session.get(f"{url}/documents")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await session.post(f"{url}/retrieve", json={"query": "x"})
        async with session.get(f"{url}/documents") as after:
            assert after.status == 200
    records = sim.requests
    assert [(r.status, r.fault) for r in records[:3]] == [(0, "drop_connection")] * 3
    assert records[3].status == 200


async def test_malformed_json(sim: DifySimulator, api: Api, list_path: str) -> None:
    sim.inject(Fault.malformed_json())
    reply = await api.get(list_path)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.text)


async def test_wrong_shape(sim: DifySimulator, api: Api, list_path: str) -> None:
    sim.inject(Fault.wrong_shape())
    reply = await api.get(list_path)
    assert (reply.status, reply.json) == (200, {"result": "ok"})


async def test_latency_delays_then_answers_normally(
    sim: DifySimulator, api: Api, list_path: str
) -> None:
    sim.inject(Fault.latency(0.05))
    started = time.monotonic()
    reply = await api.get(list_path)
    assert time.monotonic() - started >= 0.05
    assert reply.status == 200
    assert sim.requests[-1].fault == "latency"


async def test_faults_come_before_auth_but_after_routing(
    sim: DifySimulator, api: Api, list_path: str
) -> None:
    sim.inject(Fault.wrong_shape())
    unrouted = await api.get("/v1/nothing", auth=None)
    assert unrouted.status == 404  # the fault is still queued
    unauthenticated = await api.get(list_path, auth=None)
    assert (unauthenticated.status, unauthenticated.json) == (200, {"result": "ok"})
    assert (await api.get(list_path, auth=None)).status == 401


async def test_route_method_and_times_filters(
    sim: DifySimulator, api: Api, dataset_id: str, list_path: str
) -> None:
    sim.inject(Fault.server_error(), route="retrieve", times=2)
    sim.inject(Fault.server_error(502), route="list_documents", method="post")
    assert (await api.get(list_path)).status == 200  # POST-only fault, GET request
    retrieve = f"/v1/datasets/{dataset_id}/retrieve"
    body = {"query": "x", "retrieval_model": KEYWORD}
    statuses = [(await api.post(retrieve, json=body)).status for _ in range(3)]
    assert statuses == [500, 500, 200]


async def test_forever_until_cleared(sim: DifySimulator, api: Api, list_path: str) -> None:
    sim.inject(Fault.proxy_html(503), times=-1)
    assert [(await api.get(list_path)).status for _ in range(3)] == [503, 503, 503]
    sim.clear_faults()
    assert (await api.get(list_path)).status == 200


def test_bad_fault_arguments(sim: DifySimulator) -> None:
    with pytest.raises(ValueError, match="unknown route"):
        sim.inject(Fault.wrong_shape(), route="nope")
    with pytest.raises(ValueError, match="times"):
        sim.inject(Fault.wrong_shape(), times=0)
    with pytest.raises(ValueError, match="5xx"):
        Fault.server_error(404)
    with pytest.raises(ValueError, match="error status"):
        Fault.proxy_html(200)
    with pytest.raises(ValueError, match="retry_after"):
        Fault.too_many_requests(-1)
    with pytest.raises(ValueError, match="latency"):
        Fault.latency(-1)
    with pytest.raises(ValueError, match="fault_rate"):
        sim.fault_rate = 2


async def test_chaos_mode_is_seeded(clock: ManualClock) -> None:
    async def run() -> list[str | None]:
        sim = DifySimulator(clock=clock, seed=7)
        dataset_id = sim.create_dataset()
        sim.fault_rate = 0.5
        sim.random_faults = [Fault.wrong_shape(), Fault.server_error()]
        async with sim.serve() as base_url, aiohttp.ClientSession() as session:
            api = Api(session, base_url, sim.api_key)
            for _ in range(20):
                await api.get(f"/v1/datasets/{dataset_id}/documents")
        return [record.fault for record in sim.requests]

    first, second = await run(), await run()
    assert first == second
    assert {"wrong_shape", "server_error", None} == set(first)


async def test_chaos_defaults_to_transient_faults_and_clears(
    sim: DifySimulator, api: Api, list_path: str
) -> None:
    assert {fault.kind for fault in sim.random_faults} == {
        "server_error",
        "proxy_html",
        "too_many_requests",
        "knowledge_rate_limit",
        "drop_connection",
    }
    sim.random_faults = [Fault.wrong_shape()]
    sim.fault_rate = 1.0
    assert (await api.get(list_path)).json == {"result": "ok"}
    sim.clear_faults()
    assert sim.fault_rate == 0
    assert (await api.get(list_path)).status == 200


async def test_request_log(
    sim: DifySimulator, api: Api, clock: ManualClock, list_path: str
) -> None:
    await api.get("/v1/unknown", auth=None)
    clock.advance(1)
    await api.get(list_path + "?page=2&limit=5", auth="Bearer wrong")
    await api.get(list_path)
    unknown, rejected, ok = sim.requests
    assert (unknown.route, unknown.status, unknown.authorized, unknown.at) == (None, 404, False, 0)
    assert (rejected.route, rejected.status, rejected.authorized) == ("list_documents", 401, False)
    assert rejected.query == {"page": "2", "limit": "5"}
    assert rejected.path == list_path
    assert (ok.method, ok.status, ok.authorized, ok.at, ok.fault) == ("GET", 200, True, 1, None)
    assert sim.requests_for("list_documents") == [rejected, ok]
    assert sim.requests_for(method="post") == []
    sim.clear_requests()
    assert sim.requests == []


async def test_request_log_keeps_arrival_order(
    sim: DifySimulator, api: Api, dataset_id: str, list_path: str
) -> None:
    sim.inject(Fault.latency(0.1), route="list_documents")
    slow = asyncio.create_task(api.get(list_path))
    await asyncio.sleep(0.03)
    await api.get(f"/v1/datasets/{dataset_id}")
    await slow
    assert [record.route for record in sim.requests] == ["list_documents", "get_dataset"]
