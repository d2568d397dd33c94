"""The per-workspace knowledge rate limit: Dify Cloud's sliding window, refused calls counted."""

from __future__ import annotations

import json

import pytest

from dify_ingest_tools.testing import DifySimulator, ManualClock

from .helpers import Api

DIFY_BODY = {
    "code": "forbidden",
    "message": (
        "Sorry, you have reached the knowledge base request rate limit of your subscription."
    ),
    "status": 403,
}


def create_path(dataset_id: str) -> str:
    return f"/v1/datasets/{dataset_id}/document/create-by-text"


async def create(api: Api, dataset_id: str, name: str) -> int:
    body = {"name": name, "text": "alpha", "indexing_technique": "economy"}
    reply = await api.post(create_path(dataset_id), json=body)
    return reply.status


async def test_requests_over_the_limit_get_difys_403_body(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    sim.set_rate_limit(3, window=60)
    statuses = [await create(api, dataset_id, f"{i}.txt") for i in range(3)]
    assert statuses == [200, 200, 200]
    body = {"name": "4.txt", "text": "alpha", "indexing_technique": "economy"}
    reply = await api.post(create_path(dataset_id), json=body)
    assert reply.status == 403
    assert json.loads(reply.text) == DIFY_BODY
    assert "Retry-After" not in reply.headers
    assert sim.rate_limited_count() == 1


async def test_refused_calls_keep_the_window_full(
    sim: DifySimulator, clock: ManualClock, api: Api, dataset_id: str
) -> None:
    sim.set_rate_limit(2, window=10)
    assert [await create(api, dataset_id, "a.txt") for _ in range(2)] == [200, 200]  # t=0
    clock.advance(5)
    assert await create(api, dataset_id, "b.txt") == 403  # t=5, counted
    clock.advance(5)
    # t=10: the two from t=0 left the window, but the refused one from t=5 is still in it.
    assert await create(api, dataset_id, "c.txt") == 200
    assert await create(api, dataset_id, "d.txt") == 403
    clock.advance(10)
    assert await create(api, dataset_id, "e.txt") == 200


async def test_status_polls_lists_and_details_are_never_limited(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    sim.set_rate_limit(1, window=60)
    created = await api.create_text(dataset_id, "a.txt", "alpha")
    batch, document_id = created["batch"], created["document"]["id"]
    for _ in range(5):
        assert (
            await api.get(f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status")
        ).status == 200
        assert (await api.get(f"/v1/datasets/{dataset_id}/documents")).status == 200
        assert (await api.get(f"/v1/datasets/{dataset_id}/documents/{document_id}")).status == 200
        assert (await api.get(f"/v1/datasets/{dataset_id}")).status == 200
    retrieve = await api.post(f"/v1/datasets/{dataset_id}/retrieve", json={"query": "alpha"})
    assert retrieve.status == 403
    delete = await api.delete(f"/v1/datasets/{dataset_id}/documents/{document_id}")
    assert delete.status == 403


async def test_keys_of_one_workspace_share_the_window_and_other_workspaces_do_not(
    clock: ManualClock,
) -> None:
    import aiohttp

    sim = DifySimulator(["dataset-a1", "dataset-a2", "dataset-b1"], clock=clock)
    dataset_id = sim.create_dataset("shared")
    sim.set_rate_limit(2, window=60, workspaces={"dataset-b1": "b"})
    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        a1, a2, b1 = (Api(session, base_url, key) for key in sim._core.keys)
        assert await create(a1, dataset_id, "1.txt") == 200
        assert await create(a2, dataset_id, "2.txt") == 200
        assert await create(a2, dataset_id, "3.txt") == 403
        assert await create(a1, dataset_id, "4.txt") == 403
        assert await create(b1, dataset_id, "5.txt") == 200
    assert sim.rate_limited_count() == 2
    assert sim.rate_limited_count("b") == 0


async def test_requests_refused_for_their_key_or_dataset_are_not_counted(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    sim.set_rate_limit(1, window=60)
    unknown = "00000000-0000-4000-8000-000000000000"
    for _ in range(3):
        bad_key = await api.post(create_path(dataset_id), json={}, auth="Bearer dataset-nope")
        assert bad_key.status == 401
        assert await create(api, unknown, "x.txt") == 404
    assert await create(api, dataset_id, "ok.txt") == 200


async def test_turning_the_limit_off_admits_everything(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    sim.set_rate_limit(1)
    assert await create(api, dataset_id, "1.txt") == 200
    assert await create(api, dataset_id, "2.txt") == 403
    sim.set_rate_limit(None)
    assert await create(api, dataset_id, "3.txt") == 200
    assert sim.rate_limited_count() == 0


def test_rate_limit_settings_are_validated(sim: DifySimulator) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        sim.set_rate_limit(0)
    with pytest.raises(ValueError, match="> 0 seconds"):
        sim.set_rate_limit(5, window=0)
