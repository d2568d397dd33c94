"""Waits scoped to documents rather than to whole batches.

An update answers with the document's *original* batch, which can hold other documents still
indexing (a console upload of several files, recording 05b). Waiting on that batch would wait
for them too, so these sources feed `waiting.observe` only the documents asked for:

* `ScopedSource` joins the monitor's shared poll loop of the batch and projects every
  snapshot onto the wanted documents (the usual cadence, single flight and budget apply);
* `DetailSource` has the monitor poll each document's detail when its batch is unknown (a
  document this client neither created nor updated): ``display_status`` and
  ``indexing_status`` say the same as the batch would, minus the segment counters.

Both hand `waiting.observe` the queue interface of `IndexingMonitor.subscribe`, so deadline,
stall detection, events and failure rules are exactly those of every other wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from dify_ingest_tools.errors import DifyNotFoundError
from dify_ingest_tools.models.documents import DifyDocument
from dify_ingest_tools.models.status import (
    BatchIndexingStatus,
    DocumentIndexingStatus,
    IndexingStatus,
)
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.policy import Cadence
from dify_ingest_tools.readiness.updates import PollUpdate, Updates

#: The ``batch`` shown for documents whose batch this client does not know.
UNKNOWN_BATCH = "(unknown batch)"


class _ProjectedUpdates:
    """The taking side of `Updates`, with every update passed through ``project``."""

    def __init__(self, inner: Updates, project: Callable[[PollUpdate], PollUpdate]) -> None:
        self._inner = inner
        self._project = project
        self.contact = inner.contact

    async def next(self, timeout: float) -> PollUpdate | None:
        update = await self._inner.next(timeout)
        return self._project(update) if update is not None else None


def _missing_error(dataset_id: str, batch: str, missing: Sequence[str]) -> DifyNotFoundError:
    ids = ", ".join(missing)
    return DifyNotFoundError(
        f"Document {ids} is not in batch {batch} of dataset {dataset_id}: it was deleted, "
        "or uploaded again under the same name (which moves it to a new batch).",
        resource="documents",
        status=404,
        code="not_found",
    )


def project(
    status: BatchIndexingStatus, document_ids: Sequence[str]
) -> tuple[BatchIndexingStatus, list[str]]:
    """``status`` reduced to ``document_ids`` (in that order), and the ids it lacks."""
    by_id = {doc.id.lower(): doc for doc in status.documents}
    kept = [by_id[key] for key in (i.lower() for i in document_ids) if key in by_id]
    missing = [i for i in document_ids if i.lower() not in by_id]
    scoped = BatchIndexingStatus(
        dataset_id=status.dataset_id,
        batch=status.batch,
        documents=tuple(kept),
        observed_at=status.observed_at,
    )
    return scoped, missing


class ScopedSource:
    """`IndexingMonitor.subscribe`, narrowed to some documents of the batch."""

    def __init__(self, monitor: IndexingMonitor, document_ids: Sequence[str]) -> None:
        self._monitor = monitor
        self._ids = list(document_ids)
        self.clock = monitor.clock

    def _project(self, update: PollUpdate) -> PollUpdate:
        if update.status is None:
            return update
        scoped, missing = project(update.status, self._ids)
        if missing:
            error = _missing_error(scoped.dataset_id, scoped.batch, missing)
            return PollUpdate(error=error, retry_in=None, final=update.final)
        # Final when the wanted documents are done, whatever the others in the batch do.
        return PollUpdate(status=scoped, final=update.final or scoped.is_terminal)

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        dataset_id: str,
        batch: str,
        *,
        deadline: float,
        cadence: Cadence,
        documents: Collection[str] = (),
    ) -> AsyncIterator[_ProjectedUpdates]:
        async with self._monitor.subscribe(
            dataset_id, batch, deadline=deadline, cadence=cadence, documents=documents
        ) as queue:
            yield _ProjectedUpdates(queue, self._project)


def detail_status(document: DifyDocument) -> DocumentIndexingStatus:
    """What indexing-status would say of a document, from its detail.

    The detail reports the stage a paused document stopped in (``display_status`` says
    ``paused``, recording 16); its ``segment_count`` stands in for the counters.
    """
    status: IndexingStatus | str | None = document.indexing_status
    if document.display_status == "paused":
        status = IndexingStatus.paused
    segments = document.segment_count or 0
    done = status == IndexingStatus.completed
    return DocumentIndexingStatus(
        id=document.id,
        indexing_status=status if status is not None else "unknown",
        completed_at=document.completed_at,
        error=document.error,
        completed_segments=segments if done else 0,
        total_segments=segments,
    )


Fetch = Callable[[str, float], Coroutine[Any, Any, DifyDocument]]


class DetailSource:
    """The documents' details, polled by the monitor (`IndexingMonitor.watch`), shaped like
    `IndexingMonitor.subscribe`.

    The loop is the monitor's: its cadence, backoff (the client's retry policy), concurrency
    cap, contact evidence and clock, and closing the client ends the wait at once. Waits on
    the same documents share it.

    Args:
        monitor: The client's monitor.
        fetch: ``fetch(document_id, deadline)``: one detail request, no retries.
        document_ids: The documents.
    """

    def __init__(self, monitor: IndexingMonitor, fetch: Fetch, document_ids: Sequence[str]) -> None:
        self._monitor = monitor
        self.clock = monitor.clock
        self._fetch = fetch
        self._ids = list(document_ids)

    def subscribe(
        self,
        dataset_id: str,
        batch: str,
        *,
        deadline: float,
        cadence: Cadence,
        documents: Collection[str] = (),
    ) -> AbstractAsyncContextManager[Updates]:
        """Watch the documents' details (``documents``: the monitor's hint, not needed here)."""

        async def poll(deadline: float, on_send: Callable[[], None]) -> BatchIndexingStatus:
            # A detail request counts from the moment it is made (one attempt for them all).
            on_send()
            details = await asyncio.gather(*(self._fetch(i, deadline) for i in self._ids))
            return BatchIndexingStatus(
                dataset_id=dataset_id,
                batch=batch,
                documents=tuple(detail_status(detail) for detail in details),
            )

        # Not a batch id (digits only): never shares a loop with one.
        name = "details of " + ",".join(i.lower() for i in self._ids)
        return self._monitor.watch(dataset_id, name, poll, deadline=deadline, cadence=cadence)


def merge_statuses(
    dataset_id: str, statuses: Sequence[BatchIndexingStatus], document_ids: Sequence[str]
) -> BatchIndexingStatus:
    """One status holding ``document_ids`` (in that order) from per-batch results.

    ``batch`` is the batch they share, or the batches joined by commas.
    """
    by_id = {doc.id.lower(): doc for status in statuses for doc in status.documents}
    batches = list(dict.fromkeys(s.batch for s in statuses if s.batch != UNKNOWN_BATCH))
    observed = max((s.observed_at for s in statuses), default=None)
    extra: dict[str, Any] = {"observed_at": observed} if observed is not None else {}
    return BatchIndexingStatus(
        dataset_id=dataset_id,
        batch=",".join(batches) or UNKNOWN_BATCH,
        documents=tuple(by_id[i.lower()] for i in document_ids if i.lower() in by_id),
        **extra,
    )
