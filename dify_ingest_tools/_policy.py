"""Pure decisions, no I/O: is this failure worth retrying, and how long to wait first.

The loops that sleep live in `client` (transport retries) and `monitor` (poll cadence); they
ask these functions and do what they say, so every decision is unit-tested without a loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import (
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyRateLimitError,
    DifyResponseError,
    DifyServerError,
)

if TYPE_CHECKING:
    from .models import BatchIndexingStatus

_rng = random.Random()

__all__ = [
    "Cadence",
    "OnPaused",
    "RetryPolicy",
    "is_rate_limit",
    "is_transient",
    "step_for",
    "tolerate_not_found",
]


def is_transient(error: DifyError) -> bool:
    """True for failures that say nothing about the request itself and may pass on their own.

    Connection failures and timeouts, 5xx (Dify or a proxy), 429, Dify Cloud's 403
    knowledge rate limit, and a 200 whose JSON is cut off or garbled (a proxy or a connection
    dropped mid-body; a well-formed body of the wrong shape is not transient). Everything
    else (401, other 403s, 404, 400) will fail again.
    """
    if isinstance(error, DifyResponseError):
        return error.code == "invalid_json"
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


# -- waiting --------------------------------------------------------------------------------

OnPaused = Literal["wait", "fail"]
Step = Literal["done", "fail", "continue"]


@dataclass(frozen=True)
class Cadence:
    """How often one batch is polled: fast at first, slower while nothing changes.

    Attributes:
        initial: Seconds between polls right after a change (and at the start).
        maximum: The longest gap while nothing changes.
        factor: Growth of the gap per unchanged poll.
        jitter: Relative randomisation (0.2 = +/-20 %) so many pollers do not align.
    """

    initial: float = 1.0
    maximum: float = 10.0
    factor: float = 1.5
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError("poll_interval must be > 0")
        if self.maximum < self.initial:
            raise ValueError("max_poll_interval must be >= poll_interval")
        if self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("cadence factor must be >= 1 and jitter in [0, 1)")

    def next_interval(self, current: float | None, changed: bool) -> float:
        """The un-jittered gap after a poll: reset on change, grow while unchanged."""
        if changed or current is None:
            return self.initial
        return min(self.maximum, current * self.factor)

    def jittered(self, interval: float, rng: random.Random | None = None) -> float:
        spread = interval * self.jitter
        return max(0.0, interval + (rng or _rng).uniform(-spread, spread))


def step_for(status: BatchIndexingStatus, *, raise_on_error: bool, on_paused: OnPaused) -> Step:
    """What a wait does after observing ``status``.

    ``done``: return it (ready; or terminal with failures and ``raise_on_error=False``).
    ``fail``: raise IndexingFailedError (a failure with ``raise_on_error``, or paused with
    ``on_paused="fail"``). ``continue``: keep waiting (working, unknown status, or paused).
    """
    if status.is_completed:
        return "done"
    if status.is_failed and raise_on_error:
        return "fail"
    if status.is_terminal:
        return "done"
    if status.is_paused and on_paused == "fail":
        return "fail"
    return "continue"


def tolerate_not_found(error: DifyError, *, elapsed: float, grace: float) -> bool:
    """``Documents not found.`` right after creation is a known race: tolerate it a while."""
    return (
        isinstance(error, DifyNotFoundError) and error.resource == "documents" and elapsed < grace
    )


def is_rate_limit(error: DifyError) -> bool:
    return isinstance(error, DifyRateLimitError)
