"""Retrieval hits are named from the document list/detail, since Dify's records name nothing.

Against the simulator (which answers retrieve like Dify 1.14.1: ``segment.document`` all
null) and against a stand-in replaying recording 12 (document metadata) over loopback.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.client.doc_names import UNKNOWN, DocumentInfo, DocumentNames
from dify_ingest_tools.testing import DifySimulator, Fault, ManualClock
from tests.conftest import FAST, load_recording

KEYWORD = {
    "search_method": "keyword_search",
    "reranking_enable": False,
    "top_k": 10,
    "score_threshold_enabled": False,
}


async def search(client: AsyncDifyKnowledgeClient, dataset_id: str, query: str) -> list[Any]:
    return await client.retrieve(dataset_id, query, retrieval_model=KEYWORD)


def lookups(sim: DifySimulator) -> Counter[str]:
    return Counter(
        record.route
        for record in sim.requests
        if record.route in ("list_documents", "get_document")
    )


# -- against the simulator -------------------------------------------------------------------


async def test_one_unnamed_document_is_named_from_its_detail_once(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, clock: ManualClock
) -> None:
    sim.add_document(dataset_id, "my notes résumé.txt", "alpha beta\n\nalpha gamma")
    clock.advance(60)
    first = await search(client, dataset_id, "alpha")
    assert len(first) == 2
    assert {chunk.document_name for chunk in first} == {"my notes résumé.txt"}
    assert lookups(sim) == {"get_document": 1}
    again = await search(client, dataset_id, "alpha")
    assert [c.document_name for c in again] == [c.document_name for c in first]
    assert lookups(sim) == {"get_document": 1}  # cached


async def test_many_unnamed_documents_are_named_by_one_list_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, clock: ManualClock
) -> None:
    for index in range(5):
        sim.add_document(dataset_id, f"doc-{index}.md", f"shared word {index}")
    clock.advance(60)
    chunks = await search(client, dataset_id, "shared")
    assert sorted(c.document_name or "" for c in chunks) == [f"doc-{i}.md" for i in range(5)]
    assert lookups(sim) == {"list_documents": 1}


async def test_the_blocking_client_names_hits_too(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str, clock: ManualClock
) -> None:
    sim.add_document(dataset_id, "sync.txt", "alpha")
    clock.advance(60)
    (chunk,) = sync_client.retrieve(dataset_id, "alpha", retrieval_model=KEYWORD)
    assert chunk.document_name == "sync.txt"


async def test_concurrent_retrieves_share_one_lookup(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, clock: ManualClock
) -> None:
    sim.add_document(dataset_id, "shared.txt", "alpha")
    clock.advance(60)
    sim.inject(Fault.latency(0.2), route="get_document")
    results = await asyncio.gather(*(search(client, dataset_id, "alpha") for _ in range(5)))
    assert {chunks[0].document_name for chunks in results} == {"shared.txt"}
    assert lookups(sim) == {"get_document": 1}


@pytest.mark.parametrize(
    "fault",
    [
        Fault.server_error(503),
        Fault.proxy_html(502),
        Fault.too_many_requests(0),
        Fault.knowledge_rate_limit(),
        Fault.malformed_json(),
    ],
)
async def test_a_failed_lookup_leaves_names_unset_and_the_hits_intact(
    sim: DifySimulator,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    clock: ManualClock,
    fault: Fault,
) -> None:
    sim.add_document(dataset_id, "alpha.txt", "alpha")
    clock.advance(60)
    sim.inject(fault, route="get_document")
    (chunk,) = await search(client, dataset_id, "alpha")
    assert chunk.content == "alpha" and chunk.document_name is None
    assert lookups(sim) == {"get_document": 1}  # one attempt, no retries
    # Not cached: the next retrieve asks again and gets the name.
    (chunk,) = await search(client, dataset_id, "alpha")
    assert chunk.document_name == "alpha.txt"


async def test_this_clients_deletes_and_re_uploads_are_seen_at_once(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, clock: ManualClock
) -> None:
    created = await client.create_document_by_text(dataset_id, "first.txt", "alpha")
    clock.advance(60)
    assert (await search(client, dataset_id, "alpha"))[0].document_name == "first.txt"
    again = await client.create_document_by_text(dataset_id, "first.txt", "alpha beta")
    assert again.document_id == created.document_id
    clock.advance(60)
    assert (await search(client, dataset_id, "beta"))[0].document_name == "first.txt"
    assert lookups(sim) == {"get_document": 2}  # the re-upload dropped the cached entry


# -- against a stand-in replaying recording 12 ---------------------------------------------

RECORDING = load_recording("12_document_metadata.json")
A = "b51f609c-4bbb-4313-9228-e005a2c9e0a0"
B = "0776c2e5-b6e3-47f5-96ee-e893adfd571d"
DS = "8e228850-9336-4f03-a8c9-15a35cb614b2"


class RecordedDify:
    """Answers retrieve, list and detail with the bodies a real Dify 1.14.1 sent (12)."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.names = {A: "meta-A-1796140864.txt", B: "meta-B-1796140864.txt"}
        self.detail_delay = 0.0
        self.hits_from: str | None = None  # report every hit as coming from this document
        self.base_url = ""

    def body(self, case: str) -> Any:
        return copy.deepcopy(RECORDING[case]["response"]["body"])

    async def retrieve(self, request: web.Request) -> web.Response:
        self.hits["retrieve"] += 1
        model = (await request.json()).get("retrieval_model") or {}
        filtered = "metadata_filtering_conditions" in model
        case = "retrieve_filter_source_id_is_src_A" if filtered else "retrieve_no_filter"
        body = self.body(case)
        if self.hits_from is not None:
            for record in body["records"]:
                record["segment"]["document_id"] = self.hits_from
        return web.json_response(body)

    async def documents(self, request: web.Request) -> web.Response:
        self.hits["list"] += 1
        body = self.body("document_list")
        for item in body["data"]:
            item["name"] = self.names[item["id"]]
        return web.json_response(body)

    async def document(self, request: web.Request) -> web.Response:
        self.hits["detail"] += 1
        await asyncio.sleep(self.detail_delay)
        if request.match_info["document"] != A:
            missing = {"code": "not_found", "message": "Document not found.", "status": 404}
            return web.json_response(missing, status=404)
        body = self.body("document_A_detail")
        body["name"] = self.names[A]
        return web.json_response(body)


@pytest.fixture
async def recorded() -> AsyncIterator[RecordedDify]:
    stand_in = RecordedDify()
    app = web.Application()
    app.router.add_post("/v1/datasets/{dataset}/retrieve", stand_in.retrieve)
    app.router.add_get("/v1/datasets/{dataset}/documents", stand_in.documents)
    app.router.add_get("/v1/datasets/{dataset}/documents/{document}", stand_in.document)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    stand_in.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    yield stand_in
    await runner.cleanup()


FILTER = {
    **KEYWORD,
    "metadata_filtering_conditions": {
        "logical_operator": "and",
        "conditions": [{"name": "source_id", "comparison_operator": "is", "value": "src-A"}],
    },
}


async def test_recorded_hits_get_names_and_metadata_from_the_list(
    recorded: RecordedDify,
) -> None:
    async with AsyncDifyKnowledgeClient("k", recorded.base_url, **FAST) as client:
        chunks = await client.retrieve(DS, "ocelotmeta", retrieval_model=KEYWORD)
    by_document = {chunk.document_id: chunk for chunk in chunks}
    assert by_document[A].document_name == "meta-A-1796140864.txt"
    assert by_document[B].document_name == "meta-B-1796140864.txt"
    # The list shows the number field as "5"; it is read back as the number it is.
    assert by_document[A].metadata["doc_metadata"] == {"source_id": "src-A", "priority": 5}
    assert by_document[B].metadata["doc_metadata"] == {"source_id": "src-B"}
    assert recorded.hits == {"retrieve": 1, "list": 1}


async def test_a_recorded_single_hit_is_named_from_its_detail(recorded: RecordedDify) -> None:
    async with AsyncDifyKnowledgeClient("k", recorded.base_url, **FAST) as client:
        chunks = await client.retrieve(DS, "ocelotmeta", retrieval_model=FILTER)
    assert {c.document_name for c in chunks} == {"meta-A-1796140864.txt"}
    assert chunks[0].metadata["doc_metadata"] == {"source_id": "src-A", "priority": 5}
    assert recorded.hits == {"retrieve": 1, "detail": 1}


async def test_a_lookup_that_never_answers_costs_at_most_the_client_timeout(
    recorded: RecordedDify,
) -> None:
    recorded.detail_delay = 30.0
    async with AsyncDifyKnowledgeClient("k", recorded.base_url, timeout=0.5, **FAST) as client:
        started = time.monotonic()
        chunks = await client.retrieve(DS, "ocelotmeta", retrieval_model=FILTER)
        assert time.monotonic() - started < 3.0
    assert chunks and all(chunk.document_name is None for chunk in chunks)


async def test_names_expire_after_the_ttl(recorded: RecordedDify) -> None:
    now = [0.0]
    async with AsyncDifyKnowledgeClient("k", recorded.base_url, **FAST) as client:
        client._doc_names.clock = lambda: now[0]
        await client.retrieve(DS, "ocelotmeta", retrieval_model=FILTER)
        recorded.names[A] = "renamed.txt"  # by someone else
        now[0] += client._doc_names.ttl - 1
        stale = await client.retrieve(DS, "ocelotmeta", retrieval_model=FILTER)
        now[0] += 2
        fresh = await client.retrieve(DS, "ocelotmeta", retrieval_model=FILTER)
    assert stale[0].document_name == "meta-A-1796140864.txt"
    assert fresh[0].document_name == "renamed.txt"
    assert recorded.hits["detail"] == 2


async def test_a_deleted_document_is_asked_about_once(recorded: RecordedDify) -> None:
    recorded.hits_from = "0d1e7e7e-0000-4000-8000-000000000000"  # its detail answers 404
    async with AsyncDifyKnowledgeClient("k", recorded.base_url, **FAST) as client:
        for _ in range(3):
            chunks = await client.retrieve(DS, "ocelotmeta", retrieval_model=FILTER)
            assert chunks and all(chunk.document_name is None for chunk in chunks)
    assert recorded.hits == {"retrieve": 3, "detail": 1}


async def test_a_hit_without_a_uuid_document_id_is_not_looked_up(recorded: RecordedDify) -> None:
    recorded.hits_from = "../../datasets"
    async with AsyncDifyKnowledgeClient("k", recorded.base_url, **FAST) as client:
        chunks = await client.retrieve(DS, "ocelotmeta", retrieval_model=FILTER)
    assert chunks and all(chunk.document_name is None for chunk in chunks)
    assert recorded.hits == {"retrieve": 1}


# -- the cache itself ---------------------------------------------------------------------


def test_the_cache_keeps_at_most_its_bound_dropping_the_least_recently_used() -> None:
    names = DocumentNames(max_entries=2)
    names.put("D", "a", DocumentInfo("a.txt", {}))
    names.put("D", "b", DocumentInfo("b.txt", {}))
    assert names.get("d", "A") is not None  # keys ignore case; "a" is now the most recent
    names.put("D", "c", DocumentInfo("c.txt", {}))
    assert len(names) == 2
    assert names.get("D", "b") is None
    assert names.get("D", "a") == DocumentInfo("a.txt", {})
    names.forget("D")
    assert len(names) == 0
    names.put("D", "x", UNKNOWN)
    names.forget("D", "X")
    assert names.get("D", "x") is None


def test_metadata_from_a_hostile_list_is_dropped_not_fatal() -> None:
    from dify_ingest_tools.models.documents import DifyDocument

    odd = DifyDocument.model_validate(
        {
            "id": A,
            "name": 7,
            "doc_metadata": [
                "junk",
                {"id": "built-in", "name": "document_name", "value": "x"},
                {"name": None, "value": 1},
                {"id": "f", "name": "n", "type": "number", "value": "nan"},
                {"id": "g", "name": "m", "type": "number", "value": "1.5"},
            ],
        }
    )
    info = DocumentInfo.of(odd)
    assert info == DocumentInfo(name=None, doc_metadata={"n": "nan", "m": 1.5})
    assert json.dumps(dict(info.doc_metadata))
