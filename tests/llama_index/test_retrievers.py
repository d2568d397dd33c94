"""DifyRetriever: nodes with scores and metadata, and the gate on pending uploads."""

from __future__ import annotations

import asyncio
import logging

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.schema import MetadataMode, TextNode

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient, IndexingTimeoutError
from dify_ingest_tools.llama_index import (
    DifyDocumentUploader,
    DifyPartialResultsEvent,
    DifyRetriever,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from ..conftest import polls_until
from .conftest import QUICK
from .helpers import Recorder


async def test_the_gate_holds_retrieval_until_the_pending_batch_completed(
    sim: DifySimulator,
    clock: ManualClock,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    recorder: Recorder,
) -> None:
    sim.script("policy.md", DocumentScript(stall_at="indexing"))
    uploader = DifyDocumentUploader(dataset_id, client=client)
    [node] = await uploader.acall(
        [TextNode(text="Refunds within 30 days.", metadata={"file_name": "policy.md"})]
    )
    clock.advance(10)  # into `indexing`, where the script holds it
    retriever = DifyRetriever(dataset_id, client=client, similarity_top_k=2, **QUICK)
    search = asyncio.ensure_future(retriever.aretrieve("refunds"))

    await polls_until(sim, 3)
    assert not search.done() and sim.requests_for(route="retrieve") == []
    sim.release(node.metadata["dify_document_id"])  # indexing resumes, but takes clock time
    await polls_until(sim, 3)
    assert not search.done() and sim.requests_for(route="retrieve") == []
    status = await client.get_indexing_status(dataset_id, node.metadata["dify_batch"])
    assert not status.is_completed
    clock.advance(10)  # now the document completes
    completed_at = clock.now

    hits = await asyncio.wait_for(search, 5)
    [retrieve] = sim.requests_for(route="retrieve")
    assert retrieve.at >= completed_at  # the log: retrieval came only after completion
    log = sim.requests
    polls = [r for r in log[: log.index(retrieve)] if r.route == "indexing_status"]
    assert polls[-1].at >= completed_at  # ... after a poll that could see the completion
    assert hits[0].node.metadata["document_id"] == node.metadata["dify_document_id"]
    assert client.pending_batches(dataset_id) == []
    assert "batch_completed" in recorder.kinds()  # the gate's wait reports progress too


@pytest.mark.usefixtures("ticker")
def test_retrieve_returns_nodes_with_scores_and_metadata(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    uploader = DifyDocumentUploader(dataset_id, client=sync_client)
    uploader(
        [
            TextNode(text="Refunds are possible within 30 days.", metadata={"file_name": "r.md"}),
            TextNode(text="Shipping takes two days.", metadata={"file_name": "s.md"}),
        ]
    )
    retriever = DifyRetriever(dataset_id, client=sync_client, similarity_top_k=1, **QUICK)
    [hit] = retriever.retrieve("refunds within 30 days")
    node = hit.node
    assert isinstance(node, TextNode) and node.text == "Refunds are possible within 30 days."
    meta = node.metadata
    assert node.id_ == meta["segment_id"] and meta["dataset_id"] == dataset_id
    assert meta["document_name"] == "r.md" and meta["document_id"]
    assert hit.score == meta["score"] and hit.score is not None and hit.score > 0
    # The prompt keeps the document name (for citations), not the ids or the score.
    prompt = node.get_content(metadata_mode=MetadataMode.LLM)
    assert "r.md" in prompt and meta["segment_id"] not in prompt and "score" not in prompt
    assert sim.api_key not in repr(retriever)


async def test_without_the_gate_retrieval_does_not_wait(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    await client.create_document_by_text(dataset_id, "a.md", "alpha")
    retriever = DifyRetriever(dataset_id, client=client, wait_for_pending=False)
    assert await retriever.aretrieve("alpha") == []  # not indexed yet: nothing found
    assert sim.requests_for(route="indexing_status") == []


async def test_a_gate_that_times_out_searches_and_says_so(
    sim: DifySimulator,
    clock: ManualClock,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.add_document(dataset_id, "old.md", "Refunds within 30 days.")
    clock.advance(10)
    sim.script("slow.md", DocumentScript(stall_at="splitting"))
    slow = await client.create_document_by_text(dataset_id, "slow.md", "Refunds for gifts.")
    retriever = DifyRetriever(dataset_id, client=client, pending_timeout=0.05, **QUICK)

    with caplog.at_level(logging.WARNING, logger="dify_ingest_tools"):
        [hit] = await retriever.aretrieve("refunds")

    meta = hit.node.metadata
    assert meta["document_name"] == "old.md"
    assert meta["dify_partial_results"] is True and meta["dify_pending_batches"] == slow.batch
    # The LLM reads the flag; the batch ids are bookkeeping.
    prompt = hit.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "dify_partial_results: True" in prompt and slow.batch not in prompt
    assert "pending_timeout of 0.05 s" in caplog.text and slow.batch in caplog.text
    [partial] = [e for e in recorder.events if isinstance(e, DifyPartialResultsEvent)]
    assert partial.batch == slow.batch and partial.kind == "partial_results"
    assert partial.status is not None and partial.status.verdict == "working"
    assert recorder.kinds()[0] == "progress"


def test_a_gate_asked_to_raise_raises(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    slow = sync_client.create_document_by_text(dataset_id, "slow.md", "alpha")
    retriever = DifyRetriever(
        dataset_id, client=sync_client, pending_timeout=0.05, on_pending_timeout="raise", **QUICK
    )
    with pytest.raises(IndexingTimeoutError, match=slow.batch):
        retriever.retrieve("alpha")
    with pytest.raises(ValueError, match="on_pending_timeout"):
        DifyRetriever(dataset_id, client=sync_client, on_pending_timeout="crash")  # type: ignore[arg-type]
    assert DifyRetriever(dataset_id, client=sync_client).pending_timeout == 30.0


async def test_a_paused_upload_ends_the_gate_at_once_with_on_paused_fail(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.script("paused.md", DocumentScript(pause_at="indexing"))
    paused = await client.create_document_by_text(dataset_id, "paused.md", "alpha")
    clock.advance(10)
    retriever = DifyRetriever(
        dataset_id, client=client, pending_timeout=30, on_paused="fail", **QUICK
    )
    hits = await asyncio.wait_for(retriever.aretrieve("alpha"), 5)  # not after 30 s
    assert hits == []  # the paused document was never indexed
    assert [ref.batch for ref in client.pending_batches(dataset_id)] == [paused.batch]


async def test_failed_uploads_are_logged(
    sim: DifySimulator,
    clock: ManualClock,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await client.create_document_by_text(dataset_id, "slow.md", "alpha")
    sim.script("bad.pdf", DocumentScript(fail_at="parsing", error="broken"))
    await client.create_document_by_text(dataset_id, "bad.pdf", "beta")
    clock.advance(60)
    with caplog.at_level(logging.WARNING, logger="dify_ingest_tools"):
        hits = await DifyRetriever(dataset_id, client=client, **QUICK).aretrieve("alpha")
    assert [hit.node.metadata["document_name"] for hit in hits] == ["slow.md"]
    assert "failed to index" in caplog.text and "broken" in caplog.text
    assert "dify_partial_results" not in hits[0].node.metadata  # complete, as far as we know


def test_construction_checks(sync_client: DifyKnowledgeClient, dataset_id: str) -> None:
    with pytest.raises(ValueError, match="similarity_top_k"):
        DifyRetriever(dataset_id, client=sync_client, similarity_top_k=0)
    with pytest.raises(TypeError, match="DifyKnowledgeClient"):
        DifyRetriever(dataset_id, client="not a client")  # type: ignore[arg-type]
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="pending_timeout"):
            DifyRetriever(dataset_id, client=sync_client, pending_timeout=bad)
