"""The answers agents read, and the pending-upload gate retrievers use."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchIndexingStatus,
    DifyKnowledgeClient,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools.agent.answers import answer_status, status_answer
from dify_ingest_tools.agent.error_answers import (
    answer_error,
    failure_answer,
    stalled_answer,
    timeout_answer,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"


def batch(*docs: dict[str, Any]) -> BatchIndexingStatus:
    return BatchIndexingStatus(dataset_id=DS, batch="b1", documents=docs)  # type: ignore[arg-type]


def test_status_answers() -> None:
    ready = status_answer(
        batch(
            {
                "id": "a",
                "indexing_status": "completed",
                "completed_segments": 4,
                "total_segments": 4,
            }
        )
    )
    assert "READY" in ready and "4/4 segments" in ready and "b1" in ready
    working = status_answer(
        batch(
            {
                "id": "a",
                "indexing_status": "indexing",
                "completed_segments": 12,
                "total_segments": 40,
            }
        )
    )
    assert "NOT READY" in working and "12/40 segments" in working and "1 indexing" in working
    failed = status_answer(
        batch(
            {"id": "a", "indexing_status": "error", "error": "PDFium: Data format error"},
            {"id": "b", "indexing_status": "indexing"},
        )
    )
    assert "FAILED" in failed and "Document a failed: PDFium: Data format error." in failed
    assert "still being indexed" in failed
    paused = status_answer(batch({"id": "a", "indexing_status": "paused"}))
    assert "PAUSED" in paused and "console" in paused
    assert "no documents" in status_answer(batch())


def test_error_answers() -> None:
    status = batch(
        {"id": "a", "indexing_status": "indexing", "completed_segments": 12, "total_segments": 40}
    )
    timeout = timeout_answer(IndexingTimeoutError("t", last_status=status), 30)
    assert timeout.startswith("Still indexing after 30 s") and "12/40 segments" in timeout
    assert "not reported" in timeout_answer(IndexingTimeoutError("t"), 5)
    assert "STALLED" in stalled_answer(IndexingStalledError("s", last_status=status))
    assert "No status" in stalled_answer(IndexingStalledError("s"))
    failed = batch({"id": "a", "indexing_status": "error", "error": "boom"})
    assert "boom" in failure_answer(IndexingFailedError("f", last_status=failed))
    assert failure_answer(IndexingFailedError("plain")) == "plain."


def test_difys_error_text_ends_the_sentence_once() -> None:
    # Dify's error texts end in a full stop; the answers must not add a second one.
    failed = batch(
        {"id": "a", "indexing_status": "error", "error": "Failed to load document (PDFium)."},
        {"id": "b", "indexing_status": "error", "error": "no stop"},
        {"id": "c", "indexing_status": "error", "error": None},
    )
    text = status_answer(failed)
    assert "Document a failed: Failed to load document (PDFium). Document b" in text
    assert "Document b failed: no stop. " in text
    assert "Document c failed: Dify gave no error text. " in text
    assert ".." not in text
    from dify_ingest_tools._http.responses import error_from_response
    from dify_ingest_tools.agent.error_answers import error_answer

    body = '{"code": "not_found", "message": "Dataset not found.", "status": 404}'
    answer = error_answer(error_from_response(404, body), dataset_id=DS, batch="b1")
    assert ".." not in answer and "Dataset not found. " in answer


def test_a_huge_server_message_is_cut_in_every_answer() -> None:
    huge = "x" * 1_000_000
    failed = batch({"id": "a", "indexing_status": "error", "error": huge})
    answer = answer_status(failed)
    assert len(answer.text) < 2_000 and "[…]" in answer.text
    assert len(answer.data["failed_documents"][0]["error"]) <= 500
    from dify_ingest_tools._http.responses import error_from_response

    body = json.dumps({"code": "c", "message": huge, "status": 400})
    error = answer_error(error_from_response(400, body), dataset_id=DS, batch="b1")
    assert len(error.text) < 2_000 and error.text.count("[…]") == 1


def test_answers_carry_an_outcome_and_json_ready_data() -> None:
    status = batch(
        {"id": "a", "indexing_status": "indexing", "completed_segments": 1, "total_segments": 4}
    )
    working = answer_status(status)
    assert (working.outcome, working.is_error, working.status) == ("working", False, status)
    assert working.data["verdict"] == "working" and working.data["batch"] == "b1"
    assert working.data["completed_segments"] == 1 and working.data["total_segments"] == 4
    assert working.data["status_counts"] == {"indexing": 1}
    json.dumps(working.data)  # JSON-ready as it is
    assert str(working) == working.text

    paused = answer_status(batch({"id": "a", "indexing_status": "paused"}))
    assert paused.outcome == "paused" and paused.data["paused_documents"] == ["a"]
    failed = answer_status(batch({"id": "a", "indexing_status": "error", "error": "boom."}))
    assert failed.data["failed_documents"] == [{"id": "a", "error": "boom."}]

    timeout = answer_error(
        IndexingTimeoutError("t", last_status=status), dataset_id=DS, batch="b1", waited=5, asked=60
    )
    assert timeout.outcome == "timeout" and not timeout.is_error
    assert timeout.text.endswith("(This tool waits at most 5 s per call.)")
    assert timeout.data["waited_seconds"] == 5
    stalled = answer_error(IndexingStalledError("s"), dataset_id=DS, batch="b1")
    assert (stalled.outcome, stalled.data["batch"]) == ("stalled", "b1")

    invalid = answer_error(ValueError("top_k must be >= 1"), dataset_id=DS)
    assert invalid.is_error and invalid.outcome == "invalid"
    assert invalid.text == "Invalid argument: top_k must be >= 1."
    json.dumps(invalid.data)


def test_connection_errors_answer_without_the_servers_url() -> None:
    from dify_ingest_tools import DifyConnectionError

    error = DifyConnectionError(
        "Cannot connect to host", url="http://10.1.2.3:5001/v1/datasets", method="GET"
    )
    answer = answer_error(error, dataset_id=DS, batch="b1")
    assert answer.is_error and answer.outcome == "error"
    assert answer.text.startswith("Could not reach Dify: Cannot connect to host. ")
    assert "10.1.2.3" not in answer.text and "10.1.2.3" not in json.dumps(answer.data)


async def test_pending_uploads_are_waited_for_then_forgotten(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    assert await client.wait_for_pending(dataset_id) == []
    good = await client.create_document_by_text(dataset_id, "a.txt", "alpha")
    sim.script("bad.pdf", DocumentScript(fail_at="parsing", error="broken"))
    bad = await client.create_document_by_file(dataset_id, b"x", filename="bad.pdf")
    assert {ref.batch for ref in client.pending_batches(dataset_id)} == {good.batch, bad.batch}

    async def advance() -> None:
        for _ in range(200):
            await asyncio.sleep(0.005)
            clock.advance(0.2)

    ticker = asyncio.create_task(advance())
    statuses = await client.wait_for_pending(dataset_id, poll_interval=0.01, max_poll_interval=0.02)
    ticker.cancel()
    assert sorted(s.verdict for s in statuses) == ["failed", "ready"]
    assert client.pending_batches(dataset_id) == []
    assert client.pending_batches(dataset_id.upper()) == []


async def test_a_raising_gate_forgets_the_failed_batch(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.script("bad.pdf", DocumentScript(fail_at="parsing", error="broken"))
    await client.create_document_by_file(dataset_id, b"x", filename="bad.pdf")
    clock.advance(60)
    with pytest.raises(IndexingFailedError):
        await client.wait_for_pending(dataset_id, raise_on_error=True, poll_interval=0.01)
    assert client.pending_batches(dataset_id) == []


def test_blocking_pending_gate(
    sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    created = sync_client.create_document_by_text(dataset_id, "a.txt", "alpha")
    assert sync_client.pending_batches(dataset_id)[0].batch == created.batch
    clock.advance(60)
    [status] = sync_client.wait_for_pending(dataset_id, poll_interval=0.01)
    assert status.is_completed and sync_client.pending_batches(dataset_id) == []


async def test_the_gate_forgets_what_any_wait_saw_finish_and_re_uploads(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    first = await client.create_document_by_text(dataset_id, "same.txt", "v1")
    clock.advance(60)
    await client.wait_for_indexing(dataset_id, first.batch, poll_interval=0.01)
    assert client.pending_batches(dataset_id) == []  # the wait saw it finish
    again = await client.create_document_by_text(dataset_id, "same.txt", "v2")
    newer = await client.create_document_by_text(dataset_id, "same.txt", "v3")
    # Same name: the document moved to the newest batch; older ones answer "not found".
    assert [ref.batch for ref in client.pending_batches(dataset_id)] == [newer.batch]
    assert again.document_id == newer.document_id == first.document_id
    clock.advance(60)
    [status] = await client.wait_for_pending(dataset_id, poll_interval=0.01, not_found_grace=0)
    assert status.batch == newer.batch and status.is_completed


def test_error_answers_carry_difys_message_and_advice() -> None:
    from dify_ingest_tools import DifyConnectionError, DifyError
    from dify_ingest_tools._http.responses import error_from_response
    from dify_ingest_tools.agent.error_answers import error_answer

    def answer(status: int, message: str) -> str:
        body = f'{{"code": "c", "message": "{message}", "status": {status}}}'
        return error_answer(error_from_response(status, body), dataset_id=DS, batch="b1")

    auth = answer(401, "Access token is invalid")
    assert "HTTP 401" in auth and "Access token is invalid" in auth and "API key" in auth
    assert "wait about a minute" in answer(403, "... request rate limit of your subscription.")
    assert "may not access dataset" in answer(403, "Dataset api access is not enabled.")
    assert f"no dataset {DS}" in answer(404, "Dataset not found.")
    assert "batch b1" in answer(404, "Documents not found.")
    assert "base URL" in answer(404, "Route")
    assert "try again" in answer(502, "Bad Gateway")
    assert "tell the user" in answer(400, "invalid")
    offline = error_answer(DifyConnectionError("refused"), dataset_id=None, batch=None)
    assert offline.startswith("Could not reach Dify: refused")
    assert error_answer(DifyError("odd"), dataset_id=None, batch=None).startswith("Dify error: odd")
