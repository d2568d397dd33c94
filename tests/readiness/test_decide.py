"""`decide`, the wait's pure decision step: table-driven, no event loop, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from dify_ingest_tools.errors import (
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyRateLimitError,
    IndexingEmptyError,
    IndexingFailedError,
    IndexingPausedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools.models.created import BatchRef
from dify_ingest_tools.models.status import BatchIndexingStatus, DocumentIndexingStatus
from dify_ingest_tools.readiness.policy import ContactReading, Decision, WaitState, decide
from dify_ingest_tools.readiness.updates import PollUpdate
from dify_ingest_tools.readiness.wait_options import WaitOptions

REF = BatchRef(dataset_id="0b5e7a34-6c1d-4f3e-9a2b-8c7d6e5f4a3b", batch="20240101000000123456")


def batch(*states: str, segments: int = 3) -> BatchIndexingStatus:
    """A batch with one document per state (``completed`` ones with ``segments`` each)."""
    documents = tuple(
        DocumentIndexingStatus(
            id=f"doc-{i}",
            indexing_status=state,
            error="boom" if state == "error" else None,
            completed_segments=segments if state == "completed" else 0,
            total_segments=segments,
        )
        for i, state in enumerate(states)
    )
    return BatchIndexingStatus(dataset_id=REF.dataset_id, batch=REF.batch, documents=documents)


def state(now: float = 0.0, *, reached: bool = True, **options: Any) -> WaitState:
    start = WaitState.start(REF, WaitOptions(**options), now)
    return replace(start, reached_dify=reached)


def not_found() -> DifyNotFoundError:
    return DifyNotFoundError(
        "Documents not found.", resource="documents", status=404, code="not_found", from_dify=True
    )


def refused() -> DifyConnectionError:
    return DifyConnectionError("Connection refused", url="http://localhost:1/v1")


@dataclass(frozen=True)
class Case:
    """One turn: a state, an update at ``now``, and what the wait must do."""

    name: str
    state: WaitState
    update: PollUpdate | None
    now: float
    action: str
    error: type[BaseException] | None = None
    ending: str | None = None
    event_kinds: tuple[str, ...] = ()
    contact: ContactReading = field(default_factory=ContactReading)
    warning: bool = False


CASES = [
    Case(
        "ready",
        state(),
        PollUpdate(status=batch("completed"), final=True),
        1.0,
        "return",
        ending="batch_completed",
        event_kinds=("progress", "document_completed"),
    ),
    Case(
        "still indexing",
        state(),
        PollUpdate(status=batch("indexing")),
        1.0,
        "continue",
        event_kinds=("progress",),
    ),
    Case(
        "failed, raise_on_error",
        state(),
        PollUpdate(status=batch("error"), final=True),
        1.0,
        "raise",
        error=IndexingFailedError,
        ending="batch_failed",
        event_kinds=("progress", "document_failed"),
    ),
    Case(
        "failed, raise_on_error=False",
        state(raise_on_error=False),
        PollUpdate(status=batch("completed", "error"), final=True),
        1.0,
        "return",
        ending="batch_failed",
        event_kinds=("progress", "document_completed", "document_failed"),
    ),
    Case(
        "paused, on_paused=wait",
        state(on_paused="wait"),
        PollUpdate(status=batch("paused")),
        1.0,
        "continue",
        event_kinds=("progress",),
    ),
    Case(
        "paused, on_paused=fail",
        state(on_paused="fail"),
        PollUpdate(status=batch("paused")),
        1.0,
        "raise",
        error=IndexingPausedError,
        ending="batch_failed",
        event_kinds=("progress",),
    ),
    Case(
        "empty, on_empty=raise",
        state(on_empty="raise"),
        PollUpdate(status=batch("completed", segments=0), final=True),
        1.0,
        "raise",
        error=IndexingEmptyError,
        ending="batch_completed",
        event_kinds=("progress", "document_completed"),
    ),
    Case(
        "empty, on_empty=warn",
        state(on_empty="warn"),
        PollUpdate(status=batch("completed", segments=0), final=True),
        1.0,
        "return",
        ending="batch_completed",
        event_kinds=("progress", "document_completed"),
        warning=True,
    ),
    Case(
        "empty, on_empty=accept",
        state(on_empty="accept"),
        PollUpdate(status=batch("completed", segments=0), final=True),
        1.0,
        "return",
        ending="batch_completed",
        event_kinds=("progress", "document_completed"),
    ),
    Case(
        "stalled",
        replace(state(stall_timeout=5.0), previous=batch("indexing")),
        None,
        5.0,
        "raise",
        error=IndexingStalledError,
        event_kinds=("stalled",),
    ),
    Case(
        "timed out",
        replace(state(timeout=30.0), previous=batch("indexing")),
        None,
        30.0,
        "raise",
        error=IndexingTimeoutError,
    ),
    Case(
        "not found within the grace",
        state(not_found_grace=10.0),
        PollUpdate(error=not_found(), retry_in=1.0),
        9.0,
        "continue",
        event_kinds=("retrying",),
    ),
    Case(
        "not found after the grace",
        state(not_found_grace=10.0),
        PollUpdate(error=not_found(), retry_in=1.0),
        10.0,
        "raise",
        error=DifyNotFoundError,
    ),
    Case(
        "rate limited",
        state(),
        PollUpdate(error=DifyRateLimitError("slow down", status=429, code="429"), retry_in=2.0),
        1.0,
        "continue",
        event_kinds=("rate_limited",),
    ),
    Case(
        "refused before Dify answered, within the contact budget",
        state(reached=False),
        PollUpdate(error=refused(), retry_in=0.5),
        1.0,
        "continue",
        event_kinds=("retrying",),
        contact=ContactReading(failures=1, failing_for=0.0, silent=1.0, sent=True),
    ),
    Case(
        "unreachable before Dify answered: the contact budget is spent",
        state(reached=False),
        PollUpdate(error=refused(), retry_in=0.5),
        2.5,
        "raise",
        error=DifyConnectionError,
        contact=ContactReading(failures=3, failing_for=2.5, silent=2.5, sent=True),
    ),
    Case(
        "unreachable before Dify answered: silent past contact_timeout",
        state(reached=False, contact_timeout=10.0),
        None,
        10.0,
        "raise",
        error=DifyError,
        contact=ContactReading(silent=10.0, sent=True),
    ),
    Case(
        "the deadline with every poll still queued on the client's side",
        state(reached=False, timeout=5.0),
        None,
        5.0,
        "raise",
        error=IndexingTimeoutError,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decide(case: Case) -> None:
    decision = decide(case.state, case.update, case.now, case.contact)
    assert decision.action == case.action
    if case.error is None:
        assert decision.error is None
    else:
        assert isinstance(decision.error, case.error), decision.error
    assert (decision.ending.kind if decision.ending else None) == case.ending
    assert tuple(event.kind for event in decision.events) == case.event_kinds
    assert (decision.warning is not None) == case.warning
    # Pure: the same turn decides the same way again.
    again = decide(case.state, case.update, case.now, case.contact)
    assert (again.action, again.state, again.wait, again.report) == (
        decision.action,
        decision.state,
        decision.wait,
        decision.report,
    )
    assert str(again.error) == str(decision.error)


def test_a_changed_status_is_reported_and_restarts_the_stall_timer() -> None:
    start = state(stall_timeout=5.0)
    indexing = batch("indexing")
    decision = decide(start, PollUpdate(status=indexing), 3.0)
    assert decision.report is indexing
    assert decision.state.last_change == 3.0
    assert decision.state.previous is indexing
    # The same status again: nothing to report, the stall timer keeps running.
    again = decide(decision.state, PollUpdate(status=indexing), 4.0)
    assert again.report is None
    assert again.state.last_change == 3.0


def test_without_an_update_the_wait_is_until_the_nearest_limit() -> None:
    by_deadline = decide(state(timeout=30.0), None, 20.0)
    assert (by_deadline.action, by_deadline.wait) == ("continue", 10.0)
    by_stall = decide(state(timeout=30.0, stall_timeout=5.0), None, 2.0)
    assert by_stall.wait == 3.0
    # Before Dify answered: wake when the contact budget may run out.
    by_contact = decide(
        state(reached=False, contact_timeout=10.0), None, 4.0, ContactReading(silent=4.0, sent=True)
    )
    assert by_contact.wait == 6.0


def test_after_an_update_the_wait_decides_again_without_waiting() -> None:
    decision = decide(state(), PollUpdate(status=batch("indexing")), 1.0)
    assert decision.action == "continue"
    assert decision.wait is None


def test_a_timeout_is_caused_by_the_last_failed_poll() -> None:
    failing = decide(state(timeout=30.0), PollUpdate(error=refused(), retry_in=1.0), 29.0)
    assert failing.state.last_error is not None
    timed_out = decide(failing.state, None, 30.0)
    assert isinstance(timed_out.error, IndexingTimeoutError)
    assert timed_out.cause is failing.state.last_error


def test_a_dify_error_answer_counts_as_contact() -> None:
    decision = decide(state(reached=False), PollUpdate(error=not_found(), retry_in=1.0), 1.0)
    assert decision.state.reached_dify


def test_the_document_list_answering_counts_as_contact() -> None:
    decision = decide(state(reached=False), PollUpdate(listed=True), 1.0)
    assert decision.state.reached_dify
    assert decision.action == "continue"
    assert isinstance(decision, Decision)


def test_a_completed_batch_waits_for_summaries_when_asked_unless_it_raises_empty() -> None:
    done = PollUpdate(status=batch("completed"), final=True)
    assert decide(state(summaries=True), done, 1.0).summaries
    assert not decide(state(summaries=False), done, 1.0).summaries
    empty = PollUpdate(status=batch("completed", segments=0), final=True)
    assert not decide(state(summaries=True, on_empty="raise"), empty, 1.0).summaries
    assert decide(state(summaries=True, on_empty="accept"), empty, 1.0).summaries


def test_not_found_past_the_grace_says_what_to_check_and_keeps_the_last_status() -> None:
    seen = batch("indexing")
    start = replace(state(not_found_grace=10.0), previous=seen)
    error = decide(start, PollUpdate(error=not_found(), retry_in=1.0), 12.0).error
    assert isinstance(error, DifyNotFoundError)
    assert "still not visible 10s after the wait started" in str(error)
    assert error.last_status is seen


def test_an_unreachable_dify_is_named_with_the_failures_it_took() -> None:
    contact = ContactReading(failures=3, failing_for=2.5, silent=2.5, sent=True)
    decision = decide(state(reached=False), PollUpdate(error=refused(), retry_in=0.5), 2.5, contact)
    assert "gave up after 3 failed request(s) in 2.5s" in str(decision.error)
    assert isinstance(decision.cause, DifyConnectionError)
