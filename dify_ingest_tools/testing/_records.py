"""The request log: what reached the simulator, in arrival order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

RequestListener = Callable[["RequestRecord"], None]


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator received.

    Attributes:
        method: The HTTP method.
        path: The request path (percent-decoded), without the query string.
        route: The route name (e.g. ``"indexing_status"``), or ``None`` when no route matched
            (the HTML 404).
        status: The status sent; 0 when the connection was dropped without a response.
        at: The simulator clock when the request arrived.
        authorized: Whether the request carried a valid dataset API key (evaluated for every
            request, including ones answered before the auth check).
        fault: The injected fault's kind, or ``None``.
        query: The query parameters (first value of each).
    """

    method: str
    path: str
    route: str | None
    status: int
    at: float
    authorized: bool
    fault: str | None = None
    query: dict[str, str] = field(default_factory=dict)


class RequestLog:
    """Records in arrival order, even when a slow request finishes after a later one.

    Callers hold the store lock around every method. ``listeners`` are called with each
    record as its request finishes (completion order), under that lock: keep them quick.
    """

    def __init__(self) -> None:
        self._slots: list[RequestRecord | None] = []
        self._generation = 0
        self.listeners: list[RequestListener] = []

    def reserve(self) -> tuple[int, int]:
        """Claim the next position; returns a ticket for :meth:`fill`."""
        self._slots.append(None)
        return self._generation, len(self._slots) - 1

    def fill(self, ticket: tuple[int, int], record: RequestRecord) -> None:
        """Store a finished request at its reserved position (ignored after a clear)."""
        generation, index = ticket
        if generation == self._generation:
            self._slots[index] = record
        for listener in tuple(self.listeners):
            try:
                listener(record)
            except Exception:
                # A broken log sink must not break the simulated server.
                logger.exception("Dify simulator request listener %r failed", listener)

    def records(self) -> list[RequestRecord]:
        """The finished requests, in arrival order."""
        return [record for record in self._slots if record is not None]

    def clear(self) -> None:
        """Forget every record; requests still in flight are not recorded."""
        self._slots = []
        self._generation += 1
