"""Waiting for readiness: one batch, many batches, or a stream of changes.

Each wait subscribes to the monitor's poll loop for its batch; what each update means
(deadline, stall detection, the not-found grace, paused handling, failures) is decided by
`policy.decide`, and the driver here only does what it says.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Callable, Collection, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dify_ingest_tools._base.clock import Clock
from dify_ingest_tools.events import (
    EventCallback,
    IndexingEvent,
    dispatch,
)
from dify_ingest_tools.models.created import BatchLike, BatchRef, CreatedDocument, as_batch_ref
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.contact import Contact
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.policy import ContactReading, WaitState, decide, outcome_of
from dify_ingest_tools.readiness.summaries import wait_for_summaries
from dify_ingest_tools.readiness.updates import PollUpdate
from dify_ingest_tools.readiness.wait_options import WaitOptions

if TYPE_CHECKING:
    from dify_ingest_tools._http.telemetry import Telemetry, WaitSpan

_T = TypeVar("_T")

logger = logging.getLogger("dify_ingest_tools")


async def observe(
    monitor: IndexingMonitor,
    ref: BatchRef,
    options: WaitOptions,
    callbacks: Sequence[EventCallback] = (),
    *,
    clock: Clock | None = None,
    telemetry: Telemetry | None = None,
    documents: Collection[str] = (),
) -> AsyncGenerator[BatchIndexingStatus, None]:
    """Yield every observed change of a batch until it is done; raise as the options say.

    The last yielded status is the result of a wait. Ends after a ready batch (or a terminal
    one with ``raise_on_error=False``); raises `IndexingFailedError`,
    `IndexingTimeoutError`, `IndexingStalledError` or the fatal `DifyError`.

    With ``telemetry``, the wait is one span: current while the wait works (so its polls and
    callbacks nest under it), never while the caller holds a yielded status. ``documents``:
    the batch's document ids, when known (see `IndexingMonitor.subscribe`). Deadline, stall
    and grace are measured on ``clock``, by default the monitor's (its poll loop judges the
    same deadline).
    """
    span = telemetry.start_wait(ref.dataset_id, ref.batch) if telemetry is not None else None
    if telemetry is None or span is None:
        plain = _observe(monitor, ref, options, callbacks, clock=clock, documents=documents)
        async with contextlib.aclosing(plain):
            async for status in plain:
                yield status
        return
    recorded: list[EventCallback] = [*callbacks, functools.partial(telemetry.wait_event, span)]
    stream = _observe(monitor, ref, options, recorded, clock=clock, span=span, documents=documents)
    last: BatchIndexingStatus | None = None
    try:
        async with contextlib.aclosing(stream):
            while True:
                with telemetry.current(span):
                    try:
                        status = await stream.__anext__()
                    except StopAsyncIteration:
                        break
                last = status
                yield status
    except BaseException as error:
        telemetry.end_wait(span, outcome=outcome_of(error=error), error=error)
        raise
    telemetry.end_wait(span, outcome=outcome_of(last))


async def _observe(
    monitor: IndexingMonitor,
    ref: BatchRef,
    options: WaitOptions,
    callbacks: Sequence[EventCallback] = (),
    *,
    clock: Clock | None = None,
    span: WaitSpan | None = None,
    documents: Collection[str] = (),
) -> AsyncGenerator[BatchIndexingStatus, None]:
    """The wait's driver: take an update, ask `decide`, do what it says."""
    clock = clock if clock is not None else monitor.clock
    state = WaitState.start(ref, options, clock.monotonic())

    async def emit(event: IndexingEvent) -> None:
        await dispatch(callbacks, event)

    async with monitor.subscribe(
        ref.dataset_id,
        ref.batch,
        deadline=state.deadline,
        cadence=options.cadence(),
        documents=documents,
    ) as updates:
        tried = updates.contact
        update: PollUpdate | None = None
        while True:
            now = clock.monotonic()
            decision = decide(state, update, now, _reading(tried, now))
            state = decision.state
            for event in decision.events:
                await emit(event)
            if decision.report is not None:
                yield decision.report
            if decision.summaries and state.previous is not None:
                await wait_for_summaries(
                    monitor, state.previous, options, emit, clock=clock, deadline=state.deadline
                )
            if decision.ending is not None:
                await emit(decision.ending)
            if decision.warning is not None:
                logger.warning("%s", decision.warning)
            if decision.action == "raise" and decision.error is not None:
                raise decision.error from decision.cause
            if decision.action != "continue":
                return
            update = None
            if decision.wait is not None:
                update = await updates.next(decision.wait)
                if span is not None and update is not None and not update.listed:
                    span.poll()


def _reading(contact: Contact, now: float) -> ContactReading:
    """The contact evidence at ``now``, for `decide`."""
    return ContactReading(
        failures=contact.failures(),
        failing_for=contact.failing_for(now),
        silent=contact.unanswered(now),
        sent=contact.sent(),
        last_failure=contact.last_failure(),
    )


async def wait_for_indexing(
    monitor: IndexingMonitor,
    ref: BatchRef,
    options: WaitOptions,
    callbacks: Sequence[EventCallback] = (),
    *,
    telemetry: Telemetry | None = None,
    documents: Collection[str] = (),
) -> BatchIndexingStatus:
    """Wait until the batch is ready; see `AsyncDifyKnowledgeClient.wait_for_indexing`."""
    last: BatchIndexingStatus | None = None
    stream = observe(monitor, ref, options, callbacks, telemetry=telemetry, documents=documents)
    async with contextlib.aclosing(stream):
        async for status in stream:
            last = status
    if last is None:  # pragma: no cover - observe yields before it returns
        raise RuntimeError("the wait ended without observing the batch")
    return last


async def wait_for_batches(
    monitor: IndexingMonitor,
    batches: Iterable[BatchLike],
    options: WaitOptions,
    callbacks: Sequence[EventCallback] = (),
    *,
    telemetry: Telemetry | None = None,
    documents_of: Callable[[BatchRef], Collection[str]] | None = None,
) -> list[BatchIndexingStatus]:
    """Wait for many batches at once; results in input order; the first error cancels the rest.

    A `CreatedDocument` names its document; for other handles ``documents_of`` may know the
    batch's documents (see `IndexingMonitor.subscribe`).
    """
    known: list[tuple[BatchRef, Collection[str]]] = []
    for item in batches:  # every handle checked before any wait starts
        ref = as_batch_ref(item)
        if isinstance(item, CreatedDocument):
            known.append((ref, (item.document_id,)))
        else:
            known.append((ref, documents_of(ref) if documents_of is not None else ()))
    waits = [
        wait_for_indexing(monitor, ref, options, callbacks, telemetry=telemetry, documents=docs)
        for ref, docs in known
    ]
    if len(waits) == 1:  # one batch: no task of its own (a wait per CreatedDocument is common)
        return [await waits[0]]
    return await gather_first_error(waits)


async def gather_first_error(coros: Sequence[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Run the waits together, results in order; the first error cancels the rest, raised."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    if not tasks:
        return []
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            error = task.exception() if task in done else None
            if error is not None:
                raise error
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
