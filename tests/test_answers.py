"""The answers agents read, and the pending-upload gate retrievers use."""

from __future__ import annotations

import asyncio
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
from dify_ingest_tools.answers import failure_answer, stalled_answer, status_answer, timeout_answer
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
    assert failure_answer(IndexingFailedError("plain")) == "plain"


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
    from dify_ingest_tools.answers import error_answer
    from dify_ingest_tools.errors import error_from_response

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
