"""The retrievers' readiness gate: wait (bounded) for this client's pending uploads, then search.

A retriever sits inside chains and agents (LangChain's ``create_retriever_tool``, LlamaIndex
query engines) that treat any exception as a crash. So when the pending uploads are not
indexed within the gate's ``pending_timeout``, the default is to search what Dify has and
*say so*, three ways: a flag on every result (`PARTIAL_KEY`), a logged warning and a
``partial_results`` `IndexingEvent` per unfinished batch. ``on_pending_timeout="raise"``
raises the wait's error instead, for pipelines that would rather fail than read partial
results. Both framework retrievers use this one implementation.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.errors import (
    DifyError,
    DifyNotFoundError,
    IndexingError,
)
from dify_ingest_tools.events import EventCallback, IndexingEvent, dispatch
from dify_ingest_tools.models.created import BatchRef
from dify_ingest_tools.models.outcome import Outcome
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.policy import outcome_of

logger = logging.getLogger("dify_ingest_tools")

OnPendingTimeout: TypeAlias = Literal["search", "raise"]
"""What a retriever does when its pending uploads are not indexed in time."""

DEFAULT_PENDING_TIMEOUT: Final = 30.0
"""Seconds a retriever waits for pending uploads before it searches anyway. Short on purpose:
a query waits inside an agent's turn, and a small document indexes in seconds."""

PARTIAL_KEY: Final = "dify_partial_results"
"""Result metadata: True when the search ran before this client's uploads were indexed."""
PENDING_BATCHES_KEY: Final = "dify_pending_batches"
"""Result metadata, with `PARTIAL_KEY`: the unfinished batches, comma-separated."""


@dataclass(frozen=True)
class GatePassage:
    """How a query got past the gate.

    Attributes:
        unfinished: Batches not yet indexed when the search ran (empty: results are complete
            as far as this client knows).
        reason: Why the gate stopped waiting (None when it did not have to).
        failed: Pending uploads that failed to index (their content cannot be found).
    """

    unfinished: tuple[BatchRef, ...] = ()
    reason: str | None = None
    failed: tuple[BatchIndexingStatus, ...] = ()

    @property
    def partial(self) -> bool:
        """True when the search ran before every pending upload was indexed."""
        return bool(self.unfinished)

    def metadata(self) -> dict[str, Any]:
        """What to add to every result's metadata (nothing when the results are complete)."""
        if not self.partial:
            return {}
        return {
            PARTIAL_KEY: True,
            PENDING_BATCHES_KEY: ",".join(ref.batch for ref in self.unfinished),
        }


async def pass_gate(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    *,
    timeout: float,
    on_timeout: OnPendingTimeout = "search",
    on_event: EventCallback | None = None,
    **options: Any,
) -> GatePassage:
    """Wait for the client's pending uploads to ``dataset_id``; decide whether to search.

    Args:
        timeout: Seconds to wait (the retriever's ``pending_timeout``).
        on_timeout: ``"search"``: a wait that times out (or stalls, or meets a paused
            document with ``on_paused="fail"``, or a batch Dify no longer knows) lets the
            search run, flagged partial; ``"raise"``: that error is raised.
        on_event: Receives every `IndexingEvent` of the wait, and the ``partial_results``
            events.
        **options: Other wait options (``poll_interval``, ``stall_timeout``, ...).

    Raises:
        IndexingError: With ``on_timeout="raise"``, what ended the wait.
        DifyError: An API error (a bad key, a missing dataset): the search would fail too.
    """
    if on_timeout not in ("search", "raise"):
        raise ValueError("on_pending_timeout must be 'search' or 'raise'")
    # Creates and updates: an update re-indexes its document, which a search would miss.
    pending = client._pending.refs(dataset_id)
    if not pending:
        return GatePassage()
    latest: dict[str, BatchIndexingStatus] = {}

    async def relay(event: IndexingEvent) -> None:
        if event.status is not None:
            latest[event.batch] = event.status
        if on_event is not None:
            result = on_event(event)
            if inspect.isawaitable(result):
                await result

    try:
        # This client's own uploads only: a search does not wait for other processes'.
        statuses = await client.wait_for_pending(
            dataset_id,
            timeout=timeout,
            raise_on_error=False,
            durable=False,
            on_event=relay,
            **{**options, "on_empty": "accept"},  # indexed: nothing to wait for (warned below)
        )
    except (IndexingError, DifyNotFoundError) as error:
        if on_timeout == "raise" or not _lets_search(error):
            raise
        return await _search_anyway(client, dataset_id, pending, error, timeout, latest, on_event)
    failed = tuple(status for status in statuses if status.is_failed)
    empty = [status for status in statuses if status.is_empty]
    if empty:
        logger.warning(
            "retrieving from dataset %s: uploads indexed with no chunks (nothing of them will "
            "be found): %s",
            dataset_id,
            " ".join(status.summary() for status in empty),
        )
    if failed:
        logger.warning(
            "retrieving from dataset %s although uploads failed to index (their content "
            "cannot be found): %s",
            dataset_id,
            " ".join(status.summary() for status in failed),
        )
    return GatePassage(failed=failed)


def _lets_search(error: DifyError) -> bool:
    # A batch Dify no longer knows (its documents were deleted) cannot hold up a search; a
    # missing dataset or route would fail the search as well, so it is raised.
    return not isinstance(error, DifyNotFoundError) or error.is_batch_missing


def _reason(error: DifyError, timeout: float) -> str:
    outcome = outcome_of(error=error)
    if outcome is Outcome.timed_out:
        return f"not indexed after the retriever's pending_timeout of {timeout:g} s"
    if outcome is Outcome.stalled:
        return "indexing stalled (nothing changed for the stall timeout)"
    if outcome is Outcome.not_found:
        return "Dify no longer knows the batch (were its documents deleted?)"
    return "a document is paused (only Dify's console resumes it)"


async def _search_anyway(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    pending: list[BatchRef],
    error: DifyError,
    timeout: float,
    latest: Mapping[str, BatchIndexingStatus],
    on_event: EventCallback | None,
) -> GatePassage:
    still = {ref.batch for ref in client._pending.refs(dataset_id)}
    unfinished = tuple(ref for ref in pending if ref.batch in still)
    if not unfinished:  # pragma: no cover - the wait ended as the last batch finished
        return GatePassage()
    reason = _reason(error, timeout)
    logger.warning(
        "searching dataset %s before this client's uploads were indexed (%s): batch(es) %s; "
        "the results may miss their documents",
        dataset_id,
        reason,
        ", ".join(ref.batch for ref in unfinished),
    )
    for ref in unfinished:
        event = IndexingEvent(
            kind="partial_results",
            dataset_id=ref.dataset_id,
            batch=ref.batch,
            status=latest.get(ref.batch),
            error=reason,
            error_type=type(error).__name__,
        )
        await dispatch([on_event] if on_event is not None else [], event)
    return GatePassage(unfinished=unfinished, reason=reason)
