"""`DifyVectorStore` and LangChain's indexing API, over real HTTP to the simulator.

Uploads, updates and deletes are counted from the simulator's request log.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, aindex, index

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyDocumentConflictError,
    DifyDocumentNotAvailableError,
    DifyError,
    DifyKnowledgeClient,
    IndexingFailedError,
)
from dify_ingest_tools.langchain import DifyVectorStore
from dify_ingest_tools.testing import DifySimulator, DocumentScript

from .conftest import QUICK


@dataclass
class Served:
    sim: DifySimulator
    base_url: str
    dataset_id: str

    def count(self, route: str) -> int:
        return len([r for r in self.sim.requests_for(route=route) if 200 <= r.status < 300])

    def writes(self) -> dict[str, int]:
        return {
            "creates": self.count("create_by_text"),
            "updates": self.count("update_by_text"),
            "deletes": self.count("delete_document"),
        }

    def store(self, **options: object) -> DifyVectorStore:
        return DifyVectorStore(
            self.dataset_id,
            api_key=self.sim.api_key,
            base_url=self.base_url,
            timeout=30,
            **{**QUICK, **options},  # type: ignore[arg-type]
        )


@pytest.fixture
def served() -> Iterator[Served]:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("store")
    with sim.serve_in_thread() as base_url:
        yield Served(sim, base_url, dataset_id)


def _sources(**texts: str) -> list[Document]:
    return [
        Document(page_content=text, metadata={"source": f"{name}.md"})
        for name, text in texts.items()
    ]


# -- the indexing API ----------------------------------------------------------------------------


def test_index_incremental_uploads_once_updates_changes_in_place(served: Served) -> None:
    store = served.store(doc_key="source")
    records = InMemoryRecordManager("dify/test")
    records.create_schema()
    docs = _sources(a="Aardvark notes.", b="Badger notes.", c="Cougar notes.")

    def run(documents: list[Document], cleanup: str | None = "incremental") -> dict[str, int]:
        return dict(
            index(
                documents,
                records,
                store,
                cleanup=cleanup,  # type: ignore[arg-type]
                source_id_key="source",
                key_encoder="sha256",
            )
        )

    first = run(docs)
    assert first == {"num_added": 3, "num_updated": 0, "num_skipped": 0, "num_deleted": 0}
    assert served.writes() == {"creates": 3, "updates": 0, "deletes": 0}
    # Written means searchable: index() returned after Dify reported them indexed.
    assert [d.metadata["source"] for d in store.similarity_search("badger", k=1)] == ["b.md"]

    served.sim.clear_requests()
    again = run(docs)
    assert again["num_skipped"] == 3 and again["num_added"] == 0
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 0}

    before = {d.metadata["source"]: d for d in store.similarity_search("notes", k=5)}
    served.sim.clear_requests()
    changed = _sources(a="Aardvark notes.", b="Bison replaced the badger.", c="Cougar notes.")
    result = run(changed)
    assert (result["num_added"], result["num_deleted"]) == (1, 1)
    # One update of the same Dify document; the old id's delete found nothing left to delete.
    assert served.writes() == {"creates": 0, "updates": 1, "deletes": 0}
    [hit] = store.similarity_search("bison", k=1)
    assert hit.metadata == {"source": "b.md"} and hit.id != before["b.md"].id
    assert served.sim.requests_for(route="update_by_text")[0].path.split("/")[-2] == (
        _dify_id(served, "b.md")
    )
    assert store.similarity_search("badger", k=3) == [hit]  # the old text is gone

    served.sim.clear_requests()
    full = run(changed[:2], cleanup="full")
    assert full["num_deleted"] == 1
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 1}
    assert store.similarity_search("cougar", k=3) == []
    store.close()


def _dify_id(served: Served, name: str) -> str:
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        [item] = [d for d in client.list_documents(served.dataset_id).data if d.name == name]
        return item.id


def test_index_keyed_by_id_replaces_changed_chunks_and_cleans_up(served: Served) -> None:
    store = served.store()
    records = InMemoryRecordManager("dify/chunks")
    records.create_schema()
    chunks = [
        Document(page_content="Heron part one.", metadata={"source": "h.md", "part": 1}),
        Document(page_content="Heron part two.", metadata={"source": "h.md", "part": 2}),
        Document(page_content="Ibis only part.", metadata={"source": "i.md", "part": 1}),
    ]
    kwargs = {"source_id_key": "source", "key_encoder": "sha256"}
    index(chunks, records, store, cleanup="incremental", **kwargs)  # type: ignore[arg-type]
    assert served.writes() == {"creates": 3, "updates": 0, "deletes": 0}
    served.sim.clear_requests()
    shorter = [Document(page_content="Heron rewritten.", metadata={"source": "h.md", "part": 1})]
    result = index(shorter, records, store, cleanup="incremental", **kwargs)  # type: ignore[arg-type]
    assert (result["num_added"], result["num_deleted"]) == (1, 2)
    assert served.writes() == {"creates": 1, "updates": 0, "deletes": 2}
    assert {d.page_content for d in store.similarity_search("heron", k=5)} == {"Heron rewritten."}
    served.sim.clear_requests()
    none = index(chunks[2:], records, store, cleanup=None, **kwargs)  # type: ignore[arg-type]
    assert none["num_skipped"] == 1
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 0}
    store.close()


async def test_aindex_with_an_async_client(served: Served) -> None:
    async with AsyncDifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        store = DifyVectorStore(served.dataset_id, client=client, doc_key="source", **QUICK)
        records = InMemoryRecordManager("dify/async")
        await records.acreate_schema()
        docs = _sources(x="Xerus text.", y="Yak text.")
        kwargs = {"source_id_key": "source", "key_encoder": "sha256"}
        first = await aindex(docs, records, store, cleanup="full", **kwargs)  # type: ignore[arg-type]
        assert first["num_added"] == 2
        second = await aindex(docs, records, store, cleanup="full", **kwargs)  # type: ignore[arg-type]
        assert second["num_skipped"] == 2
        assert served.writes() == {"creates": 2, "updates": 0, "deletes": 0}
        changed = _sources(x="Xerus text.", y="Yellow yak text.")
        third = await aindex(changed, records, store, cleanup="full", **kwargs)  # type: ignore[arg-type]
        assert third["num_added"] == 1
        assert served.writes()["updates"] == 1
        [hit] = await store.asimilarity_search("yellow", k=1)
        assert hit.metadata == {"source": "y.md"}
        with pytest.raises(TypeError, match="AsyncDifyKnowledgeClient"):
            store.similarity_search("yak")  # blocking call on an async-only client


# -- read-after-write and updates ------------------------------------------------------------


def test_update_waits_for_the_document_not_its_whole_batch(served: Served) -> None:
    # A console upload put "guide" in a batch with a document that never finishes indexing.
    guide, batch = served.sim.add_document(served.dataset_id, "guide", "Old guide text.")
    served.sim.add_document(
        served.dataset_id,
        "stuck.txt",
        "Stuck text.",
        batch=batch,
        script=DocumentScript(stall_at="indexing"),
    )
    store = served.store(overwrite_foreign=True)  # the console's "guide" is replaced on purpose
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        client.wait_for_documents(served.dataset_id, guide, batch=batch, **QUICK)
    ids = store.add_documents([Document(page_content="New guide text.")], ids=["guide"])
    assert ids == ["guide"]
    assert served.writes() == {"creates": 0, "updates": 1, "deletes": 0}
    polled = {r.path for r in served.sim.requests_for(route="indexing_status")}
    assert polled == {f"/v1/datasets/{served.dataset_id}/documents/{batch}/indexing-status"}
    [hit] = store.similarity_search("new guide", k=1)
    assert (hit.id, hit.page_content) == ("guide", "New guide text.")
    store.close()


def test_wait_false_returns_at_once_and_searches_wait_for_it(served: Served) -> None:
    store = served.store(wait=False)
    store.add_texts(["Quetzal feathers."], [{"kind": "bird"}], ids=["q"])
    assert served.sim.requests_for(route="indexing_status") == []
    [hit] = store.similarity_search("quetzal", k=1)  # the gate waited for the write
    assert (hit.id, hit.metadata) == ("q", {"kind": "bird"})
    assert served.sim.requests_for(route="indexing_status")
    # A re-add while the first write still indexes is retried once Dify accepts it.
    store.add_texts(["Quetzal one."], ids=["r"])
    store.add_texts(["Quetzal two."], ids=["r"])
    assert [d.page_content for d in store.get_by_ids(["r"])] == ["Quetzal two."]
    store.close()


def test_metadata_round_trips_with_types_and_source_is_mapped(served: Served) -> None:
    store = served.store()
    metadata = {
        "source": "docs/manual.pdf",
        "page": 3,
        "score": 0.5,
        "draft": False,
        "tags": ["a", "b"],
        "nested": {"k": "v"},
        "lc_id": "user value",
    }
    store.add_documents([Document(page_content="Manual page three.", metadata=metadata)], ids=["m"])
    [doc] = store.get_by_ids(["m"])
    assert doc.metadata == metadata and doc.page_content == "Manual page three."
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        fields = {f.name for f in client.list_metadata_fields(served.dataset_id).fields}
    assert {"lc_source", "page", "score", "lc_lc_id", "lc_id", "lc_manifest"} <= fields
    assert "source" not in fields and "draft" not in fields
    assert store.similarity_search("manual", filter={"source": "docs/manual.pdf"})
    assert store.similarity_search("manual", filter={"page": {"$gte": 3}})
    assert store.similarity_search("manual", filter={"page": {"$gt": 3}}) == []
    with pytest.raises(ValueError, match="boolean"):
        store.similarity_search("manual", filter={"draft": False})
    scored = store.similarity_search_with_score("manual page", k=1)
    assert scored[0][0].id == "m" and 0 < scored[0][1] <= 1
    relevance = store.similarity_search_with_relevance_scores("manual page", k=1)
    assert relevance[0][1] == scored[0][1]
    store.close()


def test_documents_written_elsewhere_are_read_too(served: Served) -> None:
    served.sim.add_document(served.dataset_id, "console-upload.txt", "Walrus facts.")
    store = served.store()
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        [item] = client.list_documents(served.dataset_id).data
        client.wait_for_documents(served.dataset_id, item.id, **QUICK)
        client.set_document_metadata(served.dataset_id, item.id, {"team": "ops", "rank": 2})
    [hit] = store.similarity_search("walrus", k=1)
    assert (hit.id, hit.metadata) == ("console-upload.txt", {"team": "ops", "rank": 2})
    assert [d.id for d in store.get_by_ids(["console-upload.txt", "nope"])] == [
        "console-upload.txt"
    ]
    store.close()


def test_failed_indexing_is_raised_from_add(served: Served) -> None:
    served.sim.script("bad", DocumentScript(fail_at="splitting", error="splitter broke"))
    store = served.store()
    with pytest.raises(IndexingFailedError, match="splitter broke"):
        store.add_texts(["Will fail."], ids=["bad"])
    store.close()


def test_a_failed_document_is_replaced_by_adding_its_id_again(served: Served) -> None:
    served.sim.script("flaky", DocumentScript(fail_at="parsing", error="parser broke"))
    store = served.store()
    with pytest.raises(IndexingFailedError):
        store.add_texts(["First try."], ids=["flaky"])
    served.sim.script("flaky", None)
    # Dify refuses to update a failed document; a create under its name re-indexes it.
    assert store.add_texts(["Second try."], ids=["flaky"]) == ["flaky"]
    assert served.writes() == {"creates": 2, "updates": 0, "deletes": 0}
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        assert len(client.list_documents(served.dataset_id).data) == 1
    [doc] = store.get_by_ids(["flaky"])
    assert doc.page_content == "Second try."
    store.close()


def test_an_archived_document_is_not_silently_replaced(served: Served) -> None:
    store = served.store()
    store.add_texts(["Kept."], ids=["kept"])
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        [item] = client.list_documents(served.dataset_id).data
        client.archive_documents(served.dataset_id, [item.id])
    with pytest.raises(DifyDocumentNotAvailableError, match="archived"):
        store.add_texts(["Replaced?"], ids=["kept"])
    store.close()


def test_store_input_errors(served: Served) -> None:
    with pytest.raises(ValueError, match="server-side"):
        DifyVectorStore(served.dataset_id, embedding=DeterministicFakeEmbedding(size=3))
    with pytest.raises(ValueError, match="UUID"):
        DifyVectorStore("not-a-uuid")
    store = served.store(doc_key="source")
    assert store.embeddings is None and repr(store).startswith("DifyVectorStore(")
    with pytest.raises(ValueError, match="no 'source' metadata"):
        store.add_texts(["x"])
    with pytest.raises(ValueError, match="ids for"):
        store.add_texts(["x", "y"], ids=["1"])
    with pytest.raises(ValueError, match="metadatas"):
        store.add_texts(["x"], [{}, {}])
    with pytest.raises(ValueError, match="pass the ids"):
        store.delete()
    with pytest.raises(ValueError, match="vector"):
        store.similarity_search_by_vector([0.1, 0.2])
    with pytest.raises(ValueError, match="k must be"):
        store.similarity_search("x", k=0)
    with pytest.raises(ValueError, match="characters"):
        served.store().add_texts(["x"], ids=["n" * 201])
    assert store.delete(["missing"]) is True
    store.close()


def test_from_texts_and_documents_on_an_existing_dataset(served: Served) -> None:
    common = {
        "dataset_id": served.dataset_id,
        "api_key": served.sim.api_key,
        "base_url": served.base_url,
        **QUICK,
    }
    texts = DifyVectorStore.from_texts(["Osprey."], metadatas=[{"n": 1}], ids=["o"], **common)
    docs = DifyVectorStore.from_documents(
        [Document(page_content="Pelican.", id="p")], search_method="keyword_search", **common
    )
    assert [d.id for d in docs.similarity_search("osprey pelican", k=5)] == ["o", "p"]
    assert [d.id for d in texts.as_retriever(search_kwargs={"k": 1}).invoke("pelican")] == ["p"]
    texts.close()
    docs.close()


async def test_async_constructors_and_reads(served: Served) -> None:
    common = {
        "dataset_id": served.dataset_id,
        "api_key": served.sim.api_key,
        "base_url": served.base_url,
        **QUICK,
    }
    store = await DifyVectorStore.afrom_texts(["Raven."], ids=["r"], **common)
    other = await DifyVectorStore.afrom_documents([Document(page_content="Robin.")], **common)
    assert [d.page_content for d in await store.aget_by_ids(["r"])] == ["Raven."]
    assert await store.adelete(["r"]) is True
    assert await store.aget_by_ids(["r"]) == []
    hits = await other.asimilarity_search_with_score("robin", k=1)
    assert hits[0][0].page_content == "Robin."
    retriever = other.as_retriever()
    assert [d.page_content for d in await retriever.ainvoke("robin")] == ["Robin."]
    results = await asyncio.gather(store.aadd_texts(["Rook."]), other.aadd_texts(["Rail."]))
    assert all(len(ids) == 1 for ids in results)
    store.close()
    other.close()


# -- ownership: a store touches only the documents it wrote ---------------------------------------


@dataclass(frozen=True)
class Foreign:
    """A document a person put into the knowledge base (the console's way: no store mark)."""

    id: str
    name: str
    text: str
    metadata: dict[str, object]


def _foreign(served: Served, name: str, text: str) -> Foreign:
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        created = client.create_document_by_text(served.dataset_id, name, text)
        client.wait_for_documents(served.dataset_id, [created], **QUICK)
        client.set_document_metadata(served.dataset_id, created.document_id, {"team": "people"})
    served.sim.clear_requests()  # what follows is the store's doing
    return Foreign(created.document_id, name, text, {"team": "people"})


def _untouched(served: Served, foreign: Foreign) -> None:
    """The document is there, under its id and name, with its own text and metadata."""
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        detail = client.get_document(served.dataset_id, foreign.id)
        segments = client.all_segments(served.dataset_id, foreign.id)
        entries = client.get_document_metadata(served.dataset_id, foreign.id)
    assert detail.name == foreign.name
    assert "\n".join(segment.content for segment in segments) == foreign.text
    assert {e.name: e.typed_value for e in entries if not e.is_built_in} == foreign.metadata
    touched = [
        r
        for r in served.sim.requests
        if foreign.id in r.path and r.method in ("POST", "PATCH", "DELETE")
    ]
    assert touched == []


def test_add_documents_refuses_an_id_naming_a_foreign_document_and_writes_nothing(
    served: Served,
) -> None:
    foreign = _foreign(served, "team-handbook.md", "Holidays: 25 days a year.")
    store = served.store()
    docs = [Document(page_content="Fresh notes."), Document(page_content="Our handbook.")]
    with pytest.raises(DifyDocumentConflictError) as caught:
        store.add_documents(docs, ids=["fresh", "team-handbook.md"])
    error = caught.value
    assert (error.dataset_id, error.document_id, error.name) == (
        served.dataset_id,
        foreign.id,
        "team-handbook.md",
    )
    assert "'team-handbook.md'" in str(error) and "overwrite_foreign=True" in str(error)
    assert isinstance(error, DifyError)
    clone = pickle.loads(pickle.dumps(error))  # errors cross process pools
    assert (type(clone), str(clone), clone.document_id, clone.name) == (
        DifyDocumentConflictError,
        str(error),
        foreign.id,
        "team-handbook.md",
    )
    # Checked before any write: "fresh" was not created either.
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 0}
    assert served.count("document_metadata") == 0
    _untouched(served, foreign)
    with pytest.raises(DifyDocumentConflictError):  # the async path, and with a document id
        asyncio.run(store.aadd_documents([Document(page_content="x", id="team-handbook.md")]))
    _untouched(served, foreign)
    store.close()


def test_overwrite_foreign_replaces_it_and_then_the_store_owns_it(served: Served) -> None:
    foreign = _foreign(served, "team-handbook.md", "Holidays: 25 days a year.")
    bold = served.store(overwrite_foreign=True)
    bold.add_documents([Document(page_content="Holidays: 30 days.")], ids=["team-handbook.md"])
    assert served.writes() == {"creates": 0, "updates": 1, "deletes": 0}
    # Marked now: a default store updates it, and deletes it.
    store = served.store()
    store.add_documents([Document(page_content="Holidays: 31 days.")], ids=["team-handbook.md"])
    [doc] = store.get_by_ids(["team-handbook.md"])
    assert doc.page_content == "Holidays: 31 days."
    store.delete(["team-handbook.md"])
    assert served.writes()["deletes"] == 1
    assert _dify_ids(served) == []
    assert foreign.id not in _dify_ids(served)
    bold.close()
    store.close()


def _dify_ids(served: Served) -> list[str]:
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        return [d.id for d in client.list_documents(served.dataset_id).data]


def test_delete_treats_an_id_naming_a_foreign_document_as_missing(served: Served) -> None:
    foreign = _foreign(served, "team-handbook.md", "Holidays: 25 days a year.")
    store = served.store()
    store.add_texts(["Ours."], ids=["ours"])
    served.sim.clear_requests()
    assert store.delete(["team-handbook.md", "ours"]) is True
    assert asyncio.run(store.adelete(["team-handbook.md"])) is True
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 1}  # "ours" only
    _untouched(served, foreign)
    assert _dify_ids(served) == [foreign.id]
    store.close()


def test_index_full_cleanup_by_source_never_writes_nor_deletes_a_foreign_document(
    served: Served,
) -> None:
    foreign = _foreign(served, "team-handbook.md", "Holidays: 25 days a year.")
    store = served.store(doc_key="source")
    records = InMemoryRecordManager("dify/ownership")
    records.create_schema()

    def run(documents: list[Document]) -> dict[str, int]:
        result = index(
            documents,
            records,
            store,
            cleanup="full",
            source_id_key="source",
            key_encoder="sha256",
        )
        return dict(result)

    assert run(_sources(a="Aardvark.", b="Badger."))["num_added"] == 2
    served.sim.clear_requests()
    # A file of the same name as the person's document: the whole batch is refused.
    clash = [
        *_sources(a="Aardvark, revised.", b="Badger."),
        Document(page_content="Our handbook.", metadata={"source": "team-handbook.md"}),
    ]
    with pytest.raises(DifyDocumentConflictError, match=r"team-handbook\.md"):
        run(clash)
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 0}
    # Full cleanup deletes what the store wrote and is gone from the source; not the rest.
    assert run(_sources(a="Aardvark."))["num_deleted"] == 1
    assert served.writes() == {"creates": 0, "updates": 0, "deletes": 1}
    assert run([])["num_deleted"] == 1
    _untouched(served, foreign)
    assert _dify_ids(served) == [foreign.id]
    store.close()


def test_names_that_only_resemble_a_foreign_one_are_not_conflicts(served: Served) -> None:
    # Dify's keyword is a substring (SQL LIKE) match: "%" and "_" in a name, a longer name.
    foreign = _foreign(served, "100%_handbook.md (copy)", "A copy.")
    near = _foreign(served, "100%_handbook.md", "The original.")
    store = served.store()
    store.add_texts(["Ours."], ids=["100%_handbook"])
    store.add_texts(["Ours too."], ids=["100__handbook.md"])
    with pytest.raises(DifyDocumentConflictError) as caught:
        store.add_texts(["Not ours."], ids=["100%_handbook.md"])
    assert caught.value.document_id == near.id
    _untouched(served, foreign)
    _untouched(served, near)
    store.close()


def test_a_name_taken_over_by_a_person_after_the_store_wrote_it_is_not_replaced(
    served: Served,
) -> None:
    store = served.store()
    store.add_texts(["Ours."], ids=["team-handbook.md"])  # the store remembers its id
    with DifyKnowledgeClient(served.sim.api_key, served.base_url) as client:
        [ours] = client.list_documents(served.dataset_id).data
        client.delete_document(served.dataset_id, ours.id)
    foreign = _foreign(served, "team-handbook.md", "Holidays: 25 days a year.")
    # The remembered id is gone (404); a create under the name would replace the person's.
    with pytest.raises(DifyDocumentConflictError) as caught:
        store.add_texts(["Ours again."], ids=["team-handbook.md"])
    assert caught.value.document_id == foreign.id
    assert served.count("create_by_text") == 0
    _untouched(served, foreign)
    store.close()
