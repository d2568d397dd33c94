"""`IndexingMonitor`: the one place a client's status polls come from.

Concurrent waiters on the same ``(dataset_id, batch)`` share one poll loop (single flight);
every loop shares the client's concurrency cap and request budget; the cadence starts fast,
backs off with jitter while nothing changes and tightens again after progress.

Many batches of one dataset are watched by a dataset sweep besides (`sweeps`): the
document list spots the documents that finished and wakes just their loops.

The monitor depends on nothing but a `StatusSource` (a client builds one over its own
transport), so imports point one way: the client uses the monitor, never the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Collection
from contextlib import AbstractAsyncContextManager

from dify_ingest_tools._base.clock import SYSTEM_CLOCK, Clock
from dify_ingest_tools._http.retry import RetryPolicy, is_dify_answer, is_transient
from dify_ingest_tools.errors import (
    DifyClientClosedError,
    DifyError,
    DifyNotFoundError,
    DifyTimeoutError,
)
from dify_ingest_tools.models.documents import DifyDocument
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.contact import Contact, Reach
from dify_ingest_tools.readiness.policy import Cadence
from dify_ingest_tools.readiness.pollers import (
    Poller,
    PollFetch,
    PollKey,
    Subscription,
    poll_key,
)
from dify_ingest_tools.readiness.sweeps import (
    SWEEP_MAX_PAGES,
    SWEEP_PAGE_SIZE,
    DatasetSweeps,
    agrees,
)
from dify_ingest_tools.readiness.updates import PollUpdate, StatusSource, Updates, Wake

logger = logging.getLogger("dify_ingest_tools")


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
        self._pollers: dict[PollKey, Poller] = {}
        # key -> the future joiners await; None while nobody has joined
        self._inflight: dict[PollKey, asyncio.Future[BatchIndexingStatus] | None] = {}
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._rng = random.Random()
        self._closed = False
        self._polled: dict[str, int] = {}  # dataset -> how many of its batches have a loop
        # Failed attempts since Dify last answered: the waits' evidence of a wrong base_url.
        self._reach = Reach()
        self._sweeps = DatasetSweeps(
            source, self._pollers, self._polled, self._reach, self._clock, requests_per_minute
        )

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
        poller = self._pollers.get(poll_key(dataset_id, batch))
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

    async def _request(self, poller: Poller) -> BatchIndexingStatus:
        """One poll of the loop, a single attempt; its wait for a turn (the concurrency
        cap, the client's budget) is told apart from its time out (`AttemptClock`)."""
        attempts = poller.attempts
        now = self._clock.monotonic
        attempts.queued(now())

        def sent() -> None:
            attempts.sent(now())

        try:
            async with self._semaphore:
                if poller.fetch is not None:
                    return await poller.fetch(poller.deadline(), sent)
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

    def subscribe(
        self,
        dataset_id: str,
        batch: str,
        *,
        deadline: float,
        cadence: Cadence,
        documents: Collection[str] = (),
    ) -> AbstractAsyncContextManager[Updates]:
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
        return self._join(dataset_id, batch, deadline, cadence, documents, None)

    def watch(
        self, dataset_id: str, name: str, fetch: PollFetch, *, deadline: float, cadence: Cadence
    ) -> AbstractAsyncContextManager[Updates]:
        """`subscribe`, to a poll loop of the caller's own request.

        ``fetch(deadline, on_send)`` makes one attempt and returns what it shows as a
        status (document waits poll the documents' details this way when their batch is
        unknown); ``on_send()`` as it leaves. The loop keeps every rule of the batch loops:
        the concurrency cap, cadence and backoff, the contact evidence, the end of every
        wait when the client closes. Waits of a dataset watching the same ``name`` share
        one loop; sweeps never cover it.
        """
        if self._closed:
            raise DifyClientClosedError("the Dify client is closed; create a new one")
        return self._join(dataset_id, name, deadline, cadence, (), fetch)

    @contextlib.asynccontextmanager
    async def _join(
        self,
        dataset_id: str,
        batch: str,
        deadline: float,
        cadence: Cadence,
        documents: Collection[str],
        fetch: PollFetch | None,
    ) -> AsyncIterator[Updates]:
        key = poll_key(dataset_id, batch)
        poller = self._pollers.get(key)
        if poller is None or poller.task is None or poller.task.done():
            if poller is None:
                self._polled[key[0]] = self._polled.get(key[0], 0) + 1
            poller = Poller(
                key=key, dataset_id=dataset_id, batch=batch, wake=Wake(self._clock), fetch=fetch
            )
            self._pollers[key] = poller
        if documents:
            poller.known = poller.known.union(documents)
        contact = Contact(poller.attempts, self._reach, self._clock.monotonic())
        sub = Subscription(queue=Updates(contact, self._clock), deadline=deadline, cadence=cadence)
        poller.join(sub)
        if poller.task is None:
            poller.task = asyncio.ensure_future(self._run(poller))
        if poller.last is not None:
            sub.queue.put_nowait(PollUpdate(status=poller.last))
        elif poller.known and key[0] in self._sweeps.answered:
            sub.queue.put_nowait(PollUpdate(listed=True))
        if documents:
            self._sweeps.sweeping(dataset_id)  # start the sweep now: it, not a first poll, looks
        try:
            yield sub.queue
        finally:
            poller.leave(sub)
            if not poller.subscribers:
                await self._stop(poller)

    async def _stop(self, poller: Poller) -> None:
        dataset_key = poller.key[0]
        last_of_dataset = False
        if self._pollers.get(poller.key) is poller:
            del self._pollers[poller.key]
            left = self._polled[dataset_key] - 1
            if left:
                self._polled[dataset_key] = left
            else:
                del self._polled[dataset_key]
                self._sweeps.answered.discard(dataset_key)
                last_of_dataset = True
        task = poller.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if last_of_dataset:
            await self._sweeps.stop(dataset_key)

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
        await self._sweeps.aclose()
        for future in list(self._inflight.values()):
            if future is not None and not future.done():
                future.set_exception(DifyClientClosedError("the Dify client was closed"))
                future.exception()  # retrieved: nobody else may be waiting on it

    # -- the poll loop ----------------------------------------------------------------------

    async def _run(self, poller: Poller) -> None:
        interval: float | None = None
        failures = 0
        try:
            if poller.known and self._sweeps.sweeping(poller.dataset_id):
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
                        changed if poller.last is not None else agrees(status, poller.hints)
                    )
                    poller.woken_by = None
                final = status.is_terminal
                poller.last_at = self._clock.monotonic()
                poller.publish(PollUpdate(status=status, final=final))
                if final:
                    return
                cadence = poller.cadence()
                interval = cadence.next_interval(interval, changed)
                if poller.fetch is None and self._sweeps.sweeping(poller.dataset_id):
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

    async def _pause(self, poller: Poller, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if woken (by a sweep or a stop)."""
        if not poller.subscribers:
            # Stopped: a cancellation that raced aiohttp's own timeout can be lost there, so
            # do not back off for a loop nobody waits on.
            return
        await poller.wake.sleep(delay)
