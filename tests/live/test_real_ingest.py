"""Against a real Dify (issue 21, items 3, 5 and 6): one-call ingest, pipelines, names.

Runs only when DIFY_API_KEY and DIFY_API_BASE_URL are set. Each test creates its own
knowledge base (its name starts with ``dify-ingest-tools-live-``) and deletes it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAPIError,
    DifyDatasetNameError,
    DifyKnowledgeClient,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (os.environ.get("DIFY_API_KEY") and os.environ.get("DIFY_API_BASE_URL")),
        reason="set DIFY_API_KEY and DIFY_API_BASE_URL to run against a real Dify",
    ),
]

WAIT = {"timeout": 180, "stall_timeout": 120}


def _name() -> str:
    return f"dify-ingest-tools-live-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def client() -> AsyncIterator[AsyncDifyKnowledgeClient]:
    async with AsyncDifyKnowledgeClient() as value:
        yield value


@pytest.fixture
async def named(client: AsyncDifyKnowledgeClient) -> AsyncIterator[tuple[str, str]]:
    """A fresh economy knowledge base, created by name: ``(name, id)``; deleted afterwards."""
    name = _name()
    with pytest.raises(DifyDatasetNameError):
        await client.dataset_id_for(name)
    dataset_id = await client.dataset_id_for(name, create_if_missing=True)
    try:
        yield name, dataset_id
    finally:
        await client.delete_dataset(dataset_id)


async def test_a_name_is_found_after_it_is_created(
    client: AsyncDifyKnowledgeClient, named: tuple[str, str]
) -> None:
    name, dataset_id = named
    assert await client.dataset_id_for(name) == dataset_id
    assert await client.dataset_id_for(name, create_if_missing=True) == dataset_id
    assert (await client.get_dataset(dataset_id))["indexing_technique"] == "economy"
    # A prefix of the name is a different name.
    assert await client.find_dataset(name[:-1]) is None


async def test_one_call_ingest_text_file_and_many_files(
    client: AsyncDifyKnowledgeClient, named: tuple[str, str], tmp_path: Path
) -> None:
    _, dataset_id = named
    document, status = await client.create_document_by_text_and_wait(
        dataset_id, "live-text.txt", "A live paragraph about herons.", **WAIT
    )
    assert status.is_completed and status.documents[0].id == document.document_id
    document, status = await client.create_document_by_file_and_wait(
        dataset_id, b"A live file about ospreys.", filename="live-file.txt", **WAIT
    )
    assert status.is_completed and document.name == "live-file.txt"
    paths = []
    for number in range(3):
        path = tmp_path / f"live-{number}.md"
        path.write_text(f"Live note {number} about pelicans.")
        paths.append(path)
    results = await client.upload_files_and_wait(dataset_id, paths, concurrency=2, **WAIT)
    assert [r.document.name for r in results] == [p.name for p in paths]
    assert all(r.status.is_completed for r in results)


def test_the_blocking_twin_ingests_by_name(tmp_path: Path) -> None:
    with DifyKnowledgeClient() as client:
        dataset_id = client.dataset_id_for(_name(), create_if_missing=True)
        try:
            result = client.create_document_by_text_and_wait(
                dataset_id, "blocking.txt", "Blocking live text about cranes.", **WAIT
            )
            assert result.status.is_completed
        finally:
            client.delete_dataset(dataset_id)


async def test_run_pipeline_on_a_knowledge_base_without_a_pipeline_is_refused(
    client: AsyncDifyKnowledgeClient, named: tuple[str, str]
) -> None:
    # A knowledge base created through the API has no pipeline: Dify refuses the run (400).
    _, dataset_id = named
    with pytest.raises(DifyAPIError) as caught:
        await client.run_pipeline(
            dataset_id, "website_crawl", [{"url": "https://example.com"}], start_node_id="1"
        )
    assert caught.value.status in (400, 500), caught.value


async def test_run_pipeline_and_wait(client: AsyncDifyKnowledgeClient) -> None:
    dataset_id = os.environ.get("DIFY_PIPELINE_DATASET_ID")
    node = os.environ.get("DIFY_PIPELINE_START_NODE_ID")
    url = os.environ.get("DIFY_PIPELINE_URL", "https://example.com")
    if not (dataset_id and node):
        pytest.skip(
            "a knowledge pipeline needs a published pipeline built in Dify's console, with the "
            "datasource plugins and the embedding/LLM models a bare server lacks: set "
            "DIFY_PIPELINE_DATASET_ID and DIFY_PIPELINE_START_NODE_ID (a website-crawl node; "
            "DIFY_PIPELINE_URL) to run it"
        )
    run = await client.run_pipeline(
        dataset_id, "website_crawl", [{"url": url, "title": "live pipeline"}], start_node_id=node
    )
    status = await client.wait_for_indexing(dataset_id, run.batch, timeout=600, stall_timeout=300)
    assert status.is_terminal, status.summary()
    for document in run.documents:
        await client.delete_document(dataset_id, document.document_id)
