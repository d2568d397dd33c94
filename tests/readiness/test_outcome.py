"""One `Outcome` for how a wait ended, read the same way by every surface."""

from __future__ import annotations

import asyncio

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchIndexingStatus,
    DifyConnectionError,
    DifyNotFoundError,
    IndexingEmptyError,
    IndexingFailedError,
    IndexingPausedError,
    IndexingStalledError,
    IndexingTimeoutError,
    Outcome,
)
from dify_ingest_tools._http.telemetry import _verdict
from dify_ingest_tools.cli.common import (
    EXIT_API,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_READY,
    exit_code_for,
    stop_reason,
)
from dify_ingest_tools.readiness.policy import outcome_of
from dify_ingest_tools.testing import DifySimulator, DocumentScript

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"


def status(*states: str, segments: int = 1) -> BatchIndexingStatus:
    documents = [
        {"id": f"d{i}", "indexing_status": s, "completed_segments": segments,
         "total_segments": segments}
        for i, s in enumerate(states)
    ]  # fmt: skip
    return BatchIndexingStatus.model_validate(
        {"dataset_id": DS, "batch": "b1", "documents": documents, "observed_at": 0.0}
    )


CASES = [
    (Outcome.timed_out, IndexingTimeoutError("late", last_status=status("indexing")), "timeout"),
    (Outcome.stalled, IndexingStalledError("stuck", last_status=status("waiting")), "stalled"),
    (Outcome.paused, IndexingPausedError("paused", last_status=status("paused")), "paused"),
    (Outcome.failed, IndexingFailedError("broken", last_status=status("error")), "failed"),
    (
        Outcome.not_found,
        DifyNotFoundError("Documents not found.", status=404, code="not_found"),
        "error",
    ),
    (Outcome.unreachable, DifyConnectionError("refused"), "error"),
    (Outcome.cancelled, asyncio.CancelledError(), "interrupted"),
    (
        Outcome.empty,
        IndexingEmptyError("no chunks", last_status=status("completed", segments=0)),
        "empty",
    ),
]
EXITS = {
    Outcome.timed_out: EXIT_NOT_READY,
    Outcome.stalled: EXIT_NOT_READY,
    Outcome.paused: EXIT_NOT_READY,
    Outcome.failed: EXIT_FAILED,
    Outcome.not_found: EXIT_API,
    Outcome.unreachable: EXIT_API,
    Outcome.cancelled: EXIT_INTERRUPTED,
    Outcome.empty: EXIT_NOT_READY,
}


@pytest.mark.parametrize(("outcome", "error", "reason"), CASES, ids=[c[0].value for c in CASES])
def test_every_outcome_reads_the_same_on_every_surface(
    outcome: Outcome, error: BaseException, reason: str
) -> None:
    assert outcome_of(error=error) is outcome
    assert stop_reason(error) == reason  # the CLI's --json reason
    assert exit_code_for(error) == EXITS[outcome]  # the CLI's exit code
    expected = {"timed_out": "timeout", "not_found": "error", "unreachable": "error"}
    assert _verdict(outcome_of(error=error), error) == expected.get(
        outcome.value, outcome.value
    )  # telemetry


def test_statuses_map_to_ready_failed_paused_or_none() -> None:
    assert outcome_of(status("completed", "completed")) is Outcome.ready
    # Completed with 0 segments (02c, 02d): indexed, but nothing will be found.
    assert outcome_of(status("completed", "completed", segments=0)) is Outcome.empty
    assert outcome_of(status("completed", "error")) is Outcome.failed
    assert outcome_of(status("paused", "indexing")) is Outcome.paused
    assert outcome_of(status("indexing")) is None  # still working: nothing ended
    assert {o.value for o in Outcome} == {
        "ready", "failed", "paused", "stalled", "timed_out", "unreachable", "not_found",
        "cancelled", "empty",
    }  # fmt: skip


async def test_a_paused_batch_raises_its_own_error_which_is_still_a_failure(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    sim.script("p.txt", DocumentScript(pause_at="indexing"))
    created = await client.create_document_by_text(dataset_id, "p.txt", "paused text")
    with pytest.raises(IndexingPausedError) as caught:
        await client.wait_for_indexing(
            dataset_id, created.batch, timeout=120, on_paused="fail", poll_interval=0.5
        )
    assert isinstance(caught.value, IndexingFailedError)
    assert outcome_of(error=caught.value) is Outcome.paused
    assert exit_code_for(caught.value) == EXIT_NOT_READY
