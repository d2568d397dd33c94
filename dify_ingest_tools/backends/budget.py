"""Where a client's request limit lives: the interface every budget backend implements.

Dify Cloud's knowledge rate limit is per **workspace**: every key, process and the console
share one 60 s sliding window in Dify's Redis, and rejected calls count too
(``cloud_edition_billing_rate_limit_check`` in Dify's ``controllers/service_api/wraps.py``).
It is attached to the routes that write or search: document create/update (text and file),
document delete, dataset create, segment and metadata create, and retrieve (hit-testing).
``indexing-status``, the document list, document detail and dataset detail carry no such
decorator, so polls and listings never count.

Two backends implement `BudgetBackend`:

* `RequestBudget` (in-process, the default with ``requests_per_minute=``): slots spaced evenly
  for one client. Enough when one process talks to the workspace.
* `RedisBudget` (``pip install dify-ingest-tools[redis]``): one sliding window in Redis shared
  by every process and machine that names the same Redis and workspace key; it counts only
  what Dify counts, and a 403 rate limit seen by any of them pauses them all. While Redis is
  unreachable, each process takes only its share of the limit (``fallback="share"``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class BudgetBackend(Protocol):
    """What the transport asks of a budget before each HTTP attempt, and tells it after."""

    @property
    def requests_per_minute(self) -> float:
        """The limit the budget enforces, per 60 s (a plan's limit; backends keep their own
        safety margin below it)."""
        ...

    async def acquire(self, deadline: float | None = None, *, counted: bool = True) -> None:
        """Wait until one more attempt may be sent.

        Args:
            deadline: An instant on the client's `Clock`; raise `DifyTimeoutError` rather than wait
                past it.
            counted: Whether Dify counts this request against its knowledge rate limit
                (see `counts_against_knowledge_limit`: every non-GET). Backends may let
                uncounted ones through. Counting a write Dify does not count (the batch
                status actions) only costs a slot; a counted one is never missed.
        """
        ...

    async def report_rate_limited(self, cooldown: float) -> None:
        """Dify answered the 403 knowledge rate limit: hold counted requests ``cooldown`` s."""
        ...

    async def aclose(self) -> None:
        """Release connections (the client calls this when it closes). It may be used again."""
        ...
