"""`IndexingEvent`: what a wait observed, for callbacks, progress bars and framework events."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from dify_ingest_tools._base.redaction import scrub
from dify_ingest_tools._base.shown import shown_error
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.models.status import (
    NOTHING_TO_FIND,
    BatchIndexingStatus,
    DocumentIndexingStatus,
)

logger = logging.getLogger("dify_ingest_tools")

EventKind: TypeAlias = Literal[
    "progress",
    "document_completed",
    "document_failed",
    "batch_completed",
    "batch_failed",
    "stalled",
    "rate_limited",
    "retrying",
    "partial_results",
    "resubmitted",
    "summarizing",
]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class IndexingEvent(BaseModel):
    """One thing a wait observed about one batch.

    Kinds: ``progress`` (any observable change, and the first observation),
    ``document_completed`` / ``document_failed`` (a document reached that state),
    ``batch_completed`` / ``batch_failed`` (once per batch per wait), ``stalled`` (nothing
    changed for ``stall_timeout``), ``rate_limited`` (429 or Dify Cloud's 403 rate limit;
    polling cools down), ``retrying`` (a transient failure; polling goes on) and
    ``partial_results`` (a retriever's readiness gate stopped waiting for this batch and
    searched anyway: its results may miss the batch's documents), ``resubmitted`` (a wait
    with ``on_stall="resubmit"`` sent this client's stalled upload again by name; ``error``
    names the new batch) and ``summarizing`` (a wait with ``summaries=True``: every document
    is indexed, Dify is still making summaries of those ``error`` names; once per change). A
    ``batch_completed`` whose status ``is_empty`` reads "indexed, but produced no chunks —
    nothing will be found".

    Attributes:
        status: The latest batch snapshot (None when nothing was observed yet).
        document: The document concerned, for ``document_*`` events.
        error: The failure's text, for ``rate_limited`` / ``retrying`` / ``stalled`` /
            ``batch_failed``; Dify's error text for ``document_failed`` (key redacted, cut
            to 500 characters; ``document.error`` is what Dify sent); why the gate stopped
            waiting, for ``partial_results``.
        retry_in: Seconds until the next attempt, for ``rate_limited`` / ``retrying``.
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    kind: EventKind
    dataset_id: str
    batch: str
    status: BatchIndexingStatus | None = None
    document: DocumentIndexingStatus | None = None
    error: str | None = None
    error_type: str | None = None
    retry_in: float | None = None
    at: datetime = Field(default_factory=_now)

    def __str__(self) -> str:
        """One readable line (``on_event=print`` prints this): the kind, the batch and its
        dataset, the document, the progress, and a short error, with server text redacted,
        cut, and its control characters escaped."""
        parts = [f"{self.kind}: batch {self.batch} of dataset {self.dataset_id}"]
        if self.document is not None:
            parts.append(f"document {self.document.id} {self.document.indexing_status}")
        if self.status is not None:
            parts.append(_progress(self.status))
            if self.status.is_empty:
                parts.append(NOTHING_TO_FIND)
        if self.error:
            parts.append(f"error: {_short(self.error)}")
        if self.retry_in is not None:
            parts.append(f"next try in {self.retry_in:.1f}s")
        return _one_line(" — ".join(parts))

    def __repr__(self) -> str:
        # Not pydantic's: that prints every document of the snapshot (kilobytes of it).
        fields = [f"kind={self.kind!r}", f"dataset_id={self.dataset_id!r}", f"batch={self.batch!r}"]
        if self.document is not None:
            fields.append(f"document={_one_line(self.document.id)!r}")
        if self.status is not None:
            fields.append(f"documents={len(self.status.documents)}")
            fields.append(f"progress={self.status.progress:.2f}")
        if self.error:
            fields.append(f"error={_short(self.error, _REPR_ERROR_LIMIT)!r}")
        if self.retry_in is not None:
            fields.append(f"retry_in={self.retry_in:.2f}")
        return f"IndexingEvent({', '.join(fields)})"

    @property
    def snapshot(self) -> BatchIndexingStatus | None:
        """Alias of ``status``."""
        return self.status

    def describe(self) -> str:
        """One human-readable line."""
        where = f"batch {self.batch}"
        if self.kind in ("document_completed", "document_failed") and self.document:
            state = "completed" if self.kind == "document_completed" else "failed"
            text = f"{where}: document {self.document.id} {state}"
            shown = shown_error(self.document.error) if self.kind == "document_failed" else None
            return f"{text}: {shown}" if shown else text
        if self.kind == "summarizing":
            return f"{where}: indexed; {self.error}"
        if self.kind == "partial_results":
            state = f" ({self.status.summary()})" if self.status is not None else ""
            return f"{where}: searched before it was indexed: {self.error}{state}"
        if self.kind in ("rate_limited", "retrying"):
            wait = f"; next try in {self.retry_in:.1f}s" if self.retry_in is not None else ""
            return f"{where}: {self.kind.replace('_', ' ')} ({self.error}){wait}"
        if self.status is not None:
            return f"{self.kind}: {self.status.summary()}"
        return f"{where}: {self.kind}" + (f" ({self.error})" if self.error else "")

    @classmethod
    def for_error(
        cls,
        kind: EventKind,
        dataset_id: str,
        batch: str,
        error: BaseException,
        status: BatchIndexingStatus | None,
        retry_in: float | None = None,
    ) -> IndexingEvent:
        text = (
            str(error.message)
            if isinstance(error, DifyError) and hasattr(error, "message")
            else str(error)
        )
        return cls(
            kind=kind,
            dataset_id=dataset_id,
            batch=batch,
            status=status,
            error=text or type(error).__name__,
            error_type=type(error).__name__,
            retry_in=retry_in,
        )


# An event's line shows this much of an error (a full one is in ``event.error``).
_STR_ERROR_LIMIT = 160
_REPR_ERROR_LIMIT = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: str) -> str:
    """``text`` with control characters escaped: one line, no terminal escape sequences."""
    return _CONTROL.sub(lambda match: match[0].encode("unicode_escape").decode("ascii"), text)


def _short(text: str, limit: int = _STR_ERROR_LIMIT) -> str:
    """Server text for one line: credentials redacted, whitespace runs folded, cut."""
    folded = " ".join(scrub(text, limit * 4).split())
    return folded if len(folded) <= limit else f"{folded[: limit - 1]}…"


def _progress(status: BatchIndexingStatus) -> str:
    docs = len(status.documents)
    done = sum(doc.is_completed for doc in status.documents)
    return (
        f"{done}/{docs} documents completed, "
        f"{status.completed_segments}/{status.total_segments} segments ({status.progress:.0%})"
    )


def events_between(
    previous: BatchIndexingStatus | None, current: BatchIndexingStatus
) -> list[IndexingEvent]:
    """The events a new snapshot brings: ``progress``, then each newly finished document."""
    if previous is not None and previous.fingerprint() == current.fingerprint():
        return []
    before = {doc.id: doc for doc in previous.documents} if previous is not None else {}
    events = [
        IndexingEvent(
            kind="progress", dataset_id=current.dataset_id, batch=current.batch, status=current
        )
    ]
    for doc in current.documents:
        old = before.get(doc.id)
        if doc.is_completed and not (old and old.is_completed):
            kind: EventKind = "document_completed"
        elif doc.is_failed and not (old and old.is_failed):
            kind = "document_failed"
        else:
            continue
        events.append(
            IndexingEvent(
                kind=kind,
                dataset_id=current.dataset_id,
                batch=current.batch,
                status=current,
                document=doc,
                error=shown_error(doc.error) if kind == "document_failed" else None,
            )
        )
    return events


EventCallback: TypeAlias = Callable[[IndexingEvent], "Awaitable[object] | object"]
"""A sync or async callable taking an `IndexingEvent`."""


async def dispatch(callbacks: Iterable[EventCallback], event: IndexingEvent) -> None:
    """Deliver ``event`` to each callback; a callback that raises is logged, never fatal."""
    for callback in callbacks:
        try:
            result = callback(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception(
                "on_event callback %r raised while handling a %s event of batch %s; "
                "the wait goes on",
                callback,
                event.kind,
                event.batch,
            )
