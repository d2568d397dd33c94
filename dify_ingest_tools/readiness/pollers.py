"""A batch's poll loop state (`Poller`) and the waits subscribed to it (`Subscription`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dify_ingest_tools.models.status import BatchIndexingStatus, IndexingStatus
from dify_ingest_tools.readiness.contact import AttemptClock
from dify_ingest_tools.readiness.policy import Cadence
from dify_ingest_tools.readiness.updates import PollUpdate, Updates, Wake

if TYPE_CHECKING:
    from dify_ingest_tools.readiness.sweeps import Sweep

PollKey = tuple[str, str]
#: ``fetch(deadline, on_send)``: one attempt of a watched loop's own request.
PollFetch = Callable[[float, Callable[[], None]], Awaitable[BatchIndexingStatus]]


def poll_key(dataset_id: str, batch: str) -> PollKey:
    """Dataset ids are case-insensitive UUIDs; batches are compared as given."""
    return (dataset_id.lower(), batch)


@dataclass(eq=False, slots=True)
class Subscription:
    queue: Updates
    deadline: float
    cadence: Cadence


@dataclass(eq=False)
class Poller:
    key: PollKey
    dataset_id: str
    batch: str
    wake: Wake
    subscribers: set[Subscription] = field(default_factory=set)
    last: BatchIndexingStatus | None = None
    last_at: float = 0.0  # when `last` arrived, on the monitor's clock
    task: asyncio.Task[None] | None = None
    # document id -> the state the list showed when the sweep last woke this loop for it
    hints: dict[str, IndexingStatus | str | None] = field(default_factory=dict)
    woken_by: Sweep | None = None
    # The batch's documents, as its waits know them (from the create call): with these the
    # sweep can watch the batch before its first indexing-status answer.
    known: frozenset[str] = frozenset()
    attempts: AttemptClock = field(default_factory=AttemptClock)
    # The loop's own request (`IndexingMonitor.watch`), instead of the batch's status.
    fetch: PollFetch | None = None
    _cadence: Cadence | None = None

    def documents(self) -> frozenset[str] | tuple[str, ...]:
        """The document ids a sweep looks for: the last answer's, else the known ones."""
        if self.last is not None:
            return tuple(doc.id for doc in self.last.documents)
        return self.known

    def join(self, sub: Subscription) -> None:
        self.subscribers.add(sub)
        self._cadence = None

    def leave(self, sub: Subscription) -> None:
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
