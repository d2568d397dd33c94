"""A request budget: at most N requests per minute, spread evenly, never in bursts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .errors import DifyTimeoutError

__all__ = ["REQUESTS_PER_MINUTE_PRESETS", "RequestBudget", "resolve_requests_per_minute"]

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
    if value <= 0:
        raise ValueError("requests_per_minute must be > 0")
    return float(value)


class RequestBudget:
    """Hands out request slots at least ``60 / requests_per_minute`` seconds apart.

    A slot is reserved before sleeping, so concurrent callers queue fairly without a lock
    (asyncio runs the reservation atomically).
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self.spacing = 60.0 / requests_per_minute * _SPACING_MARGIN
        self._clock = clock
        self._sleep = sleep
        self._next_slot = float("-inf")

    async def acquire(self, deadline: float | None = None) -> None:
        """Wait for the next free slot; raise DifyTimeoutError if it is past ``deadline``."""
        now = self._clock()
        slot = max(now, self._next_slot)
        if deadline is not None and slot > deadline:
            raise DifyTimeoutError(
                f"the request budget ({self.requests_per_minute:g}/min) has no free slot "
                "before the deadline"
            )
        self._next_slot = slot + self.spacing
        if slot > now:
            await self._sleep(slot - now)
