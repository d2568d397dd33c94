"""DifyRetriever: documents and metadata, and the readiness gate proven by the request log."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyKnowledgeClient,
    IndexingTimeoutError,
)
from dify_ingest_tools.langchain import CUSTOM_EVENT_NAMES, DifyDocumentUploader, DifyRetriever
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock
from dify_ingest_tools.testing._script import DEFAULT_STAGES

from .conftest import QUICK, REFUND_FAQ

# A default document completes this many simulator seconds after its creation.
INDEXING_TIME = sum(seconds for _, seconds in DEFAULT_STAGES)
FAQ = Document(page_content="\n\n".join(REFUND_FAQ), metadata={"source": "faq.md"})


def assert_retrieved_after_completion(sim: DifySimulator) -> None:
    """From the log: retrieval came after the poll that saw the upload complete."""
    log = sim.requests
    [create] = [record for record in log if record.route == "create_by_text"]
    [retrieve] = [record for record in log if record.route == "retrieve"]
    polls = [record for record in log if record.route in ("indexing_status", "list_documents")]
    completed_at = create.at + INDEXING_TIME
    assert retrieve.at >= completed_at
    # Every poll happened before the retrieval, the last one after the document completed:
    # that is the poll that saw "completed" and opened the gate.
    assert polls and log.index(polls[-1]) < log.index(retrieve)
    assert polls[-1].at >= completed_at
    assert all(poll.at < completed_at for poll in polls[:-1])


def test_retrieval_waits_for_uploads_still_indexing(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    uploader = DifyDocumentUploader(client=sync_client, dataset_id=dataset_id)
    retriever = DifyRetriever(client=sync_client, dataset_id=dataset_id, k=3, **QUICK)
    uploader.invoke(FAQ)

    with ThreadPoolExecutor(1) as pool:
        searching = pool.submit(retriever.invoke, "refund policy")
        time.sleep(0.1)
        # Still indexing (the clock stands still): the retriever is polling, not searching.
        assert not searching.done() and not sim.requests_for(route="retrieve")
        assert sim.requests_for(route="indexing_status")
        clock.advance(INDEXING_TIME)
        documents = searching.result(timeout=5)

    assert len(documents) == 3 and "refund" in documents[0].page_content.lower()
    assert_retrieved_after_completion(sim)
    assert not sync_client.pending_batches(dataset_id)  # the gate forgets finished batches


async def test_async_retrieval_waits_for_uploads_still_indexing(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    uploader = DifyDocumentUploader(client=client, dataset_id=dataset_id)
    retriever = DifyRetriever(client=client, dataset_id=dataset_id, **QUICK)
    await uploader.ainvoke([FAQ])

    searching = asyncio.ensure_future(retriever.ainvoke("refund policy"))
    await asyncio.sleep(0.1)
    assert not searching.done() and not sim.requests_for(route="retrieve")
    clock.advance(INDEXING_TIME)
    documents = await asyncio.wait_for(searching, 5)

    assert documents
    assert_retrieved_after_completion(sim)


def test_without_the_gate_retrieval_reads_a_half_indexed_knowledge_base(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    DifyDocumentUploader(client=sync_client, dataset_id=dataset_id).invoke(FAQ)
    retriever = DifyRetriever(client=sync_client, dataset_id=dataset_id, wait_for_pending=False)

    assert retriever.invoke("refund policy") == []  # nothing indexed yet
    [create] = sim.requests_for(route="create_by_text")
    [retrieve] = sim.requests_for(route="retrieve")
    assert retrieve.at < create.at + INDEXING_TIME
    assert not sim.requests_for(route="indexing_status")


def test_the_gate_only_knows_uploads_of_its_own_client(
    sim: DifySimulator, dataset_id: str, threaded_url: str, sync_client: DifyKnowledgeClient
) -> None:
    DifyDocumentUploader(client=sync_client, dataset_id=dataset_id).invoke(FAQ)
    # Built from api_key / base_url: its own client, which uploaded nothing.
    stranger = DifyRetriever(api_key=sim.api_key, base_url=threaded_url, dataset_id=dataset_id)

    assert stranger.invoke("refund") == []
    assert not sim.requests_for(route="indexing_status")


@pytest.mark.usefixtures("ticker")
def test_a_failed_upload_does_not_block_retrieval(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    sim.script("broken.pdf", DocumentScript(fail_at="splitting", error="bad pdf"))
    uploader = DifyDocumentUploader(client=sync_client, dataset_id=dataset_id)
    uploader.invoke([FAQ, Document(page_content="x", metadata={"source": "broken.pdf"})])
    retriever = DifyRetriever(client=sync_client, dataset_id=dataset_id, **QUICK)

    documents = retriever.invoke("refund policy")

    assert documents and {doc.metadata["document_name"] for doc in documents} == {"faq.md"}


class CustomEvents(BaseCallbackHandler):
    """Collects every custom event a run dispatches."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append((name, data))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def test_a_gate_that_times_out_searches_what_dify_has_and_says_so(
    sim: DifySimulator,
    clock: ManualClock,
    dataset_id: str,
    sync_client: DifyKnowledgeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.add_document(dataset_id, "faq.md", FAQ.page_content)  # indexed: searchable
    clock.advance(INDEXING_TIME)
    sim.script("new.md", DocumentScript(stall_at="indexing"))
    [new] = DifyDocumentUploader(client=sync_client, dataset_id=dataset_id).invoke(
        Document(page_content="Refund of new items.", metadata={"source": "new.md"})
    )
    clock.advance(INDEXING_TIME)
    retriever = DifyRetriever(
        client=sync_client, dataset_id=dataset_id, pending_timeout=0.1, k=2, **QUICK
    )
    events = CustomEvents()

    with caplog.at_level(logging.WARNING, logger="dify_ingest_tools"):
        documents = retriever.invoke("refund policy", config={"callbacks": [events]})

    # The search ran on what Dify had indexed...
    assert [doc.metadata["document_name"] for doc in documents] == ["faq.md", "faq.md"]
    assert len(sim.requests_for(route="retrieve")) == 1
    # ... and said it may be incomplete: a flag on each result, a warning and an event.
    for doc in documents:
        assert doc.metadata["dify_partial_results"] is True
        assert doc.metadata["dify_pending_batches"] == new.batch
    assert "before this client's uploads were indexed" in caplog.text
    assert new.batch in caplog.text and "pending_timeout of 0.1 s" in caplog.text
    [(name, data)] = [event for event in events.events if "partial" in event[0]]
    assert name == "dify_indexing_partial_results" and data["batch"] == new.batch
    assert data["status"]["documents"][0]["indexing_status"] == "indexing"
    assert "searched before it was indexed" in data["message"]
    # While it waited, the gate reported progress like the waiter does.
    assert events.names()[0] == "dify_indexing_progress"
    assert set(events.names()) <= CUSTOM_EVENT_NAMES


async def test_an_async_gate_that_times_out_searches_too(
    sim: DifySimulator, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    sim.script("new.md", DocumentScript(stall_at="waiting"))
    [new] = await DifyDocumentUploader(client=client, dataset_id=dataset_id).ainvoke(
        [Document(page_content="Refund of new items.", metadata={"source": "new.md"})]
    )
    retriever = DifyRetriever(client=client, dataset_id=dataset_id, pending_timeout=0.1, **QUICK)
    names = [
        event["name"]
        async for event in retriever.astream_events("refund", version="v2")
        if event["event"] == "on_custom_event"
    ]
    assert names[-1] == "dify_indexing_partial_results" and "dify_indexing_progress" in names
    assert await retriever.ainvoke("refund") == []  # nothing indexed yet; no crash either
    assert [ref.batch for ref in client.pending_batches(dataset_id)] == [new.batch]


def test_a_gate_asked_to_raise_raises_the_timeout(
    dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    DifyDocumentUploader(client=sync_client, dataset_id=dataset_id).invoke(FAQ)
    retriever = DifyRetriever(
        client=sync_client,
        dataset_id=dataset_id,
        pending_timeout=0.1,
        on_pending_timeout="raise",
        **QUICK,
    )

    with pytest.raises(IndexingTimeoutError, match=r"Timed out after 0\.1s"):
        retriever.invoke("refund policy")


def test_the_gate_waits_30_seconds_by_default() -> None:
    retriever = DifyRetriever(
        client=DifyKnowledgeClient("dataset-x", "http://127.0.0.1:9/v1"),
        dataset_id="7789611a-7d24-4b75-ab16-a005f3cbd9b4",
    )
    assert retriever.pending_timeout == 30.0 and retriever.on_pending_timeout == "search"
    with pytest.raises(ValueError, match="on_pending_timeout"):
        DifyRetriever(
            client=retriever.client, dataset_id=retriever.dataset_id, on_pending_timeout="crash"
        )


def test_documents_carry_the_chunk_and_its_metadata(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    document_id, _ = sim.add_document(dataset_id, "faq.md", FAQ.page_content)
    clock.advance(INDEXING_TIME)
    retriever = DifyRetriever(client=sync_client, dataset_id=dataset_id, k=2)

    documents = retriever.invoke("refund policy")
    [single] = retriever.invoke("refund policy", k=1)
    strict = retriever.invoke("refund policy", score_threshold=0.9)

    assert len(documents) == 2 and single == documents[0]
    first = documents[0]
    assert first.page_content == REFUND_FAQ[0]  # the only chunk with both words scores 1.0
    assert first.id == first.metadata["segment_id"]
    assert first.metadata["score"] == 1.0
    assert first.metadata["document_id"] == document_id
    assert first.metadata["document_name"] == "faq.md"
    assert first.metadata["dataset_id"] == dataset_id
    assert first.metadata["position"] == 1
    assert "keywords" in first.metadata
    assert [doc.page_content for doc in strict] == [REFUND_FAQ[0]]


def test_a_retriever_on_an_async_client_refuses_blocking_calls(dataset_id: str) -> None:
    retriever = DifyRetriever(
        client=AsyncDifyKnowledgeClient("dataset-x", "http://127.0.0.1:9/v1"),
        dataset_id=dataset_id,
    )
    with pytest.raises(TypeError, match="ainvoke"):
        retriever.invoke("refund")
