"""Waiting for readiness: one batch, many batches, or a stream of changes.

Each wait subscribes to the monitor's poll loop for its batch and applies its own rules on
what arrives: deadline, stall detection, the not-found grace, paused handling, failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Callable, Collection, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from dify_ingest_tools._base.clock import Clock
from dify_ingest_tools._base.inputs import check_number, check_optional_number
from dify_ingest_tools._base.shown import ID_LIMIT, failures, shown
from dify_ingest_tools._http.retry import is_dify_answer, is_rate_limit, is_transient
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
from dify_ingest_tools.events import (
    EventCallback,
    EventKind,
    IndexingEvent,
    dispatch,
    events_between,
)
from dify_ingest_tools.models.created import BatchLike, BatchRef, CreatedDocument, as_batch_ref
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.heal import OnStall
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.policy import (
    Cadence,
    ContactBudget,
    OnEmpty,
    OnPaused,
    outcome_of,
    step_for,
    tolerate_not_found,
)

if TYPE_CHECKING:
    from dify_ingest_tools._http.telemetry import Telemetry, WaitSpan

__all__ = [
    "WaitKwargs",
    "WaitOptions",
    "gather_first_error",
    "observe",
    "wait_for_batches",
    "wait_for_indexing",
]

_T = TypeVar("_T")

logger = logging.getLogger("dify_ingest_tools")


class WaitKwargs(TypedDict, total=False):
    """The keyword options every wait method takes (see `WaitOptions` for the defaults)."""

    timeout: float
    poll_interval: float
    max_poll_interval: float
    stall_timeout: float | None
    not_found_grace: float
    contact_timeout: float
    on_paused: OnPaused
    raise_on_error: bool
    on_empty: OnEmpty
    summaries: bool
    on_event: EventCallback | None
    progress: bool
    on_stall: OnStall
    max_resubmits: int


@dataclass(frozen=True)
class WaitOptions:
    """How a wait behaves. Defaults are chosen for Dify's observed timings.

    Attributes:
        timeout: Seconds the whole wait may take, retries and sleeps included (600: a large
            document takes minutes; a small one about a second).
        poll_interval: First gap between polls, and the gap after any change (1 s).
        max_poll_interval: Longest gap while nothing changes (10 s).
        stall_timeout: Raise `IndexingStalledError` when nothing observable changed for this
            long (None: only the deadline applies).
        not_found_grace: Seconds ``Documents not found.`` is tolerated after the wait starts
            (10 s: a batch can be invisible for a moment right after creation).
        contact_timeout: Until a poll gets a status or one of Dify's JSON errors, the wait
            gives up once 3 requests of the client failed over 2 s (connection errors, HTML
            pages, proxy errors) or its polls went this many seconds unanswered (10 s), with
            the error and a hint on what to check: a wrong ``base_url`` is not slow indexing.
            Time a poll waits behind the client's own request budget, concurrency cap or
            cool-down does not count. Once Dify has answered, transient failures are retried
            up to ``timeout``.
        on_paused: ``"wait"`` (a paused document may be resumed from Dify's console; it counts
            toward the stall timeout) or ``"fail"`` (raise `IndexingFailedError`).
        raise_on_error: Raise `IndexingFailedError` as soon as a document is in ``error``;
            with False, wait until every document is terminal and return that status.
        on_empty: What a batch Dify reports ``completed`` with a document of 0 segments
            (empty or whitespace-only text; recordings 02c, 02d) does to the wait: it is
            indexed, but nothing will be found. ``"raise"`` (default) raises
            `IndexingEmptyError`; ``"warn"`` logs a warning and returns the status;
            ``"accept"`` returns it (``status.is_empty`` still says so).
        summaries: Also wait, once every document is ``completed``, until Dify has made their
            summaries (datasets with summary indexing: no document of the batch has
            ``need_summary`` with ``summary_index_status`` still set, e.g. ``"SUMMARIZING"``),
            read from the dataset's document list, with ``summarizing`` events meanwhile.
            The deadline and ``stall_timeout`` cover this phase too.
    """

    timeout: float = 600.0
    poll_interval: float = 1.0
    max_poll_interval: float = 10.0
    stall_timeout: float | None = None
    not_found_grace: float = 10.0
    contact_timeout: float = 10.0
    on_paused: OnPaused = "wait"
    raise_on_error: bool = True
    on_empty: OnEmpty = "raise"
    summaries: bool = False

    def __post_init__(self) -> None:
        check_number(self.timeout, "timeout", minimum=0, exclusive_minimum=True)
        check_optional_number(
            self.stall_timeout, "stall_timeout", minimum=0, exclusive_minimum=True
        )
        check_number(self.not_found_grace, "not_found_grace", minimum=0)
        if self.on_paused not in ("wait", "fail"):
            raise ValueError("on_paused must be 'wait' or 'fail'")
        if not isinstance(self.raise_on_error, bool):
            raise TypeError(
                f"raise_on_error must be True or False, got {self.raise_on_error!r:.40}"
            )
        if not isinstance(self.on_empty, str) or self.on_empty not in ("raise", "warn", "accept"):
            raise ValueError(
                f"on_empty must be 'raise', 'warn' or 'accept', got {self.on_empty!r:.40}"
            )
        if not isinstance(self.summaries, bool):
            raise TypeError(f"summaries must be True or False, got {self.summaries!r:.40}")
        self.cadence()  # validates the intervals
        self.contact()

    def cadence(self) -> Cadence:
        return Cadence(initial=self.poll_interval, maximum=self.max_poll_interval)

    def contact(self) -> ContactBudget:
        return ContactBudget(seconds=self.contact_timeout)

    @classmethod
    def split(cls, options: WaitKwargs) -> tuple[WaitOptions, EventCallback | None, bool]:
        """``(WaitOptions, on_event, progress)`` from a wait method's keyword options."""
        on_event = options.get("on_event")
        progress = bool(options.get("progress", False))
        if options.get("on_stall", "raise") != "raise":
            raise ValueError(
                "on_stall='resubmit' heals wait_for_indexing and wait_for_batches (and what is "
                "built on them); this wait takes on_stall='raise' only"
            )
        skipped = ("on_event", "progress", "on_stall", "max_resubmits")
        rest = {k: v for k, v in options.items() if k not in skipped}
        unknown = set(rest) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unexpected wait option(s): {', '.join(sorted(unknown))}")
        return cls(**rest), on_event, progress  # type: ignore[arg-type]


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
    dataset_id, batch = ref.dataset_id, ref.batch
    monotonic = (clock if clock is not None else monitor.clock).monotonic
    started = monotonic()
    deadline = started + options.timeout
    last_change = started
    previous: BatchIndexingStatus | None = None
    last_error: DifyError | None = None
    # Until Dify answers once, failures are more likely a wrong base_url than slow indexing.
    # Only Dify's failures count: never time queued behind the client's own limits (_contact).
    contact = options.contact()
    reached_dify = False

    async def emit(event: IndexingEvent) -> None:
        await dispatch(callbacks, event)

    async with monitor.subscribe(
        dataset_id, batch, deadline=deadline, cadence=options.cadence(), documents=documents
    ) as updates:
        tried = updates.contact

        def unreachable(now: float) -> bool:
            return contact.exhausted(
                tried.failures(), failing_for=tried.failing_for(now), silent=tried.unanswered(now)
            )

        while True:
            now = monotonic()
            if not reached_dify and (now >= deadline or unreachable(now)):
                if not (tried.sent() or tried.failures()):
                    # The deadline, with every poll of the wait still queued behind the
                    # client's own limits and nothing failing: not Dify's doing.
                    raise _queued(ref, options)
                failure = last_error or tried.last_failure()
                raise _unreachable(ref, failure, tried.failures(), tried.elapsed(now)) from failure
            wait = deadline - now
            if not reached_dify:
                # Wake when the contact budget may run out (checked above, on the next turn).
                left = contact.time_left(
                    tried.failures(),
                    failing_for=tried.failing_for(now),
                    silent=tried.unanswered(now),
                )
                wait = min(wait, max(0.001, left))
            if options.stall_timeout is not None:
                wait = min(wait, last_change + options.stall_timeout - now)
            if wait <= 0:
                if now >= deadline:
                    # The cause: why the last poll failed (Dify down, rate limited), if it did.
                    raise _timeout(ref, options, previous, last_error) from last_error
                stalled = _stalled(ref, options, previous, last_error)
                await emit(IndexingEvent.for_error("stalled", dataset_id, batch, stalled, previous))
                raise stalled
            update = await updates.next(wait)
            if update is None:
                continue
            if update.listed:  # Dify's document list showed the batch: it answers
                reached_dify = True
                continue
            if span is not None:
                span.poll()
            if update.error is not None:
                error = update.error
                if is_dify_answer(error):
                    reached_dify = True
                elif not reached_dify and is_transient(error) and unreachable(monotonic()):
                    raise _unreachable(
                        ref, error, tried.failures(), tried.elapsed(monotonic())
                    ) from error
                if not update.final and (
                    is_transient(error)
                    or tolerate_not_found(
                        error, elapsed=monotonic() - started, grace=options.not_found_grace
                    )
                ):
                    if last_error is None or monotonic() < deadline:
                        # A poll cut short by the wait's own deadline says less than the
                        # failure before it (refused, rate limited): keep that one.
                        last_error = error
                    kind: EventKind = "rate_limited" if is_rate_limit(error) else "retrying"
                    await emit(
                        IndexingEvent.for_error(
                            kind, dataset_id, batch, error, previous, retry_in=update.retry_in
                        )
                    )
                    continue
                # The poll loop hands this one error to every wait on the batch: each raises
                # its own copy, with its own last status (and hint).
                own: DifyError
                if isinstance(error, DifyAPIError) and not update.final:
                    # Documents not found. past the grace period.
                    own = error.with_context(
                        last_status=previous,
                        hint=(
                            f"The batch is still not visible {options.not_found_grace:g}s after "
                            "the wait started: check the dataset id and batch, or whether the "
                            "documents were deleted."
                        ),
                    )
                else:
                    own = error.with_context(last_status=previous)
                raise own from error
            status = update.status
            if status is None:  # pragma: no cover - the monitor always sends one or the other
                continue
            last_error = None
            reached_dify = True
            events = events_between(previous, status)
            previous = status
            if events:
                last_change = monotonic()
                for event in events:
                    await emit(event)
                yield status
            step = step_for(
                status, raise_on_error=options.raise_on_error, on_paused=options.on_paused
            )
            if step == "continue":
                continue
            # Empty documents make no summaries; one that will raise is not worth waiting on.
            raising_empty = status.is_empty and options.on_empty == "raise"
            if status.is_completed and options.summaries and not raising_empty:
                await _summary_phase(
                    monitor, status, options, emit, clock=clock or monitor.clock, deadline=deadline
                )
            done_kind = "batch_completed" if status.is_completed else "batch_failed"
            await emit(
                IndexingEvent(kind=done_kind, dataset_id=dataset_id, batch=batch, status=status)
            )
            if step == "fail":
                raise _failed(status)
            if status.is_empty:
                if options.on_empty == "raise":
                    raise _empty(status)
                if options.on_empty == "warn":
                    logger.warning("%s", status.summary())
            return


async def _summary_phase(
    monitor: IndexingMonitor,
    status: BatchIndexingStatus,
    options: WaitOptions,
    emit: Callable[[IndexingEvent], Coroutine[Any, Any, None]],
    *,
    clock: Clock,
    deadline: float,
) -> None:
    """Wait until no document of a completed batch is still being summarized.

    Reads the dataset's document list (``need_summary`` and ``summary_index_status`` are not
    on ``indexing-status``), at the wait's cadence; emits ``summarizing`` whenever the set of
    documents still summarizing changes; raises the wait's timeout or stall as in `_observe`.
    """
    ref = BatchRef(dataset_id=status.dataset_id, batch=status.batch)
    ids = [doc.id for doc in status.documents]
    cadence = options.cadence()
    interval: float | None = None
    pending: tuple[str, ...] | None = None
    last_change = clock.monotonic()
    last_error: DifyError | None = None
    while True:
        try:
            listed = await monitor.listed(status.dataset_id, ids, deadline=deadline)
        except DifyError as error:
            if not is_transient(error):
                raise error.with_context(last_status=status) from error
            last_error = error
            await emit(
                IndexingEvent.for_error("retrying", ref.dataset_id, ref.batch, error, status)
            )
        else:
            last_error = None
            now_pending = tuple(sorted(i for i in ids if i in listed and listed[i].is_summarizing))
            changed = now_pending != pending
            if changed:
                pending = now_pending
                last_change = clock.monotonic()
                if pending:
                    await emit(_summarizing(status, pending))
            if not pending:
                return
            interval = cadence.next_interval(interval, changed)
        now = clock.monotonic()
        if now >= deadline:
            raise _timeout(ref, options, status, last_error, summarizing=pending or ())
        if options.stall_timeout is not None and now - last_change >= options.stall_timeout:
            stalled = _stalled(ref, options, status, last_error, summarizing=pending or ())
            await emit(
                IndexingEvent.for_error("stalled", ref.dataset_id, ref.batch, stalled, status)
            )
            raise stalled
        gap = cadence.jittered(interval if interval is not None else cadence.initial)
        if options.stall_timeout is not None:
            gap = min(gap, last_change + options.stall_timeout - now)
        await clock.sleep(max(0.0, min(gap, deadline - now)))


def _ids(ids: Sequence[str], limit: int = 5) -> str:
    """Server-provided document ids for a message: the first few, safe to show."""
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(shown(i, ID_LIMIT) for i in ids[:limit]) + more


def _summarizing(status: BatchIndexingStatus, pending: tuple[str, ...]) -> IndexingEvent:
    return IndexingEvent(
        kind="summarizing",
        dataset_id=status.dataset_id,
        batch=status.batch,
        status=status,
        error=f"{len(pending)} document(s) still summarizing: {_ids(pending)}",
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


# -- messages -------------------------------------------------------------------------------


def _last_seen(status: BatchIndexingStatus | None, error: DifyError | None) -> str:
    seen = f"Last seen: {status.summary()}" if status else "No status was observed yet."
    if error is not None:
        seen += f" Last poll failed: {error}"
    return seen


def _unreachable(
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


def _queued(ref: BatchRef, options: WaitOptions) -> IndexingTimeoutError:
    """The wait's deadline passed before any of its polls left the client."""
    return IndexingTimeoutError(
        f"Timed out after {options.timeout:g}s waiting for batch {ref.batch} of dataset "
        f"{ref.dataset_id} before any of its status polls could be sent: they queued behind "
        "this client's own limits (requests_per_minute, max_concurrency, or the pause after "
        "a rate limit), not Dify. Give the wait a longer timeout or the client a larger "
        "budget, or wait for fewer batches at once.",
        last_status=None,
    )


def _timeout(
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


def _stalled(
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
            f"{len(summarizing)} document(s) ({_ids(summarizing)}) showed no change "
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


def _empty(status: BatchIndexingStatus) -> IndexingEmptyError:
    return IndexingEmptyError(
        f"{status.summary()} Dify accepted and indexed them, but retrieval will return "
        "nothing from them: check the source text (empty or whitespace only?), its file "
        "type or the knowledge pipeline. Pass on_empty='warn' or 'accept' to treat this "
        "as done.",
        last_status=status,
    )


def _failed(status: BatchIndexingStatus) -> IndexingFailedError:
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
