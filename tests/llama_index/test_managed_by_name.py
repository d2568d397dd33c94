"""`DifyIndex.from_documents(docs, name=...)`: the knowledge base by name, as LlamaCloudIndex."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document

from dify_ingest_tools import DifyDatasetNameError, DifyKnowledgeClient
from dify_ingest_tools.llama_index import DifyIndex
from dify_ingest_tools.testing import DifySimulator

from .conftest import QUICK


@pytest.fixture
def served() -> Iterator[tuple[DifySimulator, str]]:
    sim = DifySimulator(time_scale=0.02)
    with sim.serve_in_thread() as base_url:
        yield sim, base_url


def _docs() -> list[Document]:
    return [Document(text="The handbook covers the narwhal.", doc_id="n1")]


def test_from_documents_by_name_finds_the_knowledge_base(served: tuple[DifySimulator, str]) -> None:
    sim, base_url = served
    wanted = sim.create_dataset("handbook")
    sim.create_dataset("handbook (old)")
    index = DifyIndex.from_documents(
        _docs(), name="handbook", api_key=sim.api_key, base_url=base_url, **QUICK
    )
    assert index.dataset_id == wanted
    hits = index.as_retriever().retrieve("narwhal")
    assert [h.node.get_content() for h in hits] == ["The handbook covers the narwhal."]
    client = index.client
    index.close()  # the index built the client for the lookup, and owns it
    assert isinstance(client, DifyKnowledgeClient) and client.closed


def test_from_documents_creates_the_knowledge_base_when_asked(
    served: tuple[DifySimulator, str],
) -> None:
    sim, base_url = served
    with DifyKnowledgeClient(sim.api_key, base_url) as client:
        with pytest.raises(DifyDatasetNameError, match="no knowledge base is named 'fresh'"):
            DifyIndex.from_documents(_docs(), name="fresh", client=client, **QUICK)
        assert sim.dataset_ids == [] and sim.requests_for(route="create_by_text") == []
        index = DifyIndex.from_documents(
            _docs(), name="fresh", create_if_missing=True, client=client, **QUICK
        )
        assert sim.dataset_ids == [index.dataset_id]
        assert client.get_dataset(index.dataset_id)["indexing_technique"] == "economy"
        index.close()
        assert not client.closed  # a client passed in stays the caller's


def test_an_ambiguous_name_fails_naming_both_ids(served: tuple[DifySimulator, str]) -> None:
    sim, base_url = served
    first, second = sim.create_dataset("twins"), sim.create_dataset("twins")
    with pytest.raises(DifyDatasetNameError) as caught:
        DifyIndex.from_documents(_docs(), name="twins", api_key=sim.api_key, base_url=base_url)
    assert first in str(caught.value) and second in str(caught.value)
    with pytest.raises(ValueError, match="not both"):
        DifyIndex.from_documents(_docs(), name="twins", dataset_id=first)
    with pytest.raises(TypeError, match="dataset_id= or name="):
        DifyIndex.from_documents(_docs(), api_key=sim.api_key, base_url=base_url)
    with pytest.raises(ValueError, match="needs the knowledge base's name"):
        DifyIndex.from_documents(_docs(), dataset_id=first, create_if_missing=True)


async def test_async_from_documents_by_name(served: tuple[DifySimulator, str]) -> None:
    sim, base_url = served
    index = await DifyIndex.afrom_documents(
        _docs(),
        name="async kb",
        create_if_missing=True,
        indexing_technique="high_quality",
        api_key=sim.api_key,
        base_url=base_url,
        **QUICK,
    )
    assert sim.dataset_ids == [index.dataset_id]
    hits = await index.as_retriever().aretrieve("narwhal")
    assert len(hits) == 1
    index.close()
