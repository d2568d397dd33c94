"""Creating and deleting knowledge bases: against the simulator, and byte for byte against the
recorded exchange with a real Dify (a small server in the test replays the recording)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAPIError,
    DifyConnectionError,
    DifyKnowledgeClient,
    DifyNotFoundError,
    DifyResponseError,
)
from dify_ingest_tools.testing import DifySimulator, Fault, ManualClock
from tests.conftest import FAST, load_recording


async def test_a_created_knowledge_base_takes_documents_and_deletion_removes_it(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient
) -> None:
    dataset = await client.create_dataset("scratch", description="for a notebook")
    dataset_id = dataset["id"]
    assert dataset_id in sim.dataset_ids
    assert (dataset["name"], dataset["description"]) == ("scratch", "for a notebook")
    assert (dataset["indexing_technique"], dataset["permission"]) == ("economy", "only_me")

    created = await client.create_document_by_text(dataset_id, "a.md", "alpha")
    clock.advance(60)
    status = await client.wait_for_indexing(dataset_id, created.batch, poll_interval=0.01)
    assert status.is_completed
    assert (await client.get_dataset(dataset_id))["id"] == dataset_id  # now cached

    await client.delete_dataset(dataset_id)
    assert dataset_id not in sim.dataset_ids
    with pytest.raises(DifyNotFoundError) as gone:
        await client.get_dataset(dataset_id)  # not answered from the cache
    assert gone.value.is_dataset_missing
    with pytest.raises(DifyNotFoundError):
        await client.delete_dataset(dataset_id)


def test_the_blocking_client_creates_and_deletes_too(
    sim: DifySimulator, sync_client: DifyKnowledgeClient
) -> None:
    dataset = sync_client.create_dataset(
        "team notes", indexing_technique="high_quality", permission="all_team_members"
    )
    assert dataset["indexing_technique"] == "high_quality"
    assert dataset["permission"] == "all_team_members"
    sync_client.delete_dataset(dataset["id"])
    assert dataset["id"] not in sim.dataset_ids


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": ""}, "name must be a non-empty string"),
        ({"name": "   "}, "name must be a non-empty string"),
        ({"name": "x" * 41}, "at most 40 characters"),
        ({"name": "n", "indexing_technique": "fast"}, "indexing_technique must be one of"),
        ({"name": "n", "permission": "everyone"}, "permission must be one of"),
        ({"name": "n", "description": "d" * 401}, "description must be at most 400"),
    ],
)
async def test_invalid_arguments_are_refused_before_any_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, arguments: dict[str, Any], message: str
) -> None:
    sim.clear_requests()
    with pytest.raises(ValueError, match=message):
        await client.create_dataset(**arguments)
    with pytest.raises(ValueError, match="UUID"):
        await client.delete_dataset("../datasets")
    assert sim.requests == []


async def test_a_name_already_taken_is_difys_409(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient
) -> None:
    await client.create_dataset("twice")
    with pytest.raises(DifyAPIError) as caught:
        await client.create_dataset("twice")
    assert (caught.value.status, caught.value.code) == (409, "dataset_name_duplicate")


async def test_a_create_is_sent_once_even_when_the_connection_drops(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient
) -> None:
    sim.inject(Fault.drop_connection(), route="create_dataset", times=1)
    sim.clear_requests()
    with pytest.raises(DifyConnectionError):
        await client.create_dataset("dropped")
    # A retry could have created it twice, or met the first one's name (409).
    assert len(sim.requests_for("create_dataset", "POST")) == 1


async def test_an_answer_without_an_id_is_a_response_error(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient
) -> None:
    sim.inject(Fault.wrong_shape(), route="create_dataset", times=1)
    with pytest.raises(DifyResponseError, match="dataset object with an id"):
        await client.create_dataset("shapeless")


@pytest.fixture
async def replaying() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A server that answers like the recorded Dify 1.14.1 and keeps what it was sent."""
    recorded = load_recording("00_create_dataset_economy.json")
    seen: list[dict[str, Any]] = []

    async def create(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "json": await request.json()})
        return web.json_response(recorded["response"]["body"])

    async def delete(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "method": request.method})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/v1/datasets", create)
    app.router.add_delete("/v1/datasets/{dataset_id}", delete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen
    finally:
        await runner.cleanup()


async def test_the_request_is_the_recorded_one(
    replaying: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = replaying
    recorded = load_recording("00_create_dataset_economy.json")
    sent = recorded["request"]["json"]
    async with AsyncDifyKnowledgeClient("dataset-replay", url, **FAST) as client:
        dataset = await client.create_dataset(
            sent["name"],
            indexing_technique=sent["indexing_technique"],
            permission=sent["permission"],
            description=sent["description"],
        )
        await client.delete_dataset(dataset["id"])
    assert seen[0] == {"path": recorded["request"]["path"], "json": sent}
    assert dataset == recorded["response"]["body"]
    assert seen[1] == {"path": f"/v1/datasets/{dataset['id']}", "method": "DELETE"}
