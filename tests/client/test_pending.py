"""One pending registry per client: the gate, the tool sets and the stores read it through
their own views, and it forgets by one rule for all of them.

Real HTTP to the simulator; documents move only when the test advances its clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.testing import DifySimulator, ManualClock
from tests.conftest import QUICK, polls_until


async def _search(tools: DifyToolset, client: AsyncDifyKnowledgeClient) -> list[str]:
    """The batches a search names as possibly still indexing (the tool set's own uploads)."""
    result = await tools.run(client, "search", {"query": "alpha"})
    still: list[str] = result.data["still_indexing"]
    return still


async def test_tool_sets_stores_and_the_gate_share_one_registry_through_their_views(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    pytest.importorskip("langchain_core")
    from dify_ingest_tools.langchain import DifyVectorStore

    tools = DifyToolset(dataset_id=dataset_id, search_wait_seconds=0, **QUICK)
    session = tools.fresh()  # what the MCP server gives each session
    store = DifyVectorStore(dataset_id, client=client, wait=False, **QUICK)
    other_store = DifyVectorStore(dataset_id, client=client, wait=False, **QUICK)

    upload = await tools.run(client, "upload_text", {"name": "a.txt", "text": "Alpha."})
    tool_batch = upload.artifact.batch
    [written] = await store.aadd_texts(["Beta."], ids=["b"])
    own = await client.create_document_by_text(dataset_id, "c.txt", "Gamma.")
    assert written == "b"

    # One registry: the tool set's and the store's uploads are the client's own too, so the
    # retrievers' gate (the client's view) waits for all three.
    gate = [ref.batch for ref in client.pending_batches(dataset_id)]
    assert len(gate) == 3 and gate[0] == tool_batch and gate[2] == own.batch
    store_view = store._core._pending(client)
    [store_upload] = store_view.uploads(dataset_id)
    assert gate[1] == store_upload.batch
    assert tools._pending(client)._registry is client._pending._registry is store_view._registry

    # Scoped: each view lists only what it recorded; another session or store sees nothing.
    assert await _search(tools, client) == [tool_batch]
    assert await _search(session, client) == []
    assert not session._pending(client) and not other_store._core._pending(client)
    assert store_view.refs(dataset_id) == [store_upload.ref]
    assert tools._pending(client).refs(dataset_id) == [upload.artifact.ref]

    # One forgetting rule: a status any of them sees terminal forgets it for all of them.
    clock.advance(10)
    await client.wait_for_indexing(dataset_id, tool_batch, **QUICK)  # the client's own wait
    assert await _search(tools, client) == []
    assert tool_batch not in [ref.batch for ref in client.pending_batches(dataset_id)]
    # The store's gate waits for its write, and the client's view forgets it with it.
    sim.clear_requests()
    [hit] = await store.asimilarity_search("beta", k=1)
    assert hit.id == "b" and sim.requests_for(route="indexing_status")
    assert not store_view
    assert [ref.batch for ref in client.pending_batches(dataset_id)] == [own.batch]
    # Uploaded again under its name, a document leaves its old batch in every view.
    again = await client.create_document_by_text(dataset_id, "c.txt", "Gamma again.")
    assert [ref.batch for ref in client.pending_batches(dataset_id)] == [again.batch]


async def test_a_session_forgets_an_upload_that_another_session_saw_finish(
    clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    first = DifyToolset(dataset_id=dataset_id, search_wait_seconds=0, **QUICK)
    second = first.fresh()
    upload = await first.run(client, "upload_text", {"name": "a.txt", "text": "Alpha."})
    batch = upload.artifact.batch
    assert await _search(first, client) == [batch] and await _search(second, client) == []
    clock.advance(10)
    # The other session asks about the batch (the model may pass any batch id): done, for both.
    answer = await second.run(client, "indexing_status", {"batch": batch})
    assert answer.outcome == "ready"
    assert await _search(first, client) == []
    assert client.pending_batches(dataset_id) == []


async def test_a_batch_dify_no_longer_knows_leaves_every_view(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    tools = DifyToolset(dataset_id=dataset_id, search_wait_seconds=5, not_found_grace=0, **QUICK)
    upload = await tools.run(client, "upload_text", {"name": "a.txt", "text": "Alpha."})
    sim.delete_document(dataset_id, upload.artifact.document_id)  # deleted in the console
    assert await _search(tools, client) == []  # the search found its batch gone
    assert client.pending_batches(dataset_id) == []


async def test_the_ledger_hook_settles_what_its_view_holds_before_the_registry_forgets_it(
    sim: DifySimulator, clock: ManualClock, base_url: str, dataset_id: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, ledger=ledger) as crashed:
        created = await crashed.create_document_by_text(dataset_id, "a.txt", "Alpha.")
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, ledger=ledger) as restarted:
        waiting = asyncio.ensure_future(restarted.wait_for_pending(dataset_id, **QUICK))
        await polls_until(sim, 1)
        hook = restarted._ledger
        assert hook is not None and hook._tracked._registry is restarted._pending._registry
        assert hook._tracked.holds(dataset_id, created.batch)  # the ledger hook's view
        assert restarted.pending_batches(dataset_id) == []  # not this client's own upload
        clock.advance(10)
        [status] = await waiting
        assert status.is_completed and not hook._tracked
        # Settled in the ledger as the registry forgot it: nothing is left to wait for.
        sim.clear_requests()
        assert await restarted.wait_for_pending(dataset_id, **QUICK) == []
        assert sim.requests_for(route="indexing_status") == []
