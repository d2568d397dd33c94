"""Pure decisions, no I/O: is this failure worth retrying, and how long to wait first.

The loops that sleep live in `client` (transport retries) and `monitor` (poll cadence); they
ask these functions and do what they say, so every decision is unit-tested without a loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import (
    DifyConnectionError,
    DifyError,
    DifyRateLimitError,
    DifyServerError,
)

__all__ = ["RetryPolicy", "is_transient"]


def is_transient(error: DifyError) -> bool:
    """True for failures that say nothing about the request itself and may pass on their own.

    Connection failures and timeouts, 5xx (Dify or a proxy), 429, and Dify Cloud's 403
    knowledge rate limit. Everything else (401, other 403s, 404, 400) will fail again.
    """
    return isinstance(error, (DifyConnectionError, DifyServerError, DifyRateLimitError))


@dataclass(frozen=True)
class RetryPolicy:
    """Transport retry schedule: exponential backoff with jitter, ``Retry-After`` honoured.

    Attributes:
        max_retries: Retries after the first attempt (so ``max_retries + 1`` attempts at most).
        backoff_base: First backoff in seconds; doubles per retry.
        backoff_max: Upper bound of one exponential backoff.
        rate_limit_cooldown: First wait after Dify Cloud's 403 knowledge rate limit, which
            sends no ``Retry-After``; doubles per retry, bounded by ``max_retry_after``. Its
            window is a sliding 60 s, so a slot usually frees within seconds.
        max_retry_after: The longest single wait accepted from a ``Retry-After`` header.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    rate_limit_cooldown: float = 5.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for name in ("backoff_base", "backoff_max", "rate_limit_cooldown", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    def delay(self, retry: int, error: DifyError, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        rng = rng or _rng
        if isinstance(error, DifyRateLimitError):
            if error.retry_after is not None:
                return min(error.retry_after, self.max_retry_after)
            if error.is_knowledge_rate_limit:
                step = self.rate_limit_cooldown * (2.0**retry)
                return min(step, self.max_retry_after) * rng.uniform(0.8, 1.0)
        step = min(self.backoff_max, self.backoff_base * (2.0**retry))
        # "Equal jitter": at least half the step, so retries never bunch at zero.
        return step / 2 + rng.uniform(0, step / 2)

    def should_retry(self, retry: int, error: DifyError, *, idempotent: bool) -> bool:
        """Whether to try again after ``retry`` retries already made."""
        return idempotent and retry < self.max_retries and is_transient(error)


_rng = random.Random()
