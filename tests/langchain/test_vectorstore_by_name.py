"""`DifyVectorStore.from_documents(..., dataset_name=...)`: the knowledge base by name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document

from dify_ingest_tools import DifyDatasetNameError, DifyKnowledgeClient
from dify_ingest_tools.langchain import DifyVectorStore
from dify_ingest_tools.testing import DifySimulator

from .conftest import QUICK


@pytest.fixture
def served() -> Iterator[tuple[DifySimulator, str]]:
    sim = DifySimulator(time_scale=0.02)
    with sim.serve_in_thread() as base_url:
        yield sim, base_url


def test_from_documents_by_dataset_name_found_created_missing_and_ambiguous(
    served: tuple[DifySimulator, str],
) -> None:
    sim, base_url = served
    common = {"api_key": sim.api_key, "base_url": base_url, **QUICK}
    docs = [Document(page_content="Pelicans glide.", id="p")]
    with pytest.raises(DifyDatasetNameError, match="create_if_missing"):
        DifyVectorStore.from_documents(docs, dataset_name="birds", **common)
    store = DifyVectorStore.from_documents(
        docs, dataset_name="birds", create_if_missing=True, **common
    )
    assert [d.id for d in store.similarity_search("pelicans", k=1)] == ["p"]
    assert sim.dataset_ids == [store.dataset_id]
    again = DifyVectorStore.from_texts(["Ospreys dive."], ids=["o"], dataset_name="birds", **common)
    assert again.dataset_id == store.dataset_id and len(sim.dataset_ids) == 1
    owned = again.client
    again.close()
    store.close()
    assert isinstance(owned, DifyKnowledgeClient) and owned.closed
    twin = sim.create_dataset("birds")
    with pytest.raises(DifyDatasetNameError) as caught:
        DifyVectorStore.from_documents(docs, dataset_name="birds", **common)
    assert twin in str(caught.value) and store.dataset_id in str(caught.value)


async def test_async_constructors_take_a_dataset_name(served: tuple[DifySimulator, str]) -> None:
    sim, base_url = served
    wanted = sim.create_dataset("async birds")
    with DifyKnowledgeClient(sim.api_key, base_url) as client:
        store = await DifyVectorStore.afrom_documents(
            [Document(page_content="Robins sing.")],
            dataset_name="async birds",
            client=client,
            **QUICK,
        )
        other = await DifyVectorStore.afrom_texts(
            ["Wrens hop."], dataset_name="async birds", client=client, **QUICK
        )
        assert store.dataset_id == other.dataset_id == wanted
        hits = await store.asimilarity_search("robins", k=1)
        assert hits[0].page_content == "Robins sing."
        store.close()
        assert not client.closed
