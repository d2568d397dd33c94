"""What flows from a poll loop to its waits: `PollUpdate`s on an `Updates` queue, and the
`StatusSource` the loop's requests go to.

The queue and a loop's wake-up flag are parked futures released early or after a delay on
the client's `Clock` (a wait holds one queue for its whole life, and tens of thousands of
waits may be open at once: no task or timer-wrapping ``asyncio.wait`` per take).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dify_ingest_tools._base.clock import SYSTEM_CLOCK, Clock
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.models.documents import DocumentList
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.contact import AttemptClock, Contact, Reach


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


class Wake(_Parking):
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
