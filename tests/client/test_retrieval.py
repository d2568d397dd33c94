"""Every retrieve path resolves the dataset's search the same way (`client.retrieval`).

A knowledge base made through Dify's API with ``indexing_technique="economy"`` stores
``semantic_search``; the simulator answers a search that uses it with Dify's 400, as the real
server does (recording 17). So each path below finds the document only if it sent
``keyword_search``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.testing import DifySimulator, ManualClock
from tests.conftest import FAST, QUICK

TEXT = "The ocelot hunts at night in the forest."
Search = Callable[[AsyncDifyKnowledgeClient, str], Awaitable[str]]


async def _client(client: AsyncDifyKnowledgeClient, dataset_id: str) -> str:
    (hit,) = await client.retrieve(dataset_id, "ocelot")
    return hit.content


async def _client_with_top_k(client: AsyncDifyKnowledgeClient, dataset_id: str) -> str:
    (hit,) = await client.retrieve(dataset_id, "ocelot", top_k=3)
    return hit.content


async def _client_with_a_partial_model(client: AsyncDifyKnowledgeClient, dataset_id: str) -> str:
    (hit,) = await client.retrieve(dataset_id, "ocelot", retrieval_model={"top_k": 3})
    return hit.content


async def _langchain_retriever(client: AsyncDifyKnowledgeClient, dataset_id: str) -> str:
    pytest.importorskip("langchain_core")
    from dify_ingest_tools.langchain import DifyRetriever

    (document,) = await DifyRetriever(client=client, dataset_id=dataset_id).ainvoke("ocelot")
    return document.page_content


async def _langchain_store(client: AsyncDifyKnowledgeClient, dataset_id: str) -> str:
    pytest.importorskip("langchain_core")
    from dify_ingest_tools.langchain import DifyVectorStore

    store = DifyVectorStore(dataset_id, client=client)
    (document,) = await store.asimilarity_search("ocelot", k=2)
    return document.page_content


async def _llama_index_retriever(client: AsyncDifyKnowledgeClient, dataset_id: str) -> str:
    pytest.importorskip("llama_index.core")
    from dify_ingest_tools.llama_index import DifyRetriever

    (hit,) = await DifyRetriever(dataset_id, client=client).aretrieve("ocelot")
    return hit.node.get_content()


async def _llama_index_managed(client: AsyncDifyKnowledgeClient, dataset_id: str) -> str:
    pytest.importorskip("llama_index.core")
    from dify_ingest_tools.llama_index import DifyIndex

    (hit,) = await DifyIndex(dataset_id, client=client).as_retriever().aretrieve("ocelot")
    return hit.node.get_content()


async def _toolkit_search(client: AsyncDifyKnowledgeClient, dataset_id: str) -> str:
    found = await DifyToolset(dataset_id=dataset_id, **QUICK).run(
        client, "search", {"query": "ocelot"}
    )
    assert found.outcome == "found", found.text
    return found.text


@pytest.mark.parametrize(
    "search",
    [
        _client,
        _client_with_top_k,
        _client_with_a_partial_model,
        _langchain_retriever,
        _langchain_store,
        _llama_index_retriever,
        _llama_index_managed,
        _toolkit_search,
    ],
    ids=lambda search: search.__name__.lstrip("_"),
)
async def test_every_retrieve_path_searches_an_economy_dataset_by_keyword(
    sim: DifySimulator, clock: ManualClock, base_url: str, search: Search
) -> None:
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, **FAST) as client:
        dataset = await client.create_dataset("economy-made-by-api")
        # What Dify stores for it, and what a search without settings would use.
        assert dataset["retrieval_model_dict"]["search_method"] == "semantic_search"
        await client.create_document_by_text(dataset["id"], "ocelot.txt", TEXT)
        clock.advance(60)
        sim.clear_requests()
        assert "ocelot hunts" in await search(client, dataset["id"])
    assert [r.status for r in sim.requests_for(route="retrieve")] == [200]


def test_the_blocking_client_searches_an_economy_dataset_by_keyword(
    sim: DifySimulator, clock: ManualClock, threaded_url: str
) -> None:
    # A dataset made outside this client (in the console, by another process).
    dataset_id = sim.create_dataset("made-elsewhere")
    sim.add_document(dataset_id, "ocelot.txt", TEXT)
    clock.advance(60)
    with DifyKnowledgeClient(sim.api_key, threaded_url, **FAST) as client:
        (hit,) = client.retrieve(dataset_id, "ocelot")
        assert "ocelot" in hit.content
        # Hostile: a retrieval_model that is not a mapping is refused before anything is sent.
        retrieves = len(sim.requests_for(route="retrieve"))
        with pytest.raises(TypeError, match="retrieval_model must be a mapping"):
            client.retrieve(dataset_id, "ocelot", retrieval_model="keyword_search")  # type: ignore[arg-type]
        assert len(sim.requests_for(route="retrieve")) == retrieves


def test_a_search_method_the_caller_names_wins_over_the_datasets(
    sim: DifySimulator, clock: ManualClock, threaded_url: str
) -> None:
    quality = sim.create_dataset("vectors", indexing_technique="high_quality")
    sim.add_document(quality, "a.txt", "Foo text.")
    sim.add_document(quality, "b.txt", "Bar text.")
    clock.advance(60)
    with DifyKnowledgeClient(sim.api_key, threaded_url, **FAST) as client:
        # The dataset's own (semantic) search ranks every chunk, like a vector index ...
        assert len(client.retrieve(quality, "bar")) == 2
        # ... a keyword search asked for in so many words returns only the match.
        (hit,) = client.retrieve(
            quality, "bar", retrieval_model={"search_method": "keyword_search"}
        )
        assert hit.content == "Bar text."
    assert [r.status for r in sim.requests_for(route="retrieve")] == [200, 200]
