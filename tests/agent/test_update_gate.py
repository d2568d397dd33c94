"""The pending-upload gate knows updates: a retrieve right after one waits for the updated
document, and only for it (its original batch can hold other documents still indexing).

Real HTTP to the simulator; the simulator's clock moves only when a test says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, UpdatedDocument
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock
from tests.conftest import QUICK, polls_until

OLD = "Alpha beta gamma."
NEW = "Omega psi chi."


@dataclass(frozen=True)
class Console:
    """A console upload of two documents in one batch; the second stays in ``indexing``."""

    first: str
    second: str
    batch: str


def console_upload(sim: DifySimulator, clock: ManualClock, dataset_id: str) -> Console:
    first, batch = sim.add_document(dataset_id, "first.txt", OLD)
    second, _ = sim.add_document(
        dataset_id, "second.txt", "Delta.", batch=batch, script=DocumentScript(stall_at="indexing")
    )
    clock.advance(10)  # the first is completed; the second never will be
    return Console(first, second, batch)


async def test_wait_for_pending_waits_for_an_updated_document_only(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    upload = console_upload(sim, clock, dataset_id)
    updated = await client.update_document_by_text(dataset_id, upload.first, text=NEW)
    assert isinstance(updated, UpdatedDocument) and updated.batch == upload.batch
    # Not a batch of this client's: waiting on it would wait for the second document too.
    assert client.pending_batches(dataset_id) == []

    waiting = asyncio.ensure_future(client.wait_for_pending(dataset_id, timeout=10, **QUICK))
    await polls_until(sim, 3)
    assert not waiting.done()  # the update is being indexed
    clock.advance(10)
    [status] = await asyncio.wait_for(waiting, 5)

    assert [doc.id for doc in status.documents] == [upload.first]
    assert status.is_completed and status.batch == upload.batch
    whole = await client.get_indexing_status(dataset_id, upload.batch)
    assert whole.document(upload.second).indexing_status == "indexing"
    # Seen done, the update is forgotten: the next wait sends nothing.
    sim.clear_requests()
    assert await client.wait_for_pending(dataset_id, timeout=1) == []
    assert sim.requests == []


async def test_a_deleted_updated_document_leaves_the_gate(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    upload = console_upload(sim, clock, dataset_id)
    await client.update_document_by_text(dataset_id, upload.first, text=NEW)
    await client.delete_document(dataset_id, upload.first)
    sim.clear_requests()
    assert await client.wait_for_pending(dataset_id, timeout=1) == []
    assert sim.requests == []


def _langchain(client: AsyncDifyKnowledgeClient, dataset_id: str) -> Any:
    pytest.importorskip("langchain_core")
    from dify_ingest_tools.langchain import DifyRetriever

    retriever = DifyRetriever(client=client, dataset_id=dataset_id, k=3, **QUICK)

    async def search(query: str) -> list[tuple[str, dict[str, Any]]]:
        found = await retriever.ainvoke(query)
        return [(doc.page_content, doc.metadata) for doc in found]

    return search


def _llama_index(client: AsyncDifyKnowledgeClient, dataset_id: str) -> Any:
    pytest.importorskip("llama_index.core")
    from dify_ingest_tools.llama_index import DifyRetriever

    retriever = DifyRetriever(dataset_id, client=client, similarity_top_k=3, **QUICK)

    async def search(query: str) -> list[tuple[str, dict[str, Any]]]:
        found = await retriever.aretrieve(query)
        return [(hit.node.get_content(), hit.node.metadata) for hit in found]

    return search


@pytest.mark.parametrize("make_search", [_langchain, _llama_index], ids=["langchain", "llama"])
async def test_a_gated_retrieve_right_after_an_update_waits_for_that_document_only(
    sim: DifySimulator,
    clock: ManualClock,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    make_search: Callable[[AsyncDifyKnowledgeClient, str], Any],
) -> None:
    upload = console_upload(sim, clock, dataset_id)
    search = make_search(client, dataset_id)
    await client.update_document_by_text(dataset_id, upload.first, text=NEW)

    searching = asyncio.ensure_future(search("omega"))
    await polls_until(sim, 3)
    # Re-indexing: a search now would find nothing of the new text (or stale old text).
    assert not searching.done() and sim.requests_for(route="retrieve") == []
    clock.advance(10)
    completed_at = clock.now
    hits = await asyncio.wait_for(searching, 5)

    assert [content for content, _ in hits] == [NEW]
    [(_, metadata)] = hits
    assert "dify_partial_results" not in metadata  # complete: the second document is not ours
    [retrieve] = sim.requests_for(route="retrieve")
    assert retrieve.at >= completed_at
    polls = sim.requests_for(route="indexing_status")
    assert {poll.path for poll in polls} == {
        f"/v1/datasets/{dataset_id}/documents/{upload.batch}/indexing-status"
    }
    whole = await client.get_indexing_status(dataset_id, upload.batch)
    assert whole.document(upload.second).indexing_status == "indexing"
