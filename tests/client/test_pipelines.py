"""Knowledge pipelines: ``run_pipeline`` starts a batch every wait takes; the simulator's route."""

from __future__ import annotations

import aiohttp
import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAPIError,
    DifyKnowledgeClient,
    DifyNotFoundError,
    DifyResponseError,
    PipelineRun,
)
from dify_ingest_tools.testing import DifySimulator, Fault, ManualClock
from tests.conftest import QUICK

CRAWL = [
    {"url": "https://example.com/a", "title": "Page A"},
    {"url": "https://example.com/b", "title": "Page B"},
]


async def test_a_pipeline_run_is_a_batch_every_wait_takes(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, dataset_id: str, advancing: None
) -> None:
    sim.enable_pipeline(dataset_id, text="The text of {name}, about herons.")
    run = await client.run_pipeline(dataset_id, "website_crawl", CRAWL, start_node_id="node-1")
    assert isinstance(run, PipelineRun) and len(run.batch) == 20
    assert [d.name for d in run.documents] == ["Page A", "Page B"]
    assert {d.batch for d in run.documents} == {run.batch}
    status = await client.wait_for_indexing(run.dataset_id, run.batch, **QUICK)
    assert status.is_completed and sorted(d.id for d in status.documents) == sorted(
        run.document_ids
    )
    (again,) = await client.wait_for_batches([run], **QUICK)  # the run itself is a batch handle
    assert again.is_completed
    hits = await client.retrieve(dataset_id, "herons", top_k=5)
    assert {h.document_name for h in hits} == {"Page A", "Page B"}


def test_the_blocking_twin_runs_a_pipeline(
    sync_client: DifyKnowledgeClient, sim: DifySimulator, dataset_id: str, ticker: None
) -> None:
    sim.enable_pipeline(dataset_id)
    run = sync_client.run_pipeline(
        dataset_id,
        "local_file",
        [{"reference": "4f7c1a52-0000-4000-8000-000000000001", "name": "report.pdf"}],
        start_node_id="1719288585006",
        inputs={"lang": "en"},
    )
    assert sync_client.wait_for_indexing(dataset_id, run.batch, **QUICK).is_completed


async def test_a_pipeline_that_extracts_nothing_completes_with_no_chunks(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, clock: ManualClock, dataset_id: str
) -> None:
    sim.enable_pipeline(dataset_id, text="")
    run = await client.run_pipeline(dataset_id, "website_crawl", CRAWL[:1], start_node_id="n")
    clock.advance(600)
    status = await client.get_indexing_status(dataset_id, run.batch)
    (document,) = status.documents
    assert document.indexing_status == "completed" and document.total_segments == 0


async def test_a_knowledge_base_without_a_pipeline_is_refused_as_dify_does(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, dataset_id: str
) -> None:
    with pytest.raises(DifyAPIError) as caught:
        await client.run_pipeline(dataset_id, "website_crawl", CRAWL, start_node_id="n")
    assert (caught.value.status, caught.value.code) == (400, "invalid_param")
    assert caught.value.message == "Pipeline not found"
    unknown = "0b8d5b7c-1111-4222-8333-444455556666"
    with pytest.raises(DifyNotFoundError, match="Dataset not found"):
        await client.run_pipeline(unknown, "website_crawl", CRAWL, start_node_id="n")
    sim.enable_pipeline(dataset_id)
    sim.set_api_enabled(dataset_id, False)
    with pytest.raises(DifyAPIError, match="api access is not enabled") as denied:
        await client.run_pipeline(dataset_id, "website_crawl", CRAWL, start_node_id="n")
    assert denied.value.status == 403


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("ftp", CRAWL, "n"), ValueError, "datasource_type"),
        (("website_crawl", [], "n"), ValueError, "at least one"),
        (("website_crawl", [{"title": "no url"}], "n"), ValueError, "needs url"),
        (("local_file", [{"name": "x.pdf"}], "n"), ValueError, "needs reference"),
        (("website_crawl", CRAWL, "  "), ValueError, "start_node_id"),
        (("website_crawl", {"url": "u"}, "n"), TypeError, "list of objects"),
        (("website_crawl", ["https://x"], "n"), TypeError, r"\[0\] must be an object"),
    ],
)
async def test_a_malformed_run_is_refused_before_anything_is_sent(
    client: AsyncDifyKnowledgeClient,
    sim: DifySimulator,
    dataset_id: str,
    args: tuple[object, object, object],
    error: type[Exception],
    match: str,
) -> None:
    kind, items, node = args
    with pytest.raises(error, match=match):
        await client.run_pipeline(dataset_id, kind, items, start_node_id=node)  # type: ignore[arg-type]
    assert sim.requests_for(route="pipeline_run") == []


async def test_the_simulator_route_validates_and_answers_like_dify(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.enable_pipeline(dataset_id)
    url = f"{base_url}/datasets/{dataset_id}/pipeline/run"
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    full = {
        "inputs": {},
        "datasource_type": "website_crawl",
        "datasource_info_list": CRAWL,
        "start_node_id": "n",
        "is_published": True,
        "response_mode": "blocking",
    }
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(url, json={"inputs": {}}) as response:
            body = await response.json()
            assert response.status == 400 and body["code"] == "invalid_param"
            assert "datasource_type\n  Field required" in body["message"]
        async with session.post(url, data=b"{not json") as response:
            assert (response.status, (await response.json())["code"]) == (400, "bad_request")
        async with session.post(url, json={**full, "datasource_type": "ftp"}) as response:
            body = await response.json()
            assert (response.status, body["code"]) == (500, "pipeline_run_error")
        async with session.post(url, json={**full, "is_published": False}) as response:
            draft = await response.json()
            assert response.status == 200 and "batch" not in draft
            assert draft["data"]["status"] == "succeeded"
        async with session.post(url, json=full) as response:
            run = await response.json()
            assert set(run) == {"batch", "dataset", "documents"}
            assert run["dataset"]["id"] == dataset_id
            assert [d["indexing_status"] for d in run["documents"]] == ["waiting", "waiting"]
        async with session.post(url, json=full, headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
    # The draft run created nothing: only the published run's two documents exist.
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url) as client:
        assert (await client.list_documents(dataset_id)).total == 2


async def test_an_answer_without_a_batch_is_a_response_error_and_never_resent(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, dataset_id: str
) -> None:
    sim.enable_pipeline(dataset_id)
    sim.inject(Fault.wrong_shape(), route="pipeline_run")
    with pytest.raises(DifyResponseError, match="batch"):
        await client.run_pipeline(dataset_id, "website_crawl", CRAWL, start_node_id="n")
    sim.inject(Fault.server_error(502), route="pipeline_run")
    with pytest.raises(DifyAPIError):
        await client.run_pipeline(dataset_id, "website_crawl", CRAWL, start_node_id="n")
    # A run creates documents: it is sent once, never retried.
    assert len(sim.requests_for(route="pipeline_run")) == 2
