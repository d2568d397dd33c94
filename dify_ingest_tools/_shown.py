"""Dify's per-document ``error`` text, made safe wherever it is shown.

The field is server-provided: a hostile server or a proxy can fill it with the API key (an
echoed ``Authorization`` header) or megabytes. The status models keep what was sent (no
per-field validators on the polling hot path); every surface that shows it — summaries,
exception messages, events, progress bars, tool answers, CLI output — goes through here:
credentials redacted by `errors.scrub`, then cut to `DOCUMENT_ERROR_LIMIT` characters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from .errors import scrub

if TYPE_CHECKING:
    from .events import IndexingEvent
    from .models import BatchIndexingStatus, DifyDocument, DocumentIndexingStatus

__all__ = [
    "DOCUMENT_ERROR_LIMIT",
    "FAILED_SHOWN",
    "NO_ERROR_TEXT",
    "error_text",
    "failures",
    "scrubbed_document",
    "scrubbed_event",
    "scrubbed_status",
    "shown_error",
]

#: Longest document error shown, in characters (Dify's own are a sentence or two).
DOCUMENT_ERROR_LIMIT = 500
#: A message names this many failed documents; ``failed_documents`` has them all.
FAILED_SHOWN = 20
NO_ERROR_TEXT = "Dify gave no error text"

_D = TypeVar("_D", "DocumentIndexingStatus", "DifyDocument")


def shown_error(text: str | None) -> str | None:
    """A document's ``error``, safe to show (None when there is none)."""
    return scrub(text, DOCUMENT_ERROR_LIMIT) if text else None


def error_text(text: str | None) -> str:
    """A document's ``error``, safe to show, or a sentence saying Dify gave none."""
    return shown_error(text) or NO_ERROR_TEXT


def failures(status: BatchIndexingStatus) -> str:
    """``document <id>: <error>; ...`` for the failed documents (the first `FAILED_SHOWN`)."""
    failed = status.failed_documents
    text = "; ".join(f"document {doc.id}: {error_text(doc.error)}" for doc in failed[:FAILED_SHOWN])
    if len(failed) > FAILED_SHOWN:
        text += f"; and {len(failed) - FAILED_SHOWN} more"
    return text


def scrubbed_document(document: _D) -> _D:
    """The document with its ``error`` safe to show (itself when it has none)."""
    if not document.error:
        return document
    return document.model_copy(update={"error": shown_error(document.error)})


def scrubbed_status(status: BatchIndexingStatus) -> BatchIndexingStatus:
    """The status with every document's ``error`` safe to show, for JSON output."""
    if not any(doc.error for doc in status.documents):
        return status
    documents = tuple(scrubbed_document(doc) for doc in status.documents)
    return status.model_copy(update={"documents": documents})


def scrubbed_event(event: IndexingEvent) -> IndexingEvent:
    """The event with the documents' errors in its snapshot safe to show."""
    update: dict[str, object] = {}
    if event.status is not None:
        update["status"] = scrubbed_status(event.status)
    if event.document is not None:
        update["document"] = scrubbed_document(event.document)
    return event.model_copy(update=update) if update else event
