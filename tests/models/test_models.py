"""Models parse every recorded status body and derive verdicts from `indexing_status` only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from dify_ingest_tools import (
    BatchIndexingStatus,
    BatchRef,
    CreatedDocument,
    DocumentIndexingStatus,
    IndexingStatus,
    RetrievedChunk,
)
from dify_ingest_tools.models.created import as_batch_ref
from tests.conftest import load_recording

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"


def doc(status: str, done: int = 0, total: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "id": fields.pop("id", f"doc-{status}-{done}-{total}"),
        "indexing_status": status,
        "completed_segments": done,
        "total_segments": total,
        **fields,
    }


def batch(*docs: dict[str, Any]) -> BatchIndexingStatus:
    return BatchIndexingStatus(dataset_id=DS, batch="1", documents=docs)  # type: ignore[arg-type]


def _status_bodies(node: Any) -> Iterator[list[dict[str, Any]]]:
    if isinstance(node, dict):
        if "request" in node and "response" in node:
            body = node["response"].get("body")
            if (
                node["request"]["path"].endswith("/indexing-status")
                and node["response"]["status"] == 200
            ):
                yield body["data"]
            return
        for value in node.values():
            yield from _status_bodies(value)
    elif isinstance(node, list):
        for value in node:
            yield from _status_bodies(value)


@pytest.mark.parametrize(
    "recording",
    [
        "01a_create_by_text_small_and_poll.json",
        "01e_recreate_same_name_small_and_poll.json",
        "02a_async_indexing_error_corrupt_files.json",
        "02c_whitespace_only_text_poll.json",
        "07c_pause_during_indexing_phase.json",
        "05b_multi_document_batch_via_console.json",
    ],
)
def test_every_recorded_status_body_parses(recording: str) -> None:
    bodies = list(_status_bodies(load_recording(recording)))
    assert bodies
    for data in bodies:
        status = BatchIndexingStatus(dataset_id=DS, batch="b", documents=data)  # type: ignore[arg-type]
        assert len(status.documents) == len(data)
        for parsed in status.documents:
            assert isinstance(parsed.indexing_status, IndexingStatus)
        assert status.summary().startswith("Batch b of dataset")


def test_recorded_error_document() -> None:
    data = next(_status_bodies(load_recording("02a_async_indexing_error_corrupt_files.json")))
    status = batch(*data)
    assert status.is_failed and status.is_terminal and not status.is_completed
    assert status.verdict == "failed"
    assert (
        status.failed_documents[0].error == "Failed to load document (PDFium: Data format error)."
    )
    assert "PDFium" in status.summary() and "FAILED" in status.summary()


def test_status_enum_names_values_and_unknowns() -> None:
    assert [s.value for s in IndexingStatus] == [
        "waiting",
        "parsing",
        "cleaning",
        "splitting",
        "indexing",
        "paused",
        "completed",
        "error",
    ]
    assert IndexingStatus.COMPLETED is IndexingStatus.completed
    assert IndexingStatus.completed == "completed" and str(IndexingStatus.error) == "error"
    assert IndexingStatus.parse("indexing") is IndexingStatus.indexing
    assert IndexingStatus.parse("vectorizing") == "vectorizing"
    assert IndexingStatus.completed.is_terminal and not IndexingStatus.paused.is_terminal
    with pytest.raises(ValueError, match="must be a string"):
        IndexingStatus.parse(3)


def test_unknown_status_is_kept_and_counts_as_working() -> None:
    status = batch(doc("vectorizing", id="a"), doc("completed", 1, 1, id="b"))
    unknown = status.document("a")
    assert unknown.indexing_status == "vectorizing"
    assert not isinstance(unknown.indexing_status, IndexingStatus)
    assert not unknown.is_known_status and not unknown.is_terminal
    assert not status.is_completed and not status.is_terminal and status.verdict == "working"
    assert status.model_dump(mode="json")["documents"][0]["indexing_status"] == "vectorizing"
    assert "1 vectorizing" in status.summary()


def test_timestamps_accept_int_float_and_null() -> None:
    parsed = DocumentIndexingStatus.model_validate(
        doc(
            "indexing",
            processing_started_at=1795880405,
            parsing_completed_at=1795880405.5,
            completed_at=None,
        )
    )
    assert parsed.processing_started_at == 1795880405
    assert parsed.parsing_completed_at == 1795880405.5
    assert parsed.completed_at is None and parsed.stopped_at is None
    # Informational: a value that is not epoch seconds is kept as None, never fatal.
    odd = DocumentIndexingStatus.model_validate(doc("indexing", completed_at="yesterday"))
    assert odd.completed_at is None and odd.indexing_status is IndexingStatus.indexing
    assert (
        DocumentIndexingStatus.model_validate(
            doc("waiting") | {"completed_segments": None}
        ).completed_segments
        == 0
    )


def test_documents_are_frozen_and_keep_unknown_fields() -> None:
    parsed = DocumentIndexingStatus.model_validate(doc("waiting", tokens=12))
    assert parsed.model_extra == {"tokens": 12}
    with pytest.raises(ValidationError):
        parsed.error = "x"  # type: ignore[misc]


def test_completion_is_decided_on_status_not_counters() -> None:
    # Counters equal while still indexing (recording 01c), and 0/0 completed (02c).
    assert not batch(doc("indexing", 5, 5)).is_completed
    empty_text = batch(doc("completed", 0, 0))
    assert empty_text.is_completed and empty_text.progress == 1.0
    assert not batch().is_completed and not batch().is_terminal
    assert batch().summary().endswith("no documents reported.")


def test_multi_document_batch_derivations() -> None:
    status = batch(
        doc("completed", 8, 8, id="c"),
        doc("indexing", 2, 10, id="a"),
        doc("error", id="b", error="Package not found"),
    )
    assert [d.id for d in status.documents] == ["c", "a", "b"]  # as Dify sent them
    assert status.is_failed and not status.is_terminal and status.verdict == "failed"
    assert [d.id for d in status.failed_documents] == ["b"]
    assert (status.completed_segments, status.total_segments) == (10, 18)
    assert status.progress == pytest.approx(10 / 18)
    assert status.status_counts() == {"completed": 1, "indexing": 1, "error": 1}
    assert "document b: Package not found" in status.summary()
    with pytest.raises(KeyError):
        status.document("zzz")


def test_progress_ignores_counters_left_from_an_earlier_run() -> None:
    # A re-created document shows its old 8/8 while it waits again (recording 01e).
    assert batch(doc("waiting", 8, 8)).progress == 0.0
    assert batch(doc("indexing", 3, 12)).progress == 0.25
    assert batch(doc("splitting", 0, 0)).progress == 0.0


def test_paused_batch() -> None:
    status = batch(doc("paused", 0, 3016, paused_at=1795879965))
    assert status.is_paused and status.verdict == "paused" and not status.is_terminal
    assert status.paused_documents == status.documents
    assert "console" in status.summary()


def test_ready_summary_and_equality_ignores_order() -> None:
    first = batch(doc("completed", 1, 1, id="a"), doc("completed", 2, 2, id="b"))
    second = batch(doc("completed", 2, 2, id="b"), doc("completed", 1, 1, id="a"))
    assert first.fingerprint() == second.fingerprint()
    assert "ready" in first.summary() and "2/2 documents completed" in first.summary()
    dumped = first.model_dump(mode="json")
    assert dumped["is_completed"] is True and dumped["progress"] == 1.0
    assert dumped["verdict"] == "ready"
    assert first.observed_at.tzinfo is not None


def test_created_document_from_recorded_create() -> None:
    body = load_recording("01a_create_by_text_small_and_poll.json")["create"]["response"]["body"]
    created = CreatedDocument.from_response(DS, body)
    assert created.document_id == "155993e0-36ff-4dfe-a418-d9fd1fbbf4d7"
    assert created.batch == "20261128154005508280"
    assert created.name == "fresh-small-1795880405.txt"
    assert created.indexing_status is IndexingStatus.splitting
    assert created.document["position"] == 18 and created.raw is created.document
    assert created.ref == BatchRef(dataset_id=DS, batch="20261128154005508280")
    assert "document=" not in repr(created)


def test_batch_refs_normalise() -> None:
    ref = BatchRef(dataset_id=DS, batch="1")
    assert as_batch_ref(ref) is ref
    assert as_batch_ref((DS, "1")) == ref
    assert BatchRef(DS, "1") == ref
    assert str(ref) == f"{DS}/1"
    assert hash(ref) == hash(BatchRef(dataset_id=DS, batch="1"))
    with pytest.raises(TypeError):
        as_batch_ref("nope")  # type: ignore[arg-type]


def test_retrieved_chunk_from_recorded_keyword_search() -> None:
    body = load_recording("06_retrieve.json")["retrieve_keyword_search"]["response"]["body"]
    chunks = [RetrievedChunk.from_record(r) for r in body["records"]]
    first = chunks[0]
    assert first.score == 0.0  # keyword search: a real score of zero
    assert first.document_id == "cf9bc526-fc6d-47b7-8c03-967a08303640"
    assert first.document_name is None  # segment.document has only nulls here
    assert first.segment_id == "7060bdca-f75a-46ff-a1eb-1c16a70ed5df"
    assert first.content.startswith("theta paragraph")
    assert "keywords" in first.metadata


def test_retrieved_chunk_from_external_knowledge_record() -> None:
    chunk = RetrievedChunk.from_record(
        {"content": "c", "title": "t.pdf", "score": 0.7, "metadata": {"k": 1}}
    )
    assert (chunk.content, chunk.document_name, chunk.score) == ("c", "t.pdf", 0.7)
    assert chunk.metadata == {"k": 1}
