"""Against a real Dify: runs only when DIFY_API_KEY and DIFY_API_BASE_URL are set.

Optionally DIFY_DATASET_ID names the knowledge base to use; otherwise one is created (its name
starts with ``dify-ingest-tools-live-``) and deleted documents are cleaned up either way.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAuthenticationError,
    DifyKnowledgeClient,
    DifyNotFoundError,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (os.environ.get("DIFY_API_KEY") and os.environ.get("DIFY_API_BASE_URL")),
        reason="set DIFY_API_KEY and DIFY_API_BASE_URL to run against a real Dify",
    ),
]

TECHNIQUE = os.environ.get("DIFY_INDEXING_TECHNIQUE", "economy")


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
    name = f"dify-ingest-tools-live-{uuid.uuid4().hex[:8]}"
    technique = "high_quality" if TECHNIQUE == "high_quality" else "economy"
    created = await client.create_dataset(name, indexing_technique=technique)
    assert created["name"] == name and created["indexing_technique"] == technique
    try:
        yield str(created["id"])
    finally:
        await client.delete_dataset(created["id"])


async def test_create_wait_retrieve_delete(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    name = f"live-{uuid.uuid4().hex[:10]}.txt"
    marker = f"zebracorn{uuid.uuid4().hex[:6]}"
    created = await client.create_document_by_text(
        dataset_id,
        name,
        f"Live check paragraph about readiness. The secret word is {marker}.",
        indexing_technique=TECHNIQUE,
    )
    try:
        events: list[str] = []
        status = await client.wait_for_indexing(
            dataset_id,
            created.batch,
            timeout=180,
            stall_timeout=120,
            on_event=lambda e: events.append(e.kind),
        )
        assert status.is_completed, status.summary()
        assert status.documents[0].id == created.document_id
        assert events[-1] == "batch_completed"
        detail = await client.get_document(dataset_id, created.document_id)
        assert detail.name == name
        model = (
            {
                "search_method": "keyword_search",
                "reranking_enable": False,
                "top_k": 5,
                "score_threshold_enabled": False,
            }
            if TECHNIQUE == "economy"
            else None
        )
        hits = await client.retrieve(dataset_id, marker, retrieval_model=model)
        assert any(hit.document_id == created.document_id for hit in hits), hits
    finally:
        await client.delete_document(dataset_id, created.document_id)
    with pytest.raises(DifyNotFoundError):
        await client.get_document(dataset_id, created.document_id)


async def test_real_error_rows(client: AsyncDifyKnowledgeClient, dataset_id: str) -> None:
    with pytest.raises(DifyNotFoundError) as batch_missing:
        await client.get_indexing_status(dataset_id, "20991231235959000000")
    assert batch_missing.value.resource == "documents"
    with pytest.raises(DifyNotFoundError) as dataset_missing:
        await client.get_indexing_status("00000000-0000-4000-8000-000000000000", "1")
    assert dataset_missing.value.resource == "dataset"
    async with AsyncDifyKnowledgeClient("dataset-invalid-key-for-test") as bad:
        with pytest.raises(DifyAuthenticationError):
            await bad.get_indexing_status(dataset_id, "1")


def test_blocking_client_reads_a_real_dataset() -> None:
    dataset = os.environ.get("DIFY_DATASET_ID")
    if not dataset:
        pytest.skip("set DIFY_DATASET_ID to list a real dataset's documents")
    with DifyKnowledgeClient() as client:
        page = client.list_documents(dataset, limit=5)
    assert page.limit == 5


async def test_a_file_keeps_its_name_and_its_hits_are_named(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    # The name aiohttp's FormData used to turn into my%20notes%20r%C3%A9sum%C3%A9.txt (11).
    name = f"my notes résumé {uuid.uuid4().hex[:6]}.txt"
    marker = f"quokkafile{uuid.uuid4().hex[:6]}"
    created = await client.create_document_by_file(
        dataset_id,
        f"A file about {marker}.".encode(),
        filename=name,
        indexing_technique=TECHNIQUE,
    )
    try:
        assert created.name == name
        await client.wait_for_indexing(dataset_id, created.batch, timeout=180, stall_timeout=120)
        assert (await client.get_document(dataset_id, created.document_id)).name == name
        again = await client.create_document_by_text(
            dataset_id, name, f"Text about {marker}.", indexing_technique=TECHNIQUE
        )
        assert again.document_id == created.document_id  # one document per name
        await client.wait_for_indexing(dataset_id, again.batch, timeout=180, stall_timeout=120)
        model = {
            "search_method": "keyword_search" if TECHNIQUE == "economy" else "semantic_search",
            "reranking_enable": False,
            "top_k": 5,
            "score_threshold_enabled": False,
        }
        hits = await client.retrieve(dataset_id, marker, retrieval_model=model)
        ours = [hit for hit in hits if hit.document_id == created.document_id]
        assert ours and all(hit.document_name == name for hit in ours)
    finally:
        await client.delete_document(dataset_id, created.document_id)
