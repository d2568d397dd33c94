"""Limits shared by every request of a client.

`RequestBudget`: at most N requests per minute, spread evenly, never in bursts.
`KnowledgeCooldown`: after Dify Cloud's 403 knowledge rate limit, every request that counts
against that limit pauses until Dify's 60 s window can admit it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dify_ingest_tools._base.clock import Clock, as_clock
from dify_ingest_tools._base.inputs import check_number
from dify_ingest_tools.errors import DifyRateLimitError, DifyTimeoutError

# Dify Cloud's knowledge request rate limit per workspace and plan (requests per minute;
# dify.ai/pricing). Dify counts creates, retrievals and deletes in one 60 s sliding window,
# so a client held to this budget can never trip the 403 rate limit on its own.
REQUESTS_PER_MINUTE_PRESETS: dict[str, float] = {
    "sandbox": 10,
    "professional": 100,
    "team": 1000,
}

# Slots are spaced 10 % wider than 60/N seconds so network jitter cannot squeeze N+1
# requests into one window as the server sees it.
_SPACING_MARGIN = 1.1


def resolve_requests_per_minute(value: float | str | None) -> float | None:
    """A number, a preset name (``"sandbox"``, ``"professional"``, ``"team"``) or None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return REQUESTS_PER_MINUTE_PRESETS[value.lower()]
        except KeyError:
            names = ", ".join(sorted(REQUESTS_PER_MINUTE_PRESETS))
            raise ValueError(
                f"unknown requests_per_minute preset {value!r}; use a number or one of {names}"
            ) from None
    return check_number(value, "requests_per_minute", minimum=0, exclusive_minimum=True)


class RequestBudget:
    """Hands out request slots at least ``60 / requests_per_minute`` seconds apart.

    A slot is reserved before sleeping, so concurrent callers queue fairly without a lock
    (asyncio runs the reservation atomically).

    Args:
        requests_per_minute: The budget.
        clock: The `Clock` slots and deadlines are measured on (a client passes its own);
            a ``() -> float`` reading, paired with ``sleep``, is accepted too.
        sleep: Only with a reading function as ``clock``: how to wait.
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        clock: Clock | Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.requests_per_minute = check_number(
            requests_per_minute, "requests_per_minute", minimum=0, exclusive_minimum=True
        )
        self.spacing = 60.0 / requests_per_minute * _SPACING_MARGIN
        self.clock = as_clock(clock, sleep)
        self._next_slot = float("-inf")

    async def acquire(self, deadline: float | None = None, *, counted: bool = True) -> None:
        """Wait for the next free slot; raise DifyTimeoutError if it is past ``deadline``.

        Every request takes a slot, ``counted`` or not (the `BudgetBackend` interface).
        """
        if deadline is not None:
            check_number(deadline, "deadline")
        now = self.clock.monotonic()
        slot = max(now, self._next_slot)
        if deadline is not None and slot > deadline:
            raise DifyTimeoutError(
                f"the request budget ({self.requests_per_minute:g}/min) has no free slot "
                "before the deadline"
            )
        self._next_slot = slot + self.spacing
        if slot > now:
            await self.clock.sleep(slot - now)

    async def report_rate_limited(self, cooldown: float) -> None:
        """Nothing to do: the transport's `KnowledgeCooldown` pauses this client already."""

    async def aclose(self) -> None:
        """Nothing to release (the `BudgetBackend` interface)."""


def counts_against_knowledge_limit(method: str) -> bool:
    """Whether a request is one Dify Cloud counts in its knowledge rate limit.

    Dify decorates its creating, updating, deleting and retrieving service-API routes with
    ``cloud_edition_billing_rate_limit_check("knowledge")``: on this API those are exactly
    the non-GET methods (``retrieve`` is a POST). The reads we poll with (indexing status,
    document list and detail, dataset detail) are GETs and are not counted.
    """
    return method.upper() != "GET"


class KnowledgeCooldown:
    """The client-wide pause after Dify Cloud's 403 knowledge rate limit.

    Dify adds every call, rejected ones too, to the workspace's 60 s sliding window before
    it checks the count, so a retry sooner than that keeps the workspace locked. One refused
    call therefore pauses every request of the client that counts against the limit (see
    `counts_against_knowledge_limit`), not only the loop that hit it.
    """

    def __init__(self) -> None:
        self._until = float("-inf")
        self._error: DifyRateLimitError | None = None

    def start(self, until: float, error: DifyRateLimitError) -> None:
        """Pause counted requests until the monotonic instant ``until`` (never shortened)."""
        if until > self._until:
            self._until = until
            self._error = error

    def remaining(self, now: float) -> float:
        """Seconds left in the pause (0 when none is running)."""
        return max(0.0, self._until - now)

    def until(self) -> float:
        return self._until

    def refusal(self, now: float, *, url: str, method: str) -> DifyRateLimitError:
        """The error for a request whose deadline ends before the pause does."""
        left = self.remaining(now)
        cause = self._error
        return DifyRateLimitError(
            cause.message if cause is not None else "knowledge rate limit",
            status=403,
            code=cause.code if cause is not None else "forbidden",
            url=url,
            method=method,
            retry_after=left,
            from_dify=cause.from_dify if cause is not None else False,
            hint=(
                f"Dify Cloud's knowledge rate limit refused a request of this client; it "
                f"holds its creates, updates, deletes and retrievals for another {left:.0f}s "
                "(the limit is a 60 s window per workspace that counts refused calls too), "
                "which is past this call's deadline. Retry later, or give the client the "
                "plan's budget: requests_per_minute='sandbox' (10/min), 'professional' or "
                "'team'."
            ),
        )
