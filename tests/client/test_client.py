"""The async client over real HTTP: shapes, creation, retrieval, retries, session ownership."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchIndexingStatus,
    DifyAPIError,
    DifyServerError,
    DifyTimeoutError,
    IndexingStatus,
)
from dify_ingest_tools._base.clock import FakeClock
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault, ManualClock
from tests.conftest import FAST


async def test_status_follows_a_document_to_completed(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    created = await client.create_document_by_text(
        dataset_id, "notes.txt", "Alpha beta.\n\nGamma delta.", indexing_technique="economy"
    )
    assert created.dataset_id == dataset_id and created.name == "notes.txt"
    assert len(created.batch) == 20 and created.batch.isdigit()
    first = await client.get_indexing_status(dataset_id, created.batch)
    assert isinstance(first, BatchIndexingStatus)
    assert (first.dataset_id, first.batch) == (dataset_id, created.batch)
    assert [d.id for d in first.documents] == [created.document_id]
    assert not first.is_completed
    clock.advance(60)
    done = await client.get_indexing_status(dataset_id, created.batch)
    assert done.is_completed and done.is_terminal and not done.is_failed
    assert done.documents[0].indexing_status is IndexingStatus.completed
    assert done.documents[0].completed_at is not None
    assert done.completed_segments == done.total_segments > 0
    assert done.observed_at > first.observed_at


async def test_create_sends_the_canonical_path_and_default_process_rule(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    await client.create_document_by_text(
        dataset_id,
        "a.txt",
        "text",
        indexing_technique="high_quality",
        doc_form="text_model",
        doc_language="English",
    )
    [create] = sim.requests_for(route="create_by_text")
    assert create.path == f"/v1/datasets/{dataset_id}/document/create-by-text"
    assert create.method == "POST" and create.status == 200
    assert sim.requests_for(route="get_dataset") == []  # technique given: no lookup


async def test_missing_technique_is_filled_from_the_dataset_once(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    # Dify 1.14 requires indexing_technique on create-by-text even for an economy dataset.
    first = await client.create_document_by_text(dataset_id, "a.txt", "one")
    second = await client.create_document_by_text(dataset_id, "b.txt", "two")
    assert first.document_id != second.document_id
    assert len(sim.requests_for(route="get_dataset")) == 1  # cached
    assert [r.status for r in sim.requests_for(route="create_by_text")] == [200, 200]


async def test_concurrent_creates_into_one_dataset_read_its_settings_once(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    other = sim.create_dataset("other")
    # A slow settings answer: every create arrives while the first lookup is in flight.
    sim.inject(Fault.latency(0.2), route="get_dataset", times=1)
    creates = [
        client.create_document_by_text(dataset_id, f"doc-{number}.txt", "text")
        for number in range(20)
    ]
    created = await asyncio.gather(*creates, client.create_document_by_text(other, "o.txt", "x"))
    assert len({doc.document_id for doc in created}) == 21
    lookups = [r.path for r in sim.requests_for(route="get_dataset")]
    assert sorted(lookups) == sorted([f"/v1/datasets/{dataset_id}", f"/v1/datasets/{other}"])
    assert {r.status for r in sim.requests_for(route="create_by_text")} == {200}


@pytest.mark.slow  # the simulator's latency fault holds the read open in real time
async def test_a_cancelled_settings_reader_leaves_the_read_to_the_others(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.inject(Fault.latency(0.2), route="get_dataset", times=1)
    first = asyncio.ensure_future(client.get_dataset(dataset_id))
    second = asyncio.ensure_future(client.get_dataset(dataset_id))
    await asyncio.sleep(0.05)  # both wait on the one read
    first.cancel()
    assert (await asyncio.wait_for(second, 5))["id"] == dataset_id
    assert first.cancelled()
    assert len(sim.requests_for(route="get_dataset")) == 1


async def test_a_failed_settings_lookup_is_shared_then_tried_again(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.inject(Fault.server_error(503), route="get_dataset", times=-1)
    lookups = [client.get_dataset(dataset_id) for _ in range(5)]
    outcomes = await asyncio.gather(*lookups, return_exceptions=True)
    assert all(isinstance(outcome, DifyServerError) for outcome in outcomes)
    attempts = len(sim.requests_for(route="get_dataset"))
    assert attempts == 1 + client.retry_policy.max_retries  # one request and its retries
    sim.clear_faults()
    assert (await client.get_dataset(dataset_id))["id"] == dataset_id  # not cached as failed
    assert len(sim.requests_for(route="get_dataset")) == attempts + 1


async def test_when_the_dataset_cannot_be_read_the_error_says_what_to_pass(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.dataset_detail_error = True  # the recorded "Failed to request plugin daemon" 400
    with pytest.raises(DifyAPIError) as caught:
        await client.create_document_by_text(dataset_id, "a.txt", "one")
    assert caught.value.status == 400 and "indexing_technique" in caught.value.message
    assert "pass indexing_technique='economy'" in str(caught.value)
    assert len(sim.requests_for(route="create_by_text")) == 1


async def test_create_is_an_upsert_by_name(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    first = await client.create_document_by_text(dataset_id, "same.txt", "v1")
    again = await client.create_document_by_text(dataset_id, "same.txt", "v2")
    assert again.document_id == first.document_id
    assert again.batch != first.batch


async def test_create_by_file_from_path_bytes_and_file_object(
    sim: DifySimulator,
    clock: ManualClock,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "from-path.txt"
    path.write_text("Paragraph one.\n\nParagraph two.")
    by_path = await client.create_document_by_file(dataset_id, path)
    by_bytes = await client.create_document_by_file(
        dataset_id, b"bytes body", filename="from-bytes.md", indexing_technique="economy"
    )
    by_object = await client.create_document_by_file(
        dataset_id,
        io.BytesIO(b"object body"),
        filename="from-object.txt",
        process_rule={"mode": "automatic"},
        doc_form="text_model",
    )
    with path.open("rb") as handle:
        by_handle = await client.create_document_by_file(dataset_id, handle)
    assert [d.name for d in (by_path, by_bytes, by_object, by_handle)] == [
        "from-path.txt",
        "from-bytes.md",
        "from-object.txt",
        "from-path.txt",
    ]
    assert by_handle.document_id == by_path.document_id  # same name: upsert
    clock.advance(60)
    status = await client.get_indexing_status(dataset_id, by_bytes.batch)
    assert status.is_completed
    records = sim.requests_for(route="create_by_file")
    assert [r.path.rsplit("/", 1)[-1] for r in records] == ["create-by-file"] * 4


async def test_create_by_file_input_errors(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(ValueError, match="filename is required"):
        await client.create_document_by_file(dataset_id, b"x")
    with pytest.raises(TypeError, match="binary mode"):
        await client.create_document_by_file(dataset_id, io.StringIO("x"), filename="a.txt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="filename is required"):
        await client.create_document_by_file(dataset_id, io.BytesIO(b"x"))
    with pytest.raises(TypeError, match="path, bytes"):
        await client.create_document_by_file(dataset_id, 42)  # type: ignore[arg-type]


async def test_corrupt_pdf_is_accepted_then_fails_with_difys_text(
    clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    created = await client.create_document_by_file(dataset_id, b"not a pdf", filename="corrupt.pdf")
    clock.advance(60)
    status = await client.get_indexing_status(dataset_id, created.batch)
    assert status.is_failed and status.is_terminal
    assert (
        status.failed_documents[0].error == "Failed to load document (PDFium: Data format error)."
    )


async def test_multi_document_batch_with_unknown_status(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    doc_a, shared = sim.add_document(dataset_id, "a.txt", "alpha")
    doc_b, _ = sim.add_document(
        dataset_id,
        "b.txt",
        "beta",
        batch=shared,
        script=DocumentScript(stages=[("vectorizing", 1000.0)]),
    )
    status = await client.get_indexing_status(dataset_id, shared)
    assert sorted(d.id for d in status.documents) == sorted([doc_a, doc_b])
    assert status.document(doc_b).indexing_status == "vectorizing"
    assert not status.is_terminal


async def test_documents_list_detail_and_delete(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    created = await client.create_document_by_text(dataset_id, "kept.txt", "Some words here.")
    await client.create_document_by_text(dataset_id, "other.txt", "More words.")
    clock.advance(60)
    detail = await client.get_document(dataset_id, created.document_id)
    assert detail.id == created.document_id and detail.name == "kept.txt"
    assert detail.display_status == "available"
    assert detail.indexing_status is IndexingStatus.completed
    page = await client.list_documents(dataset_id, status="available", limit=1)
    assert page.limit == 1 and page.total == 2 and page.has_more and len(page.data) == 1
    found = await client.list_documents(dataset_id, keyword="kept")
    assert [d.name for d in found.data] == ["kept.txt"]
    [listed] = sim.requests_for(route="list_documents")[:1]
    assert listed.query == {"page": "1", "limit": "1", "status": "available"}
    assert await client.delete_document(dataset_id, created.document_id) is None
    remaining = await client.list_documents(dataset_id)
    assert [d.name for d in remaining.data] == ["other.txt"]


async def test_retrieve_returns_typed_chunks(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    created = await client.create_document_by_text(
        dataset_id, "kb.txt", "Readiness means every document is completed.\n\nUnrelated text."
    )
    clock.advance(60)
    hits = await client.retrieve(dataset_id, "document completed readiness", top_k=2)
    assert hits and len(hits) <= 2
    assert hits[0].document_id == created.document_id
    assert "completed" in hits[0].content and hits[0].segment_id
    assert hits[0].score is not None
    none = await client.retrieve(dataset_id, "zzzqqqxxyy")
    assert none == []


async def test_retrieve_builds_a_complete_retrieval_model(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    await client.create_document_by_text(dataset_id, "kb.txt", "alpha beta gamma")
    clock.advance(60)
    assert await client.retrieve(
        dataset_id,
        "alpha",
        retrieval_model={
            "search_method": "keyword_search",
            "reranking_enable": False,
            "top_k": 3,
            "score_threshold_enabled": False,
        },
    )
    assert await client.retrieve(dataset_id, "alpha", score_threshold=0.1)
    assert await client.retrieve(
        dataset_id, "alpha", top_k=1, retrieval_model={"search_method": "keyword_search"}
    )
    sim.dataset_detail_error = True
    async with AsyncDifyKnowledgeClient(sim.api_key, client.base_url, **FAST) as fresh:
        assert await fresh.retrieve(dataset_id, "alpha", top_k=1)


async def test_reads_are_retried_through_transient_failures(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    sim.inject(Fault.server_error(503), route="indexing_status")
    sim.inject(Fault.proxy_html(502), route="indexing_status")
    sim.inject(Fault.drop_connection(), route="indexing_status")
    status = await client.get_indexing_status(dataset_id, batch)
    assert status.documents
    statuses = [r.status for r in sim.requests_for(route="indexing_status")]
    assert len(statuses) == 4 and statuses[-1] == 200


async def test_retries_stop_at_max_retries(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.server_error(500), route="indexing_status", times=-1)
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, max_retries=3, **FAST) as client:
        with pytest.raises(DifyServerError):
            await client.get_indexing_status(dataset_id, "20261128154005508280")
    assert len(sim.requests_for(route="indexing_status")) == 4


async def test_creates_are_not_retried_unless_asked(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.server_error(500), route="create_by_text")
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, **FAST) as client:
        with pytest.raises(DifyServerError):
            await client.create_document_by_text(
                dataset_id, "a.txt", "x", indexing_technique="economy"
            )
    assert len(sim.requests_for(route="create_by_text")) == 1
    sim.clear_requests()
    sim.inject(Fault.server_error(500), route="create_by_file")
    async with AsyncDifyKnowledgeClient(
        sim.api_key, base_url, retry_creates=True, **FAST
    ) as client:
        created = await client.create_document_by_file(
            dataset_id, b"x", filename="a.txt", indexing_technique="economy"
        )
    assert created.name == "a.txt"
    assert [r.status for r in sim.requests_for(route="create_by_file")] == [500, 200]


async def test_retry_after_is_honoured(
    sim: DifySimulator,
    fake_client: AsyncDifyKnowledgeClient,
    fake_clock: FakeClock,
    dataset_id: str,
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    sim.inject(Fault.too_many_requests(retry_after=2), route="indexing_status")
    assert (await fake_client.get_indexing_status(dataset_id, batch)).documents
    # The retry went out exactly Retry-After later, on the client's clock.
    assert fake_clock.now == 2.0
    assert [r.status for r in sim.requests_for(route="indexing_status")] == [429, 200]


async def test_deadline_bounds_attempts_and_backoff(
    sim: DifySimulator,
    fake_client: AsyncDifyKnowledgeClient,
    fake_clock: FakeClock,
    dataset_id: str,
) -> None:
    client = fake_client
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    past = fake_clock.now - 1
    with pytest.raises(DifyTimeoutError, match="deadline passed"):
        await client.get_indexing_status(dataset_id, batch, deadline=past)
    assert sim.requests_for(route="indexing_status") == []
    # A Retry-After longer than the time left: give up now instead of sleeping past it.
    sim.inject(Fault.too_many_requests(retry_after=30), route="indexing_status")
    with pytest.raises(DifyAPIError) as caught:
        await client.get_indexing_status(dataset_id, batch, deadline=fake_clock.now + 5)
    assert fake_clock.now == 0.0  # not a moment slept
    assert caught.value.status == 429
    assert len(sim.requests_for(route="indexing_status")) == 1


async def test_caller_supplied_session_is_used_and_left_open(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    async with aiohttp.ClientSession() as session:
        async with AsyncDifyKnowledgeClient(sim.api_key, base_url, session=session) as client:
            _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
            assert (await client.get_indexing_status(dataset_id, batch)).documents
        assert client.closed and not session.closed
        with pytest.raises(RuntimeError, match="closed"):
            await client.get_indexing_status(dataset_id, batch)


async def test_client_owns_and_closes_its_session(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    client = AsyncDifyKnowledgeClient(sim.api_key, base_url)
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    await client.get_indexing_status(dataset_id, batch)
    session = client._transport.session
    assert session is not None and not session.closed
    await client.aclose()
    await client.aclose()  # idempotent
    assert session.closed


async def test_redirects_are_not_followed(sim: DifySimulator, dataset_id: str) -> None:
    from aiohttp import web

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://elsewhere.example/v1" + request.path)

    app = web.Application()
    app.router.add_get("/{tail:.*}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with AsyncDifyKnowledgeClient("k", f"http://127.0.0.1:{port}/v1") as client:
            with pytest.raises(DifyAPIError, match="redirect") as caught:
                await client.get_indexing_status(dataset_id, "1")
        assert caught.value.status == 302
    finally:
        await runner.cleanup()


async def test_oversized_answers_are_refused(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, max_response_bytes=64) as client:
        with pytest.raises(DifyAPIError) as caught:
            await client.get_indexing_status(dataset_id, batch)
    assert caught.value.code == "response_too_large"


def test_construction_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    with pytest.raises(ValueError, match="DIFY_API_KEY"):
        AsyncDifyKnowledgeClient()
    with pytest.raises(ValueError, match="whitespace"):
        AsyncDifyKnowledgeClient("dataset-abc def")
    with pytest.raises(ValueError, match="base_url must be an http"):
        AsyncDifyKnowledgeClient("k", "ftp://example.com/v1")
    with pytest.raises(ValueError, match="timeout"):
        AsyncDifyKnowledgeClient("k", timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        AsyncDifyKnowledgeClient("k", max_retries=-1)


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFY_API_KEY", "dataset-from-env")
    monkeypatch.delenv("DIFY_API_BASE_URL", raising=False)
    client = AsyncDifyKnowledgeClient()
    assert client.base_url == "https://api.dify.ai/v1"
    assert client.api_key.get_secret_value() == "dataset-from-env"
    monkeypatch.setenv("DIFY_API_BASE_URL", "http://localhost:5001/v1/")
    assert AsyncDifyKnowledgeClient().base_url == "http://localhost:5001/v1"
    assert (
        AsyncDifyKnowledgeClient(base_url="https://x.example/v1").base_url == "https://x.example/v1"
    )


@pytest.mark.slow  # the simulator's latency fault holds the polls open in real time
async def test_concurrent_identical_status_calls_share_one_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    import asyncio

    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    sim.inject(Fault.latency(0.1), route="indexing_status")
    results = await asyncio.gather(
        *(client.get_indexing_status(dataset_id, batch) for _ in range(10))
    )
    assert {r.batch for r in results} == {batch}
    assert len(sim.requests_for(route="indexing_status")) == 1
    # The first caller giving up does not take the others down with it.
    sim.inject(Fault.latency(0.1), route="indexing_status")
    first = asyncio.ensure_future(client.get_indexing_status(dataset_id, batch))
    await asyncio.sleep(0.02)
    others = asyncio.gather(*(client.get_indexing_status(dataset_id, batch) for _ in range(3)))
    await asyncio.sleep(0.02)
    first.cancel()
    assert all(r.batch == batch for r in await others)
    with pytest.raises(asyncio.CancelledError):
        await first
    # And an error reaches every caller.
    sim.clear_requests()
    sim.inject(Fault.server_error(500), route="indexing_status", times=-1)
    outcomes = await asyncio.gather(
        *(client.get_indexing_status(dataset_id, batch) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, DifyServerError) for o in outcomes)
    assert len(sim.requests_for(route="indexing_status")) == 4  # one call, with its retries


async def test_every_retrieve_on_an_economy_dataset_searches_its_keyword_table(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    # Like one made through Dify's API, the dataset stores semantic_search, which an economy
    # dataset answers with a 400 (recording 17): every call shape must send keyword_search.
    created = await client.create_document_by_text(dataset_id, "cat.txt", "The ocelot hunts.")
    clock.advance(60)
    options: list[dict[str, Any]] = [
        {},
        {"top_k": 3},
        {"score_threshold": 0.1},
        {"retrieval_model": {"top_k": 2}},
        {"retrieval_model": {"reranking_enable": False}, "top_k": 1},
    ]
    for option in options:
        hits = await client.retrieve(dataset_id, "ocelot", **option)
        assert [hit.document_id for hit in hits] == [created.document_id], option
    assert len(sim.requests_for(route="get_dataset")) == 1  # read once per client
    # A search method the caller names is sent as named, and Dify's refusal is theirs.
    semantic = {"search_method": "semantic_search", "reranking_enable": False}
    with pytest.raises(DifyAPIError) as refused:
        await client.retrieve(
            dataset_id, "ocelot", retrieval_model={**semantic, "score_threshold_enabled": False}
        )
    assert (refused.value.status, refused.value.code) == (400, "invalid_param")
    assert refused.value.message == "Default model not found for text-embedding"


async def test_a_retrieve_that_cannot_read_the_dataset_learns_it_is_economy_from_dify(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.add_document(dataset_id, "cat.txt", "The ocelot hunts.")
    clock.advance(60)
    sim.dataset_detail_error = True  # a server without its plugin daemon (recording 08)
    async with AsyncDifyKnowledgeClient(sim.api_key, client.base_url, **FAST) as fresh:
        sim.clear_requests()
        assert await fresh.retrieve(dataset_id, "ocelot", top_k=1)
        # The guessed vector search got Dify's "no embedding model" 400: keyword search next.
        assert [r.status for r in sim.requests_for(route="retrieve")] == [400, 200]
        sim.clear_requests()
        assert await fresh.retrieve(dataset_id, "ocelot")
        assert [r.status for r in sim.requests_for(route="retrieve")] == [200]
    # A client that created the dataset knows its technique without reading it.
    async with AsyncDifyKnowledgeClient(sim.api_key, client.base_url, **FAST) as maker:
        made = await maker.create_dataset("made-here")
        await maker.create_document_by_text(made["id"], "cat.txt", "The ocelot hunts.")
        clock.advance(60)
        sim.clear_requests()
        assert await maker.retrieve(made["id"], "ocelot")
        assert [r.status for r in sim.requests_for(route="retrieve")] == [200]
