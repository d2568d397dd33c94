"""LlamaIndex instrumentation events for what a Dify wait observes.

Every `IndexingEvent` of a wait run by these adapters (the `DifyIndexingWaiter`, the
``wait_for_indexing`` tool, the retriever's gate) is dispatched as one of the classes below
through ``get_dispatcher("dify_ingest_tools.llama_index.events")``, which propagates to the
root dispatcher. Register a handler to see them::

    import llama_index.core.instrumentation as instrument
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    class Progress(BaseEventHandler):
        def handle(self, event, **kwargs):
            if isinstance(event, DifyIndexingEvent):
                print(event.summary)

    get_dispatcher().add_event_handler(Progress())

Each event carries the ``span_id`` and ``tags`` of the call that started the wait (e.g. the
``IngestionPipeline.run`` span), whichever thread the wait polls from.
"""

from __future__ import annotations

import llama_index.core.instrumentation as instrument
from llama_index.core.instrumentation.events import BaseEvent
from pydantic import Field

from dify_ingest_tools._base.shown import scrubbed_status, shown_error
from dify_ingest_tools.events import EventKind, IndexingEvent
from dify_ingest_tools.models.status import BatchIndexingStatus, Verdict

__all__ = [
    "DifyBatchIndexingEvent",
    "DifyDocumentIndexingEvent",
    "DifyIndexingEvent",
    "DifyIndexingProgressEvent",
    "DifyIndexingRetryEvent",
    "DifyIndexingStalledEvent",
    "DifyPartialResultsEvent",
    "emit",
    "to_llama_event",
]

# llama_index.core.instrumentation re-exports get_dispatcher without `__all__`, which mypy's
# strict mode reads as private; it is LlamaIndex's documented entry point.
dispatcher = instrument.get_dispatcher(__name__)  # type: ignore[attr-defined]


class DifyIndexingEvent(BaseEvent):
    """Something a wait observed about one Dify batch (the base of every Dify event).

    Attributes:
        kind: The `IndexingEvent` kind: ``progress``, ``document_completed``,
            ``document_failed``, ``batch_completed``, ``batch_failed``, ``stalled``,
            ``rate_limited``, ``retrying`` or ``partial_results``.
        dataset_id: The knowledge base.
        batch: The creation batch.
        summary: One human-readable line (`IndexingEvent.describe`).
        verdict: ``ready``, ``failed``, ``paused`` or ``working`` (None before any status).
        completed_segments: Segments indexed so far, over every document of the batch.
        total_segments: Segments to index.
        status_counts: Documents per indexing status, e.g. ``{"indexing": 1}``.
        document_id: The document concerned, for document events.
        error: Dify's error text (failures), or the transient error (retries, stalls).
        retry_in: Seconds until the next poll, for retry events.
        status: The batch snapshot itself.
    """

    kind: EventKind
    dataset_id: str
    batch: str
    summary: str
    verdict: Verdict | None = None
    completed_segments: int = 0
    total_segments: int = 0
    status_counts: dict[str, int] = Field(default_factory=dict)
    document_id: str | None = None
    error: str | None = None
    retry_in: float | None = None
    status: BatchIndexingStatus | None = None

    @classmethod
    def class_name(cls) -> str:
        return cls.__name__


class DifyIndexingProgressEvent(DifyIndexingEvent):
    """A batch changed (stage, segment counts), or was observed for the first time."""


class DifyDocumentIndexingEvent(DifyIndexingEvent):
    """A document of the batch reached ``completed`` or ``error`` (``document_*`` kinds)."""


class DifyBatchIndexingEvent(DifyIndexingEvent):
    """The wait on a batch ended: ``batch_completed`` or ``batch_failed``."""


class DifyIndexingRetryEvent(DifyIndexingEvent):
    """A poll failed transiently (``retrying``) or was rate limited; polling goes on."""


class DifyIndexingStalledEvent(DifyIndexingEvent):
    """Nothing changed for the stall timeout; the wait raises `IndexingStalledError` next."""


class DifyPartialResultsEvent(DifyIndexingEvent):
    """`DifyRetriever`'s gate stopped waiting for this batch and searched anyway
    (``partial_results``): the results may miss its documents; ``error`` says why."""


_CLASSES: dict[str, type[DifyIndexingEvent]] = {
    "progress": DifyIndexingProgressEvent,
    "document_completed": DifyDocumentIndexingEvent,
    "document_failed": DifyDocumentIndexingEvent,
    "batch_completed": DifyBatchIndexingEvent,
    "batch_failed": DifyBatchIndexingEvent,
    "rate_limited": DifyIndexingRetryEvent,
    "retrying": DifyIndexingRetryEvent,
    "stalled": DifyIndexingStalledEvent,
    "partial_results": DifyPartialResultsEvent,
}


def to_llama_event(event: IndexingEvent) -> DifyIndexingEvent:
    """The LlamaIndex event for an `IndexingEvent` (built in the context it is dispatched in)."""
    status = event.status
    error = event.error
    if error is None and event.document is not None and event.kind == "document_failed":
        error = shown_error(event.document.error)
    return _CLASSES.get(event.kind, DifyIndexingEvent)(
        kind=event.kind,
        dataset_id=event.dataset_id,
        batch=event.batch,
        summary=event.describe(),
        verdict=status.verdict if status is not None else None,
        completed_segments=status.completed_segments if status is not None else 0,
        total_segments=status.total_segments if status is not None else 0,
        status_counts=status.status_counts() if status is not None else {},
        document_id=event.document.id if event.document is not None else None,
        error=error,
        retry_in=event.retry_in,
        status=scrubbed_status(status) if status is not None else None,
    )


def emit(event: IndexingEvent) -> None:
    """Dispatch ``event`` to every LlamaIndex event handler (handler errors are swallowed by
    LlamaIndex's dispatcher, so a broken handler never breaks a wait)."""
    dispatcher.event(to_llama_event(event))
