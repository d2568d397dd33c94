"""The errors a wait raises, built once with their context: what was last seen, why it
stopped and what to do next."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dify_ingest_tools._base.shown import ID_LIMIT, failures, shown
from dify_ingest_tools.errors import (
    DifyAPIError,
    DifyConnectionError,
    DifyError,
    DifyTimeoutError,
    IndexingEmptyError,
    IndexingFailedError,
    IndexingPausedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools.models.created import BatchRef
from dify_ingest_tools.models.status import BatchIndexingStatus

if TYPE_CHECKING:
    from dify_ingest_tools.readiness.wait_options import WaitOptions


def shown_ids(ids: Sequence[str], limit: int = 5) -> str:
    """Server-provided document ids for a message: the first few, safe to show."""
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(shown(i, ID_LIMIT) for i in ids[:limit]) + more


def _last_seen(status: BatchIndexingStatus | None, error: DifyError | None) -> str:
    seen = f"Last seen: {status.summary()}" if status else "No status was observed yet."
    if error is not None:
        seen += f" Last poll failed: {error}"
    return seen


def unreachable_error(
    ref: BatchRef, error: DifyError | None, failures: int, elapsed: float
) -> DifyError:
    """The error a wait raises when Dify never answered: the last failure, with a hint.

    ``failures``: failed requests of the client since Dify last answered; ``elapsed``: the
    seconds they span, or the batch's polls were out unanswered (never time queued).
    """
    tried = (
        f"The wait for batch {ref.batch} gave up after {failures} failed request(s) in "
        f"{elapsed:.1f}s without one answer from Dify's API"
    )
    if error is None:
        return DifyTimeoutError(
            f"no answer from Dify within {elapsed:.1f}s while waiting for batch {ref.batch} "
            f"of dataset {ref.dataset_id}",
            hint=(
                "The server accepts connections but does not answer: check base_url (the "
                "API root ending in /v1), proxies and firewalls."
            ),
        )
    # A new error: the poll loop hands the same one to every waiter of the batch.
    if isinstance(error, (DifyAPIError, DifyConnectionError)):
        advice = error.hint or (
            "Check base_url (the API root ending in /v1) and that Dify's API is up."
        )
        return error.with_context(hint=f"{advice} ({tried}.)", last_status=None)
    return error.with_context(last_status=None)


def queued_error(ref: BatchRef, options: WaitOptions) -> IndexingTimeoutError:
    """The wait's deadline passed before any of its polls left the client."""
    return IndexingTimeoutError(
        f"Timed out after {options.timeout:g}s waiting for batch {ref.batch} of dataset "
        f"{ref.dataset_id} before any of its status polls could be sent: they queued behind "
        "this client's own limits (requests_per_minute, max_concurrency, or the pause after "
        "a rate limit), not Dify. Give the wait a longer timeout or the client a larger "
        "budget, or wait for fewer batches at once.",
        last_status=None,
    )


def timeout_error(
    ref: BatchRef,
    options: WaitOptions,
    status: BatchIndexingStatus | None,
    error: DifyError | None,
    *,
    summarizing: Sequence[str] = (),
) -> IndexingTimeoutError:
    doing = "indexing it"
    if summarizing:
        doing = f"making the summaries of {len(summarizing)} of its document(s)"
    return IndexingTimeoutError(
        f"Timed out after {options.timeout:g}s waiting for batch {ref.batch} of dataset "
        f"{ref.dataset_id}. Dify is still {doing} server-side and may finish later: wait "
        f"again, or check with `dify-ingest status {ref.dataset_id} {ref.batch}`. "
        + _last_seen(status, error),
        last_status=status,
    )


def stalled_error(
    ref: BatchRef,
    options: WaitOptions,
    status: BatchIndexingStatus | None,
    error: DifyError | None,
    *,
    summarizing: Sequence[str] = (),
) -> IndexingStalledError:
    if summarizing:
        return IndexingStalledError(
            f"Batch {ref.batch} of dataset {ref.dataset_id} is indexed, but the summaries of "
            f"{len(summarizing)} document(s) ({shown_ids(summarizing)}) showed no change "
            f"for {options.stall_timeout:g}s (summary_index_status still set). Dify's worker "
            "or its summary model may be failing; the chunks themselves can be retrieved. "
            + _last_seen(status, error),
            last_status=status,
        )
    paused = (
        " Documents are paused: resume them from Dify's console."
        if (status is not None and status.is_paused)
        else ""
    )
    return IndexingStalledError(
        f"Nothing changed for {options.stall_timeout:g}s in batch {ref.batch} of dataset "
        f"{ref.dataset_id} (status, segment counts and timestamps all unchanged). Dify's "
        "indexing worker may be down or not consuming the dataset queue; Dify itself never "
        f"times a document out.{paused} " + _last_seen(status, error),
        last_status=status,
    )


def empty_error(status: BatchIndexingStatus) -> IndexingEmptyError:
    return IndexingEmptyError(
        f"{status.summary()} Dify accepted and indexed them, but retrieval will return "
        "nothing from them: check the source text (empty or whitespace only?), its file "
        "type or the knowledge pipeline. Pass on_empty='warn' or 'accept' to treat this "
        "as done.",
        last_status=status,
    )


def failed_error(status: BatchIndexingStatus) -> IndexingFailedError:
    if status.is_failed:
        # Dify's error text is server-provided: bounded and redacted like any other.
        details = failures(status)
        message = (
            f"Indexing failed for batch {status.batch} of dataset {status.dataset_id}: "
            f"{len(status.failed_documents)} of {len(status.documents)} document(s) in error — "
            f"{details.rstrip('.')}. Fix the source (or its process rule) and upload it again."
        )
    else:
        ids = ", ".join(doc.id for doc in status.paused_documents)
        message = (
            f"Batch {status.batch} of dataset {status.dataset_id} is paused (document {ids}); "
            "a paused document resumes only from Dify's console. Stopped waiting because "
            "on_paused='fail'."
        )
        return IndexingPausedError(message, last_status=status)
    return IndexingFailedError(message, last_status=status)
