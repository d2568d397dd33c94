"""Ready means searchable, against a real Dify: runs only when DIFY_API_KEY and
DIFY_API_BASE_URL are set (a knowledge base is created and deleted, or DIFY_DATASET_ID used).

Dify 1.14.1 accepts an empty or whitespace-only text and reports it ``completed`` with 0/0
segments (recordings 02c, 02d, 17): a wait must call that ``empty``, not ready.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    IndexingEmptyError,
    Outcome,
    cli,
)
from dify_ingest_tools.readiness.policy import outcome_of

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (os.environ.get("DIFY_API_KEY") and os.environ.get("DIFY_API_BASE_URL")),
        reason="set DIFY_API_KEY and DIFY_API_BASE_URL to run against a real Dify",
    ),
]

NOTHING = "produced no chunks — nothing will be found"


@pytest.fixture
async def client() -> AsyncIterator[AsyncDifyKnowledgeClient]:
    async with AsyncDifyKnowledgeClient() as value:
        yield value


@pytest.fixture
async def dataset_id(client: AsyncDifyKnowledgeClient) -> AsyncIterator[str]:
    existing = os.environ.get("DIFY_DATASET_ID")
    if existing:
        yield existing
        return
    created = await client.create_dataset(
        f"dify-ingest-tools-live-{uuid.uuid4().hex[:8]}", indexing_technique="economy"
    )
    try:
        yield str(created["id"])
    finally:
        await client.delete_dataset(created["id"])


@pytest.mark.parametrize("text", ["", "   \n\n  "], ids=["empty", "whitespace"])
async def test_a_blank_text_is_empty_not_ready(
    client: AsyncDifyKnowledgeClient, dataset_id: str, text: str
) -> None:
    created = await client.create_document_by_text(
        dataset_id, f"live-blank-{uuid.uuid4().hex[:8]}.txt", text, indexing_technique="economy"
    )
    try:
        with pytest.raises(IndexingEmptyError) as caught:
            await client.wait_for_indexing(dataset_id, created.batch, timeout=180)
        last = caught.value.last_status
        assert last is not None and last.is_completed and last.is_empty
        assert [doc.id for doc in last.empty_documents] == [created.document_id]
        assert NOTHING in str(caught.value)
        assert outcome_of(error=caught.value) is Outcome.empty
        status = await client.wait_for_indexing(
            dataset_id, created.batch, timeout=60, on_empty="accept"
        )
        assert status.is_empty and status.total_segments == 0
    finally:
        await client.delete_document(dataset_id, created.document_id)


async def test_the_cli_exits_4_for_a_blank_text(
    client: AsyncDifyKnowledgeClient, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    created = await client.create_document_by_text(
        dataset_id, f"live-blank-{uuid.uuid4().hex[:8]}.txt", "  ", indexing_technique="economy"
    )
    try:
        await client.wait_for_indexing(dataset_id, created.batch, timeout=180, on_empty="accept")
        # The CLI runs its own event loop: from a worker thread, not this test's loop.
        code = await asyncio.to_thread(cli.main, ["wait", dataset_id, created.batch, "--json"])
        assert code == cli.EXIT_NOT_READY
        payload = json.loads(capsys.readouterr().out)
        assert payload["reason"] == "empty" and NOTHING in payload["message"]
    finally:
        await client.delete_document(dataset_id, created.document_id)


async def test_summaries_wait_for_a_dataset_that_makes_them(
    client: AsyncDifyKnowledgeClient,
) -> None:
    dataset_id = os.environ.get("DIFY_SUMMARY_DATASET_ID")
    if not dataset_id:
        pytest.skip(
            "summary indexing needs a high_quality knowledge base with an embedding model and "
            "an LLM for summaries, which a bare Dify server lacks: set DIFY_SUMMARY_DATASET_ID "
            "to such a knowledge base to run this"
        )
    created = await client.create_document_by_text(
        dataset_id,
        f"live-summary-{uuid.uuid4().hex[:8]}.txt",
        "Summary indexing check.\n\nA second paragraph so there is something to summarize.",
    )
    try:
        status = await client.wait_for_indexing(
            dataset_id, created.batch, timeout=600, stall_timeout=300, summaries=True
        )
        assert status.is_completed and not status.is_empty
        listed = {d.id: d for d in (await client.list_documents(dataset_id)).data}
        document = listed[created.document_id]
        assert document.need_summary is True and document.summary_index_status is None
    finally:
        await client.delete_document(dataset_id, created.document_id)
