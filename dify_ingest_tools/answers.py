"""Short, truthful answers an agent (LLM) can act on. Shared by every framework adapter.

A tool answer must say, in one paragraph: is the batch ready, how far along it is, and for
failures, which document failed and Dify's own error text. A wait that runs out of time is
an answer too ("still indexing"), not a crash.
"""

from __future__ import annotations

from .errors import (
    DifyAPIError,
    DifyAuthenticationError,
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyPermissionError,
    DifyRateLimitError,
    DifyResponseError,
    DifyServerError,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from .models import BatchIndexingStatus

__all__ = [
    "error_answer",
    "failure_answer",
    "stalled_answer",
    "status_answer",
    "timeout_answer",
]


def _progress(status: BatchIndexingStatus) -> str:
    docs = len(status.documents)
    done = sum(doc.is_completed for doc in status.documents)
    counts = ", ".join(f"{n} {name}" for name, n in sorted(status.status_counts().items()))
    return (
        f"{done} of {docs} document(s) completed ({counts}); "
        f"{status.completed_segments}/{status.total_segments} segments indexed"
    )


def _failures(status: BatchIndexingStatus) -> str:
    return " ".join(
        f"Document {doc.id} failed: {doc.error or 'Dify gave no error text'}."
        for doc in status.failed_documents
    )


def status_answer(status: BatchIndexingStatus) -> str:
    """A one-paragraph answer to "is batch X of dataset D ready?"."""
    head = f"Batch {status.batch} of dataset {status.dataset_id}"
    if not status.documents:
        return f"{head} reports no documents."
    if status.is_completed:
        return f"{head} is READY: {_progress(status)}. Its documents can be retrieved now."
    if status.is_failed:
        still = "" if status.is_terminal else " The other documents are still being indexed."
        return (
            f"{head} FAILED: {_progress(status)}. {_failures(status)}{still} Fix or replace the "
            "failed document(s) and upload again; retrieval will not find their content."
        )
    if status.is_paused:
        return (
            f"{head} is PAUSED: {_progress(status)}. A paused document resumes only from "
            "Dify's console; it will not finish on its own."
        )
    return (
        f"{head} is NOT READY yet, still indexing: {_progress(status)}. Check again or wait "
        "for it before retrieving; results retrieved now may be incomplete."
    )


def timeout_answer(error: IndexingTimeoutError, waited: float) -> str:
    """What a bounded wait says when time ran out (Dify keeps indexing server-side)."""
    status = error.last_status
    if status is None:
        return (
            f"Still not ready after {waited:g} s: Dify has not reported the batch yet. "
            "It may still be starting; wait again."
        )
    return (
        f"Still indexing after {waited:g} s: batch {status.batch} of dataset "
        f"{status.dataset_id} has {_progress(status)}. Dify keeps working server-side; "
        "wait again later before retrieving."
    )


def stalled_answer(error: IndexingStalledError) -> str:
    """What a wait says when nothing moved for the stall timeout."""
    status = error.last_status
    where = status_answer(status) if status is not None else "No status was observed."
    return (
        "Indexing appears STALLED: nothing changed for a long time, so Dify's indexing worker "
        f"may be down. {where}"
    )


def failure_answer(error: IndexingFailedError) -> str:
    """What a wait says when a document failed (or was paused with on_paused="fail")."""
    if error.last_status is not None:
        return status_answer(error.last_status)
    return str(error)


def _advice(error: DifyError, dataset_id: str | None, batch: str | None) -> str:
    if isinstance(error, DifyAuthenticationError):
        return (
            "Dify rejected the API key. Changing the tool arguments will not help: tell the "
            "user to check the Knowledge API key (DIFY_API_KEY)."
        )
    if isinstance(error, DifyRateLimitError):
        return "Dify is rate limiting requests: wait about a minute before calling this again."
    if isinstance(error, DifyPermissionError):
        return (
            f"The API key may not access dataset {dataset_id} (its API access may be disabled "
            "in Dify's console, or a plan limit was reached). Retrying will not help: tell the "
            "user."
        )
    if isinstance(error, DifyNotFoundError):
        if error.is_dataset_missing:
            return f"There is no dataset {dataset_id}: check dataset_id."
        if error.is_batch_missing:
            return (
                f"Dify does not know batch {batch} in dataset {dataset_id}. Pass the exact "
                "`batch` string the upload returned; a new batch can take a few seconds to "
                "appear, so check again shortly."
            )
        return "Dify's API was not found at the configured base URL: tell the user."
    if isinstance(error, DifyConnectionError | DifyServerError | DifyResponseError):
        return "Dify could not be reached or answered badly: try again in a little while."
    return "Try again in a little while; if it keeps failing, tell the user."


def error_answer(error: DifyError, *, dataset_id: str | None, batch: str | None) -> str:
    """What went wrong talking to Dify (its message, status and code) and what to do next."""
    if isinstance(error, DifyAPIError):
        hint = f" {error.hint}" if error.hint else ""
        head = (
            f"Dify error (HTTP {error.status}, code {error.code!r}): "
            f"{error.message.rstrip('.') or 'no message'}.{hint}"
        )
    elif isinstance(error, DifyConnectionError):
        head = f"Could not reach Dify: {error}."
    else:
        head = f"Dify error: {error}."
    return f"{head} {_advice(error, dataset_id, batch)}"
