"""Waits scoped to documents rather than to whole batches.

An update answers with the document's *original* batch, which can hold other documents still
indexing (a console upload of several files, recording 05b). Waiting on that batch would wait
for them too, so these sources feed `waiting.observe` only the documents asked for:

* `ScopedSource` joins the monitor's shared poll loop of the batch and projects every
  snapshot onto the wanted documents (the usual cadence, single flight and budget apply);
* `DetailSource` polls each document's detail when its batch is unknown (a document this
  client neither created nor updated): ``display_status`` and ``indexing_status`` say the
  same as the batch would, minus the segment counters.

Both hand `waiting.observe` the queue interface of `IndexingMonitor.subscribe`, so deadline,
stall detection, events and failure rules are exactly those of every other wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from dify_ingest_tools._base.clock import SYSTEM_CLOCK, Clock
from dify_ingest_tools._http.retry import is_dify_answer, is_transient
from dify_ingest_tools.errors import DifyClientClosedError, DifyError, DifyNotFoundError
from dify_ingest_tools.models.status import (
    BatchIndexingStatus,
    DifyDocument,
    DocumentIndexingStatus,
    IndexingStatus,
)
from dify_ingest_tools.readiness.contact import AttemptClock, Contact, Reach
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.policy import Cadence
from dify_ingest_tools.readiness.updates import PollUpdate, Updates

if TYPE_CHECKING:
    from dify_ingest_tools._http.lifecycle import Lifecycle
    from dify_ingest_tools._http.retry import RetryPolicy

__all__ = ["UNKNOWN_BATCH", "DetailSource", "ScopedSource", "merge_statuses"]

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
    """A poll loop over document details, shaped like `IndexingMonitor.subscribe`.

    Args:
        fetch: ``fetch(document_id, deadline)``: one detail request, no retries.
        document_ids: The documents.
        retry_policy: Backoff for transient failures.
        lifecycle: The client's: closing it ends the wait at once, as the monitor ends its
            waits (the loop may be asleep for up to ``max_poll_interval``).
        clock: The client's `Clock` (deadlines, poll gaps, backoff).
    """

    def __init__(
        self,
        fetch: Fetch,
        document_ids: Sequence[str],
        retry_policy: RetryPolicy,
        lifecycle: Lifecycle,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self._fetch = fetch
        self._ids = list(document_ids)
        self._policy = retry_policy
        self._lifecycle = lifecycle
        self._rng = random.Random()

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        dataset_id: str,
        batch: str,
        *,
        deadline: float,
        cadence: Cadence,
        documents: Collection[str] = (),
    ) -> AsyncIterator[Updates]:
        """Poll the documents' details (``documents``: the monitor's hint, not needed here)."""
        self._lifecycle.check()
        # Its own loop and contact evidence (details are not the monitor's polls); a detail
        # request counts from the moment it is made, as before the monitor told them apart.
        attempts, reach = AttemptClock(), Reach()
        queue = Updates(Contact(attempts, reach, self.clock.monotonic()), self.clock)
        task = asyncio.ensure_future(
            self._run(queue, dataset_id, batch, deadline, cadence, attempts, reach)
        )

        def end() -> None:
            closed = DifyClientClosedError("the Dify client was closed during the wait")
            queue.put_nowait(PollUpdate(error=closed, final=True))
            task.cancel()

        try:
            with self._lifecycle.on_close(end):
                yield queue
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(
        self,
        queue: Updates,
        dataset_id: str,
        batch: str,
        deadline: float,
        cadence: Cadence,
        attempts: AttemptClock,
        reach: Reach,
    ) -> None:
        interval: float | None = None
        failures = 0
        last: BatchIndexingStatus | None = None
        now = self.clock.monotonic
        while True:
            attempts.sent(now())
            try:
                details = await asyncio.gather(*(self._fetch(i, deadline) for i in self._ids))
            except DifyError as error:
                if is_dify_answer(error):
                    reach.answered()
                elif is_transient(error):
                    reach.failed(now(), error)
                if is_transient(error) and now() < deadline:
                    delay = self._policy.delay(failures, error, self._rng)
                    failures += 1
                    queue.put_nowait(PollUpdate(error=error, retry_in=delay))
                    await self.clock.sleep(delay)
                    continue
                # A deleted document does not come back: no grace period here.
                queue.put_nowait(PollUpdate(error=error, final=True))
                return
            failures = 0
            reach.answered()
            status = BatchIndexingStatus(
                dataset_id=dataset_id,
                batch=batch,
                documents=tuple(detail_status(detail) for detail in details),
            )
            changed = last is None or last.fingerprint() != status.fingerprint()
            last = status
            queue.put_nowait(PollUpdate(status=status, final=status.is_terminal))
            if status.is_terminal:
                return
            interval = cadence.next_interval(interval, changed)
            await self.clock.sleep(cadence.jittered(interval, self._rng))


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
