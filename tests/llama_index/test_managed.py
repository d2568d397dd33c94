"""`DifyIndex`: a managed index over real HTTP to the simulator; uploads counted from its log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document
from llama_index.core.llms import MockLLM
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyDocumentConflictError,
    DifyKnowledgeClient,
)
from dify_ingest_tools.llama_index import DifyIndex, DifyIndexRetriever
from dify_ingest_tools.testing import DifySimulator, DocumentScript

from .conftest import QUICK


@dataclass
class Served:
    sim: DifySimulator
    base_url: str
    dataset_id: str

    def writes(self) -> dict[str, int]:
        def count(route: str) -> int:
            return len([r for r in self.sim.requests_for(route=route) if r.status < 300])

        return {
            "creates": count("create_by_text"),
            "updates": count("update_by_text"),
            "deletes": count("delete_document"),
        }

    def options(self) -> dict[str, object]:
        return {"api_key": self.sim.api_key, "base_url": self.base_url, "timeout": 30, **QUICK}

    def names(self) -> list[str]:
        with DifyKnowledgeClient(self.sim.api_key, self.base_url) as client:
            return sorted(d.name for d in client.list_documents(self.dataset_id).data)


@pytest.fixture
def served() -> Iterator[Served]:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("managed")
    with sim.serve_in_thread() as base_url:
        yield Served(sim, base_url, dataset_id)


def _pages() -> list[Document]:
    manual = {"file_path": "/docs/manual.pdf", "file_name": "manual.pdf"}
    return [
        Document(text="Manual page one: the narwhal.", metadata={**manual, "page": 1}, doc_id="m1"),
        Document(text="Manual page two: the okapi.", metadata={**manual, "page": 2}, doc_id="m2"),
        Document(text="A loose note about the quokka.", metadata={"kind": "note"}, doc_id="note"),
    ]


def test_from_documents_then_query_engine_answers_from_indexed_sources(served: Served) -> None:
    index = DifyIndex.from_documents(_pages(), dataset_id=served.dataset_id, **served.options())
    # Pages of one file became one Dify document; the loose note is its own source.
    assert served.names() == ["/docs/manual.pdf", "note"]
    assert served.writes() == {"creates": 2, "updates": 0, "deletes": 0}
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2)
    response = engine.query("okapi")
    assert "the okapi" in str(response)  # the mock LLM echoes its prompt: the context is there
    [source] = response.source_nodes
    assert source.node.metadata["file_name"] == "manual.pdf"
    assert source.node.relationships[NodeRelationship.SOURCE].node_id == "m1"
    index.close()


async def test_async_from_documents_and_query_engine(served: Served) -> None:
    index = await DifyIndex.afrom_documents(
        _pages(), dataset_id=served.dataset_id, show_progress=False, **served.options()
    )
    response = await index.as_query_engine(llm=MockLLM()).aquery("quokka")
    assert "quokka" in str(response)
    assert [n.node.metadata for n in response.source_nodes] == [{"kind": "note"}]
    nodes = await index.as_retriever(similarity_top_k=1).aretrieve("narwhal")
    assert [n.node.metadata["page"] for n in nodes] == [1]  # the source's first page's metadata
    index.close()


def test_refresh_ref_docs_uploads_only_changed_sources(served: Served) -> None:
    index = DifyIndex(served.dataset_id, **served.options())
    assert index.refresh_ref_docs(_pages()) == [True, True, True]
    assert served.writes() == {"creates": 2, "updates": 0, "deletes": 0}
    served.sim.clear_requests()
    assert index.refresh_ref_docs(_pages()) == [False, False, False]
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 0}
    changed = _pages()
    changed[1] = Document(
        text="Manual page two: the pangolin.", metadata=changed[1].metadata, doc_id="m2"
    )
    assert index.refresh_ref_docs(changed) == [True, True, False]
    assert served.writes() == {"creates": 0, "updates": 1, "deletes": 0}
    [hit] = index.as_retriever(similarity_top_k=1).retrieve("pangolin")
    assert "pangolin" in hit.node.get_content()
    # A fresh index (another process) sees the same hashes in Dify: still nothing to upload.
    served.sim.clear_requests()
    other = DifyIndex(served.dataset_id, **served.options())
    assert other.refresh_ref_docs(changed) == [False, False, False]
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 0}
    index.close()
    other.close()


def test_insert_update_delete_and_ref_doc_info(served: Served) -> None:
    index = DifyIndex(served.dataset_id, **served.options())
    index.insert(Document(text="Tapir facts.", doc_id="tapir"))
    index.update_ref_doc(Document(text="Tapir facts, revised.", doc_id="tapir"))
    assert served.writes() == {"creates": 1, "updates": 1, "deletes": 0}
    assert set(index.ref_doc_info) == {"tapir"}
    index.insert_nodes([TextNode(text="Urial node.", metadata={"kind": "node"})])
    [hit] = index.as_retriever().retrieve("urial")
    assert hit.node.metadata == {"kind": "node"}
    index.delete_ref_doc("tapir")
    assert served.writes()["deletes"] == 1
    assert index.as_retriever().retrieve("tapir") == []
    index.delete_ref_doc("tapir")  # a warning, not an error
    with pytest.raises(ValueError, match="no Dify document holds"):
        index.delete_ref_doc("tapir", raise_if_not_found=True)
    index.close()


def test_filters_reach_dify(served: Served) -> None:
    index = DifyIndex.from_documents(_pages(), dataset_id=served.dataset_id, **served.options())
    notes = MetadataFilters(filters=[MetadataFilter(key="kind", value="note")])
    retriever = index.as_retriever(filters=notes)
    assert isinstance(retriever, DifyIndexRetriever)
    assert [n.node.metadata.get("kind") for n in retriever.retrieve("the")] == ["note"]
    either = MetadataFilters(
        filters=[
            MetadataFilter(key="kind", value="note"),
            MetadataFilter(key="page", value=1, operator=FilterOperator.GTE),
        ],
        condition=FilterCondition.OR,
    )
    hits = index.as_retriever(filters=either, similarity_top_k=5).retrieve("the")
    assert {n.node.metadata.get("kind", "page") for n in hits} == {"note", "page"}
    with pytest.raises(ValueError, match="cannot express"):
        index.as_retriever(
            filters=MetadataFilters(
                filters=[MetadataFilter(key="k", value=["a"], operator=FilterOperator.ALL)]
            )
        )
    with pytest.raises(ValueError, match="similarity_top_k"):
        DifyIndexRetriever(index, similarity_top_k=0)
    index.close()


async def test_wait_false_writes_are_awaited_by_the_retriever(served: Served) -> None:
    async with AsyncDifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        index = DifyIndex(served.dataset_id, client=client, wait=False, **QUICK)
        await index.ainsert(Document(text="Vicuna wool.", doc_id="vicuna"))
        assert served.sim.requests_for(route="indexing_status") == []
        nodes = await index.as_retriever().aretrieve("vicuna")
        assert [n.node.get_content() for n in nodes] == ["Vicuna wool."]
        await index.aupdate_ref_doc(Document(text="Vicuna wool, soft.", doc_id="vicuna"))
        assert await index.arefresh_ref_docs(
            [Document(text="Vicuna wool, soft.", doc_id="vicuna")]
        ) == [False]
        await index.adelete_ref_doc("vicuna")
        assert await index.as_retriever().aretrieve("vicuna") == []


def test_failed_indexing_is_raised(served: Served) -> None:
    served.sim.script("broken", DocumentScript(fail_at="parsing", error="parser broke"))
    index = DifyIndex(served.dataset_id, **served.options())
    with pytest.raises(Exception, match="parser broke"):
        index.insert(Document(text="x", doc_id="broken"))
    with pytest.raises(ValueError, match="timeout"):
        DifyIndex(served.dataset_id, timeout=0)
    index.close()


def test_long_sources_get_a_stable_short_name(served: Served) -> None:
    index = DifyIndex(served.dataset_id, source_key="path", **served.options())
    long_path = "/very/" + "deep/" * 60 + "file.txt"
    index.insert(Document(text="Wombat.", metadata={"path": long_path}))
    index.refresh_ref_docs([Document(text="Wombat.", metadata={"path": long_path})])
    [name] = served.names()
    assert len(name) == 200 and name.startswith("/very/deep/")
    assert repr(index).startswith("DifyIndex(")
    index.close()


# -- ownership: the index touches only the documents a store wrote --------------------------------


def _foreign(served: Served, name: str, text: str) -> str:
    """A document a person put into the knowledge base (no store mark); its id."""
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        created = client.create_document_by_text(served.dataset_id, name, text)
        client.wait_for_documents(served.dataset_id, [created], **QUICK)
        client.set_document_metadata(served.dataset_id, created.document_id, {"team": "people"})
    served.sim.clear_requests()
    return created.document_id


def _untouched(served: Served, document_id: str, text: str) -> None:
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        segments = client.all_segments(served.dataset_id, document_id)
        entries = client.get_document_metadata(served.dataset_id, document_id)
    assert "\n".join(segment.content for segment in segments) == text
    assert {e.name: e.typed_value for e in entries if not e.is_built_in} == {"team": "people"}
    writes = [r for r in served.sim.requests if document_id in r.path and r.method != "GET"]
    assert writes == []


def test_writes_refuse_a_source_named_like_a_foreign_document_and_write_nothing(
    served: Served,
) -> None:
    handbook = _foreign(served, "/docs/handbook.pdf", "Holidays: 25 days a year.")
    index = DifyIndex(served.dataset_id, **served.options())
    ours = Document(text="Our note.", doc_id="note")
    clash = Document(text="Our handbook.", metadata={"file_path": "/docs/handbook.pdf"})
    with pytest.raises(DifyDocumentConflictError) as caught:
        index.insert_documents([ours, clash])
    assert (caught.value.document_id, caught.value.name) == (handbook, "/docs/handbook.pdf")
    with pytest.raises(DifyDocumentConflictError, match="overwrite_foreign"):
        index.insert(clash)
    with pytest.raises(DifyDocumentConflictError):
        index.refresh_ref_docs([ours, clash])
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 0}  # not even "note"
    _untouched(served, handbook, "Holidays: 25 days a year.")
    index.close()


def test_delete_ref_doc_never_deletes_a_foreign_document(served: Served) -> None:
    handbook = _foreign(served, "handbook", "Holidays: 25 days a year.")
    index = DifyIndex(served.dataset_id, **served.options())
    index.insert(Document(text="Ours.", doc_id="ours"))
    index.delete_ref_doc("handbook")  # a warning: no document of this index holds it
    with pytest.raises(ValueError, match="no Dify document holds ref_doc_id 'handbook'"):
        index.delete_ref_doc("handbook", raise_if_not_found=True)
    assert served.writes()["deletes"] == 0
    assert set(index.ref_doc_info) == {"ours"}  # the foreign document is not the index's
    _untouched(served, handbook, "Holidays: 25 days a year.")
    index.close()


async def test_overwrite_foreign_opts_in_and_the_index_owns_it_afterwards(served: Served) -> None:
    handbook = _foreign(served, "handbook", "Holidays: 25 days a year.")
    async with AsyncDifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        bold = DifyIndex(served.dataset_id, client=client, overwrite_foreign=True, **QUICK)
        await bold.ainsert(Document(text="Holidays: 30 days.", doc_id="handbook"))
        assert served.writes() == {"creates": 0, "updates": 1, "deletes": 0}
        index = DifyIndex(served.dataset_id, client=client, **QUICK)
        assert await index.arefresh_ref_docs(
            [Document(text="Holidays: 31 days.", doc_id="handbook")]
        ) == [True]
        await index.adelete_ref_doc("handbook", raise_if_not_found=True)
        assert served.writes() == {"creates": 0, "updates": 2, "deletes": 1}
        assert not (await client.list_documents(served.dataset_id)).data
    updated = {r.path.split("/")[-2] for r in served.sim.requests_for(route="update_by_text")}
    assert updated == {handbook}  # the person's document itself, replaced on purpose
