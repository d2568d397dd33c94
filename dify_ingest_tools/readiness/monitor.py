"""`IndexingMonitor`: the one place a client's status polls come from.

Concurrent waiters on the same ``(dataset_id, batch)`` share one poll loop (single flight);
every loop shares the client's concurrency cap and request budget; the cadence starts fast,
backs off with jitter while nothing changes and tightens again after progress.

Many batches in one dataset (an ingestion run) are watched by a *sweep*: one
``GET /datasets/{id}/documents`` page shows the status of 100 documents, so the sweep spots
the documents that finished and wakes just their poll loops, which confirm with one
``indexing-status`` request each. Meanwhile each loop polls on its own only at its longest
interval, as a safety net. The list is a hint, never the verdict: readiness is always
decided on ``indexing-status``.

A sweep has to earn its requests. It reads one page per 8 batches it covers (or down to
where it last saw their documents), sends at most two list requests per safety-net poll
of those batches (and, under a request budget, at most a quarter of it), wakes a loop once
per state the list shows, and ends with the last wait on its dataset. It gives up, and
every loop goes back to its own cadence, when the list endpoint fails, when two rounds in a
row find none of its batches' documents (the list does not show them: a large dataset, or
a server that filters them), or when the list keeps announcing changes that
``indexing-status`` does not confirm.

The monitor depends on nothing but a `StatusSource` (a client builds one over its own
transport), so imports point one way: the client uses the monitor, never the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from dify_ingest_tools._base.clock import SYSTEM_CLOCK, Clock
from dify_ingest_tools._http.retry import RetryPolicy, is_dify_answer, is_transient
from dify_ingest_tools.errors import (
    DifyClientClosedError,
    DifyError,
    DifyNotFoundError,
    DifyTimeoutError,
)
from dify_ingest_tools.models.documents import DifyDocument, DocumentList
from dify_ingest_tools.models.status import BatchIndexingStatus, IndexingStatus
from dify_ingest_tools.readiness.contact import AttemptClock, Contact, Reach
from dify_ingest_tools.readiness.policy import Cadence

__all__ = ["IndexingMonitor", "PollUpdate", "StatusSource", "Updates"]

logger = logging.getLogger("dify_ingest_tools")

_Key = tuple[str, str]

# Sweep a dataset when at least this many of its batches are being waited on: below it,
# per-batch polling costs about the same and shows segment progress more often.
SWEEP_MIN_BATCHES = 8
# Dify serves at most 100 documents per page; newest first. Pages beyond this are not read
# (batches that old are left to their own safety-net polls).
SWEEP_PAGE_SIZE = 100
SWEEP_MAX_PAGES = 128
# Pages of one round read at once.
SWEEP_CONCURRENCY = 4
# Give up on a dataset after this many rounds in a row that found none of the documents.
SWEEP_BLIND_ROUNDS = 2
# ... or after this many rounds in a row whose list request failed (5xx, garbled answers).
SWEEP_FAILED_ROUNDS = 3
# ... or once the list's announcements proved wrong this many times more than right.
SWEEP_MISLEADING_WAKES = SWEEP_MIN_BATCHES
# A sweep sends at most this many list requests per safety-net poll of the batches it
# covers (each loop polls on its own at its longest interval meanwhile) ...
SWEEP_POLL_SHARE = 2.0
# ... and at most this share of a client's request budget.
SWEEP_BUDGET_SHARE = 0.25
# Within those, a round comes every this share of the fastest poll interval.
SWEEP_ROUND_SHARE = 0.8


class StatusSource(Protocol):
    """Where a monitor's polls go: the three calls it needs, and nothing else of a client."""

    def validate(self, dataset_id: str, batch: str) -> None:
        """Raise `ValueError` for a malformed dataset id or batch, before any request."""

    async def fetch_status(
        self,
        dataset_id: str,
        batch: str,
        *,
        deadline: float | None = None,
        retry: bool = True,
        on_send: Callable[[], None] | None = None,
    ) -> BatchIndexingStatus:
        """One ``indexing-status`` request; ``retry=False`` makes a single attempt;
        ``on_send()`` as each attempt leaves (after any wait for the client's budget)."""

    async def list_page(
        self,
        dataset_id: str,
        *,
        page: int,
        limit: int,
        deadline: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> DocumentList:
        """One page of the dataset's document list (newest first), in a single attempt;
        ``on_send()`` as it leaves."""


@dataclass(frozen=True)
class PollUpdate:
    """What a poll loop tells its subscribers: a snapshot, or a failed poll.

    Attributes:
        status: The new snapshot, when the poll succeeded.
        error: The failure, when it did not. Transient failures and ``Documents not found.``
            are followed by more polls; any other error ends the loop.
        retry_in: Seconds until the next poll after a failure.
        final: No more updates will follow.
        listed: Neither: before any ``indexing-status`` answer, the sweep's document list
            of the dataset answered (so Dify is there, with this key); the batch's status
            comes once the list shows its documents finished, or at the loop's longest
            interval.
    """

    status: BatchIndexingStatus | None = None
    error: DifyError | None = None
    retry_in: float | None = None
    final: bool = False
    listed: bool = False


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Parking:
    """At most one coroutine parked on a future, released early or after a delay (on
    ``clock``)."""

    __slots__ = ("_clock", "_waiter")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._waiter: asyncio.Future[None] | None = None

    def _unpark(self) -> None:
        if self._waiter is not None:
            _release(self._waiter)

    async def _park(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = self._clock.call_later(delay, lambda: _release(waiter))
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


class Updates(_Parking):
    """One subscriber's updates, in order: the poll loop puts them, the subscriber's wait
    takes them.

    Lighter than an `asyncio.Queue` (a wait holds one for its whole life, and tens of
    thousands of waits may be open at once): a list and at most one pending future, no task
    or timer-wrapping ``asyncio.wait`` per take.
    """

    __slots__ = ("_items", "contact")

    def __init__(self, contact: Contact | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(clock)
        self._items: list[PollUpdate] = []
        #: What the batch's requests went through: the wait's contact budget counts it.
        self.contact = contact or Contact(AttemptClock(), Reach(), clock.monotonic())

    def put_nowait(self, update: PollUpdate) -> None:
        self._items.append(update)
        self._unpark()

    def empty(self) -> bool:
        return not self._items

    def get_nowait(self) -> PollUpdate:
        """The oldest update (`IndexError` if there is none)."""
        return self._items.pop(0)

    async def next(self, timeout: float) -> PollUpdate | None:
        """The oldest update, waiting up to ``timeout`` seconds for one (else None).

        A cancellation loses nothing: an update that arrived meanwhile stays for the next
        take.
        """
        if not self._items:
            await self._park(timeout)
        return self._items.pop(0) if self._items else None


class _Wake(_Parking):
    """A poll loop's wake-up flag: set by a sweep or a stop, slept on between polls."""

    __slots__ = ("_flag",)

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self._flag = False

    def set(self) -> None:
        self._flag = True
        self._unpark()

    def clear(self) -> None:
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or until set."""
        if not self._flag:
            await self._park(delay)


@dataclass(eq=False, slots=True)
class _Subscription:
    queue: Updates
    deadline: float
    cadence: Cadence


@dataclass(eq=False)
class _Sweep:
    """One dataset's sweep: its task and how useful it has been."""

    dataset_id: str
    task: asyncio.Task[None] | None = None
    blind_rounds: int = 0
    depth: int = 0  # the deepest page that showed one of its documents last round
    true_wakes: int = 0
    false_wakes: int = 0
    failed_rounds: int = 0  # rounds in a row whose list request failed

    def confirmed(self, changed: bool) -> None:
        """Record whether the poll a wake caused saw the change the list announced."""
        if changed:
            self.true_wakes += 1
        else:
            self.false_wakes += 1

    @property
    def misleading(self) -> bool:
        return self.false_wakes - self.true_wakes >= SWEEP_MISLEADING_WAKES


@dataclass(eq=False)
class _Poller:
    key: _Key
    dataset_id: str
    batch: str
    wake: _Wake
    subscribers: set[_Subscription] = field(default_factory=set)
    last: BatchIndexingStatus | None = None
    last_at: float = 0.0  # when `last` arrived, on the monitor's clock
    task: asyncio.Task[None] | None = None
    # document id -> the state the list showed when the sweep last woke this loop for it
    hints: dict[str, IndexingStatus | str | None] = field(default_factory=dict)
    woken_by: _Sweep | None = None
    # The batch's documents, as its waits know them (from the create call): with these the
    # sweep can watch the batch before its first indexing-status answer.
    known: frozenset[str] = frozenset()
    attempts: AttemptClock = field(default_factory=AttemptClock)
    _cadence: Cadence | None = None

    def documents(self) -> frozenset[str] | tuple[str, ...]:
        """The document ids a sweep looks for: the last answer's, else the known ones."""
        if self.last is not None:
            return tuple(doc.id for doc in self.last.documents)
        return self.known

    def join(self, sub: _Subscription) -> None:
        self.subscribers.add(sub)
        self._cadence = None

    def leave(self, sub: _Subscription) -> None:
        self.subscribers.discard(sub)
        self._cadence = None

    def cadence(self) -> Cadence:
        """The most demanding cadence among the subscribers (kept until they change)."""
        if self._cadence is None:
            cadences = [sub.cadence for sub in self.subscribers]
            self._cadence = (
                Cadence(
                    initial=min(c.initial for c in cadences),
                    maximum=min(c.maximum for c in cadences),
                )
                if cadences
                else Cadence()
            )
        return self._cadence

    def deadline(self) -> float:
        return max(sub.deadline for sub in self.subscribers)

    def publish(self, update: PollUpdate) -> None:
        if update.status is not None:
            self.last = update.status
        for sub in self.subscribers:
            sub.queue.put_nowait(update)


class IndexingMonitor:
    """Shares status polls between everything a client waits on.

    Every client owns one (``client.monitor``); you rarely need to touch it. Waits subscribe
    to a per-batch poll loop; the loop runs while it has subscribers and stops at a terminal
    state, on a fatal error, or when the last subscriber leaves (cancelling a wait cancels
    its share immediately).

    Args:
        source: Where the polls go (a client's is ``client.monitor``'s).
        max_concurrency: At most this many poll-loop requests in flight at once (a dataset
            sweep reads up to `SWEEP_CONCURRENCY` pages at once besides).
        retry_policy: The backoff after a failed poll (the client's own).
        requests_per_minute: The client's request budget, if any: sweeps keep to a share.
        clock: The `Clock` poll gaps, sweeps, snapshots' ages and contact times are measured
            on (the client's).
    """

    def __init__(
        self,
        source: StatusSource,
        *,
        max_concurrency: int = 16,
        retry_policy: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not callable(getattr(source, "fetch_status", None)):
            raise TypeError(
                "IndexingMonitor needs a StatusSource (validate, fetch_status, list_page); "
                "every client already has its monitor: use client.monitor"
            )
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._source = source
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._retry_policy = retry_policy or RetryPolicy()
        self._requests_per_minute = requests_per_minute
        self._pollers: dict[_Key, _Poller] = {}
        # key -> the future joiners await; None while nobody has joined
        self._inflight: dict[_Key, asyncio.Future[BatchIndexingStatus] | None] = {}
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._rng = random.Random()
        self._closed = False
        self._polled: dict[str, int] = {}  # dataset -> how many of its batches have a loop
        self._sweepers: dict[str, asyncio.Task[None]] = {}
        # dataset -> why it is not swept; "unhelpful" ones are tried again on the next run
        self._no_sweep: dict[str, str] = {}
        # Datasets whose document list a sweep has read while their waits go on: Dify is
        # there, with this key (a wait's contact, before its batch's own first answer).
        self._answered: set[str] = set()
        # Failed attempts since Dify last answered: the waits' evidence of a wrong base_url.
        self._reach = Reach()

    @property
    def clock(self) -> Clock:
        """The `Clock` its waits' deadlines are instants of."""
        return self._clock

    @property
    def active_batches(self) -> int:
        """How many batches are being polled right now."""
        return sum(1 for poller in self._pollers.values() if poller.subscribers)

    # -- one-off status ---------------------------------------------------------------------

    async def fetch(
        self, dataset_id: str, batch: str, *, deadline: float | None = None
    ) -> BatchIndexingStatus:
        """One status request; concurrent identical requests share one HTTP call.

        The first caller makes the request in its own task (no extra task on the hot path);
        callers arriving meanwhile await its outcome. If that first caller is cancelled, the
        others are not: they make the request themselves.
        """
        self._source.validate(dataset_id, batch)  # before anything else
        if self._closed:
            raise DifyClientClosedError("the Dify client is closed; create a new one")
        key = (dataset_id.lower(), batch)  # `_key`, inlined
        inflight = self._inflight
        while key in inflight:
            shared = inflight[key]
            if shared is None:
                # The first caller to join makes the future the request's owner settles: a
                # request nobody joins (the usual case) costs no future at all.
                shared = inflight[key] = asyncio.get_running_loop().create_future()
            try:
                return await asyncio.shield(shared)
            except asyncio.CancelledError:
                if not shared.cancelled():
                    raise  # this caller was cancelled, not the shared request
        # Only this owner removes the entry, so while it runs the entry is its own.
        inflight[key] = None
        try:
            # A caller's own request: not held to the poll loops' concurrency cap.
            result = await self._source.fetch_status(dataset_id, batch, deadline=deadline)
        except asyncio.CancelledError:
            shared = inflight.get(key)
            if shared is not None:
                shared.cancel()
            raise
        except BaseException as error:
            shared = inflight.get(key)
            if shared is not None and not shared.done():  # closing may have settled it
                shared.set_exception(error)
                shared.exception()  # mark retrieved: nobody else may be waiting
            raise
        else:
            shared = inflight.get(key)
            if shared is not None and not shared.done():
                shared.set_result(result)
            return result
        finally:
            inflight.pop(key, None)

    async def status(
        self, dataset_id: str, batch: str, *, max_age: float | None = None
    ) -> BatchIndexingStatus:
        """The batch's status, reusing a running poll loop's snapshot if it is fresh enough.

        Args:
            max_age: Accept a snapshot observed at most this many seconds ago (by default,
                the loop's own current poll gap: it is as fresh as the loop keeps it).
        """
        poller = self._pollers.get(_key(dataset_id, batch))
        if poller is not None and poller.last is not None and poller.subscribers:
            age = self._clock.monotonic() - poller.last_at
            limit = max_age if max_age is not None else poller.cadence().maximum
            if age <= limit:
                return poller.last
        return await self.fetch(dataset_id, batch)

    async def listed(
        self, dataset_id: str, document_ids: Collection[str], *, deadline: float
    ) -> dict[str, DifyDocument]:
        """The dataset's document list items of these documents (the summary phase of a wait
        with ``summaries=True``: ``need_summary`` / ``summary_index_status`` are on the list
        only). Reads pages newest first until every id was seen, one attempt each, under the
        client's concurrency cap; ids the pages did not show are left out."""
        wanted = set(document_ids)
        found: dict[str, DifyDocument] = {}
        page = 1
        while wanted and page <= SWEEP_MAX_PAGES:
            async with self._semaphore:
                listing = await self._source.list_page(
                    dataset_id, page=page, limit=SWEEP_PAGE_SIZE, deadline=deadline
                )
            self._reach.answered()
            for item in listing.data:
                if item.id in wanted:
                    wanted.discard(item.id)
                    found[item.id] = item
            if not (listing.has_more and listing.data):
                break
            page += 1
        return found

    async def _request(self, poller: _Poller) -> BatchIndexingStatus:
        """One poll of the loop, a single attempt; its wait for a turn (the concurrency
        cap, the client's budget) is told apart from its time out (`AttemptClock`)."""
        attempts = poller.attempts
        now = self._clock.monotonic
        attempts.queued(now())

        def sent() -> None:
            attempts.sent(now())

        try:
            async with self._semaphore:
                return await self._source.fetch_status(
                    poller.dataset_id,
                    poller.batch,
                    deadline=poller.deadline(),
                    retry=False,
                    on_send=sent,
                )
        finally:
            attempts.settled(now())

    # -- subscriptions ----------------------------------------------------------------------

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
        """Join (or start) the poll loop of a batch; yields the queue its updates arrive on.

        ``documents``: the ids of the batch's documents, if the wait knows them (a
        `CreatedDocument` does). When enough batches of the dataset are swept, the loop then
        sends no first ``indexing-status`` request: the sweep's list watches the documents,
        and the loop asks for the batch's status once the list shows them finished (or at
        its longest interval). Readiness is still decided on that answer.
        """
        if self._closed:
            raise DifyClientClosedError("the Dify client is closed; create a new one")
        self._source.validate(dataset_id, batch)
        key = _key(dataset_id, batch)
        poller = self._pollers.get(key)
        if poller is None or poller.task is None or poller.task.done():
            if poller is None:
                self._polled[key[0]] = self._polled.get(key[0], 0) + 1
            poller = _Poller(key=key, dataset_id=dataset_id, batch=batch, wake=_Wake(self._clock))
            self._pollers[key] = poller
        if documents:
            poller.known = poller.known.union(documents)
        contact = Contact(poller.attempts, self._reach, self._clock.monotonic())
        sub = _Subscription(queue=Updates(contact, self._clock), deadline=deadline, cadence=cadence)
        poller.join(sub)
        if poller.task is None:
            poller.task = asyncio.ensure_future(self._run(poller))
        if poller.last is not None:
            sub.queue.put_nowait(PollUpdate(status=poller.last))
        elif poller.known and key[0] in self._answered:
            sub.queue.put_nowait(PollUpdate(listed=True))
        if documents:
            self._sweeping(dataset_id)  # start the sweep now: it, not a first poll, looks
        try:
            yield sub.queue
        finally:
            poller.leave(sub)
            if not poller.subscribers:
                await self._stop(poller)

    async def _stop(self, poller: _Poller) -> None:
        dataset_key = poller.key[0]
        last_of_dataset = False
        if self._pollers.get(poller.key) is poller:
            del self._pollers[poller.key]
            left = self._polled[dataset_key] - 1
            if left:
                self._polled[dataset_key] = left
            else:
                del self._polled[dataset_key]
                self._answered.discard(dataset_key)
                last_of_dataset = True
        task = poller.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if last_of_dataset:
            # The sweep ends with the last wait on its dataset, its request in flight too.
            if self._no_sweep.get(dataset_key) == "unhelpful":
                del self._no_sweep[dataset_key]
            sweeper = self._sweepers.get(dataset_key)
            if sweeper is not None and not sweeper.done():
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper

    async def aclose(self) -> None:
        """End every wait with `DifyClientClosedError` and stop every poll loop.

        The client calls this when it closes. Each wait gets its own error (carrying its own
        ``last_status``) as its next update, so it ends at once, not at its deadline.
        """
        self._closed = True
        for poller in list(self._pollers.values()):
            for sub in poller.subscribers:
                closed = DifyClientClosedError("the Dify client was closed during the wait")
                sub.queue.put_nowait(PollUpdate(error=closed, final=True))
        for poller in list(self._pollers.values()):
            await self._stop(poller)
        sweepers = list(self._sweepers.values())
        for sweeper in sweepers:
            sweeper.cancel()
        await asyncio.gather(*sweepers, return_exceptions=True)
        for future in list(self._inflight.values()):
            if future is not None and not future.done():
                future.set_exception(DifyClientClosedError("the Dify client was closed"))
                future.exception()  # retrieved: nobody else may be waiting on it

    # -- the poll loop ----------------------------------------------------------------------

    async def _run(self, poller: _Poller) -> None:
        interval: float | None = None
        failures = 0
        try:
            if poller.known and self._sweeping(poller.dataset_id):
                # The sweep's list watches the known documents: no first look of our own.
                cadence = poller.cadence()
                await self._pause(poller, cadence.jittered(cadence.maximum, self._rng))
            while poller.subscribers:
                poller.wake.clear()
                sends = poller.attempts.sends
                try:
                    status = await self._request(poller)
                except DifyError as error:
                    if poller.attempts.sends == sends and isinstance(error, DifyTimeoutError):
                        # It never left: no budget slot or time before the latest subscriber's
                        # deadline. Not Dify's failure, and no later poll would leave either;
                        # the waits end at their deadlines on their own.
                        return
                    if is_dify_answer(error):
                        self._reach.answered()
                    elif poller.attempts.sends > sends and is_transient(error):
                        self._reach.failed(self._clock.monotonic(), error)  # sent, no answer
                    if is_transient(error):
                        delay = self._retry_policy.delay(failures, error, self._rng)
                        failures += 1
                    elif isinstance(error, DifyNotFoundError) and error.resource == "documents":
                        # Possibly not visible yet: subscribers apply their own grace period.
                        delay = poller.cadence().initial
                    else:
                        poller.publish(PollUpdate(error=error, final=True))
                        return
                    poller.publish(PollUpdate(error=error, retry_in=delay))
                    await self._pause(poller, delay)
                    continue
                failures = 0
                self._reach.answered()
                changed = poller.last is None or poller.last.fingerprint() != status.fingerprint()
                if poller.woken_by is not None:
                    # A first answer is news whatever it says: did it show what the list did?
                    poller.woken_by.confirmed(
                        changed if poller.last is not None else _agrees(status, poller.hints)
                    )
                    poller.woken_by = None
                final = status.is_terminal
                poller.last_at = self._clock.monotonic()
                poller.publish(PollUpdate(status=status, final=final))
                if final:
                    return
                cadence = poller.cadence()
                interval = cadence.next_interval(interval, changed)
                if self._sweeping(poller.dataset_id):
                    # The sweep wakes this loop when its documents look finished.
                    await self._pause(poller, cadence.jittered(cadence.maximum, self._rng))
                else:
                    await self._pause(poller, cadence.jittered(interval, self._rng))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug, not Dify: never leave subscribers hanging
            logger.exception("poll loop for batch %s crashed", poller.batch)
            wrapped = DifyError(f"internal error while polling: {error!r}")
            poller.publish(PollUpdate(error=wrapped, final=True))

    async def _pause(self, poller: _Poller, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if woken (by a sweep or a stop)."""
        if not poller.subscribers:
            # Stopped: a cancellation that raced aiohttp's own timeout can be lost there, so
            # do not back off for a loop nobody waits on.
            return
        await poller.wake.sleep(delay)

    # -- dataset sweeps ---------------------------------------------------------------------

    def _swept(self, dataset_key: str) -> list[_Poller]:
        """The loops a sweep of this dataset covers: unfinished, still wanted, and either
        observed or with their documents known."""
        return [
            poller
            for poller in self._pollers.values()
            if poller.key[0] == dataset_key
            and poller.subscribers
            and (poller.known if poller.last is None else not poller.last.is_terminal)
        ]

    def _sweeping(self, dataset_id: str) -> bool:
        """Whether a sweep covers this dataset (starting one when enough batches wait)."""
        dataset_key = dataset_id.lower()
        if dataset_key in self._no_sweep:
            return False
        task = self._sweepers.get(dataset_key)
        if task is not None and not task.done():
            return True
        if self._polled.get(dataset_key, 0) < SWEEP_MIN_BATCHES:
            return False
        if len(self._swept(dataset_key)) < SWEEP_MIN_BATCHES:
            return False
        sweep = _Sweep(dataset_id=dataset_id)
        self._sweepers[dataset_key] = asyncio.ensure_future(self._sweep(sweep))
        return True

    async def _sweep(self, sweep: _Sweep) -> None:
        dataset_id = sweep.dataset_id
        dataset_key = dataset_id.lower()
        clock = self._clock
        try:
            while True:
                pollers = self._swept(dataset_key)
                if len(pollers) < SWEEP_MIN_BATCHES:
                    return
                started = clock.monotonic()
                pages = 1
                try:
                    found, pages = await self._sweep_once(sweep, pollers)
                except DifyError as error:
                    if not is_transient(error):
                        raise
                    # A blip: the loops' own safety-net polls cover this round.
                    logger.debug("dataset sweep of %s failed once: %s", dataset_id, error)
                    sweep.failed_rounds += 1
                    if dataset_key not in self._answered:
                        # Dify may not be there at all: the loops that have not looked yet
                        # look now, so a misconfiguration fails as fast as without a sweep.
                        for poller in pollers:
                            if poller.last is None:
                                poller.wake.set()
                else:
                    sweep.failed_rounds = 0
                    sweep.blind_rounds = 0 if found else sweep.blind_rounds + 1
                why = self._unhelpful(sweep)
                if why is not None:
                    logger.info(
                        "dataset sweep of %s stopped: %s; polling each batch on its own",
                        dataset_id,
                        why,
                    )
                    self._no_sweep[dataset_key] = "unhelpful"
                    return
                # A fixed period (not a gap after the sweep) keeps detection lag bounded; but
                # a round that took longer than that (a busy server, thousands of pages) is
                # followed by a gap as long, so lists never take more than half its time.
                period = self._sweep_period(pollers, pages)
                took = clock.monotonic() - started
                await clock.sleep(max(started + period - clock.monotonic(), took))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # DifyError, or a list answer we cannot use
            logger.info(
                "dataset sweep of %s stopped (%s); polling each batch on its own", dataset_id, error
            )
            self._no_sweep[dataset_key] = "failed"
        finally:
            if self._sweepers.get(dataset_key) is asyncio.current_task():
                del self._sweepers[dataset_key]
            for poller in self._swept(dataset_key):
                poller.wake.set()  # back to their own cadence

    @staticmethod
    def _unhelpful(sweep: _Sweep) -> str | None:
        if sweep.failed_rounds >= SWEEP_FAILED_ROUNDS:
            return f"its list request failed {sweep.failed_rounds} rounds in a row"
        if sweep.blind_rounds >= SWEEP_BLIND_ROUNDS:
            return (
                f"{sweep.blind_rounds} rounds found none of its batches' documents in the "
                "document list"
            )
        if sweep.misleading:
            return (
                f"the document list announced {sweep.false_wakes} changes that indexing-status "
                f"did not show (and {sweep.true_wakes} that it did)"
            )
        return None

    def _sweep_period(self, pollers: list[_Poller], pages: int) -> float:
        """Seconds between sweep rounds: a share of the fastest cadence, unless that costs
        too much.

        A round every `SWEEP_ROUND_SHARE` of the fastest poll interval: what the list shows
        finished is confirmed within about one interval of finishing, list request and
        confirmation included, as a loop polling on its own at that interval would see it.
        The sweep may send `SWEEP_POLL_SHARE` list requests per safety-net poll of its
        batches (each at its longest interval), and under a budget at most
        `SWEEP_BUDGET_SHARE` of it.
        """
        cadences = [poller.cadence() for poller in pollers]
        fastest = min(cadence.initial for cadence in cadences)
        # requests per second
        rate = SWEEP_POLL_SHARE * sum(1.0 / cadence.maximum for cadence in cadences)
        if self._requests_per_minute is not None:
            rate = min(rate, SWEEP_BUDGET_SHARE * self._requests_per_minute / 60.0)
        return max(SWEEP_ROUND_SHARE * fastest, pages / rate)

    async def _sweep_once(self, sweep: _Sweep, pollers: list[_Poller]) -> tuple[int, int]:
        """One round: read the pages, wake the loops whose documents look finished.

        Returns how many of the covered documents the pages showed, and how many pages
        were read.
        """
        dataset_id = sweep.dataset_id
        wanted = {document: poller for poller in pollers for document in poller.documents()}
        deadline = max(poller.deadline() for poller in pollers)
        # Read one page per SWEEP_MIN_BATCHES batches covered, or one page past where its
        # documents were last seen (they are still there: the list is newest first).
        max_pages = min(SWEEP_MAX_PAGES, max(1, len(pollers) // SWEEP_MIN_BATCHES, sweep.depth + 1))
        found = 0
        depth = 0

        # Its own cap, apart from the polls': a round's pages never queue behind the polls
        # its own wakes cause (thousands when thousands of batches finish together).
        reading = asyncio.Semaphore(SWEEP_CONCURRENCY)

        def looked() -> None:
            # The list looks for every covered batch: their waits' contact clocks start
            # (a loop that leaves its first look to the sweep sends nothing of its own).
            now = self._clock.monotonic()
            for poller in pollers:
                poller.attempts.looked(now)

        async def page(number: int) -> tuple[int, DocumentList]:
            async with reading:
                return number, await self._source.list_page(
                    dataset_id,
                    page=number,
                    limit=SWEEP_PAGE_SIZE,
                    deadline=deadline,
                    on_send=looked if number == 1 else None,
                )

        def look(number: int, listing: DocumentList) -> None:
            nonlocal found, depth
            for item in listing.data:
                poller = wanted.pop(item.id, None)
                if poller is None:
                    continue
                found += 1
                depth = max(depth, number)
                shown = _shown(item)
                if _looks_finished(item.id, shown, poller.last) and (
                    poller.hints.get(item.id) != shown  # once per state the list shows
                ):
                    poller.hints[item.id] = shown
                    poller.woken_by = sweep
                    poller.wake.set()

        _, first = await page(1)
        self._reach.answered()
        dataset_key = dataset_id.lower()
        if dataset_key not in self._answered:
            # Dify answered for the dataset (base URL and key are right): the waits that have
            # not looked themselves hear so (their contact budget is spent); later ones hear
            # it as they subscribe.
            self._answered.add(dataset_key)
            for poller in self._swept(dataset_key):
                if poller.last is None:
                    poller.publish(PollUpdate(listed=True))
        look(1, first)
        pages = 1
        if wanted and first.has_more and first.data:
            # Page 1 says how many there are: read the rest at once (newest first, so the
            # documents being waited on are usually on the first pages), each looked at as
            # it arrives and then dropped.
            pages = max(1, min(max_pages, -(-first.total // SWEEP_PAGE_SIZE)))
            reads = [asyncio.ensure_future(page(number)) for number in range(2, pages + 1)]
            try:
                for arrival in asyncio.as_completed(reads):
                    look(*await arrival)
            finally:
                for read in reads:
                    read.cancel()
                await asyncio.gather(*reads, return_exceptions=True)
        sweep.depth = depth
        return found, pages


def _shown(item: DifyDocument) -> IndexingStatus | str | None:
    """The state a list item shows (Dify's list marks pauses in ``display_status`` only)."""
    return IndexingStatus.paused if item.display_status == "paused" else item.indexing_status


_NEWS = (IndexingStatus.completed, IndexingStatus.error, IndexingStatus.paused)


def _looks_finished(
    document_id: str, shown: IndexingStatus | str | None, last: BatchIndexingStatus | None
) -> bool:
    """The list shows a state worth confirming: finished, failed or paused, and new to us."""
    if shown not in _NEWS:
        return False
    if last is None:  # never asked yet: any of those is news
        return True
    try:
        known = last.document(document_id).indexing_status
    except KeyError:
        return False
    return known != shown


def _agrees(status: BatchIndexingStatus, hints: dict[str, IndexingStatus | str | None]) -> bool:
    """Whether an answer shows a document in the state the list announced for it."""
    return any(doc.id in hints and doc.indexing_status == hints[doc.id] for doc in status.documents)


def _key(dataset_id: str, batch: str) -> _Key:
    return (dataset_id.lower(), batch)
