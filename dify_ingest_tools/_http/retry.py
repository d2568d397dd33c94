"""Whether one failed request is tried again, and after how long: pure decisions, no I/O.

The loop that sleeps is `dify_ingest_tools._http.transport`; it asks these and does what they
say, so every decision is unit-tested without a loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dify_ingest_tools._base.inputs import check_int, check_number
from dify_ingest_tools.errors import (
    DifyAPIError,
    DifyConnectionError,
    DifyError,
    DifyRateLimitError,
    DifyResponseError,
    DifyServerError,
)

_rng = random.Random()


def is_transient(error: DifyError) -> bool:
    """True for failures that say nothing about the request itself and may pass on their own.

    Connection failures and timeouts, 5xx (Dify or a proxy), 429, Dify Cloud's 403
    knowledge rate limit, and a 2xx whose JSON is cut off or garbled (``invalid_json``: a
    proxy or a connection dropped mid-body). Not transient: a 2xx that is not JSON at all
    (``not_json``: an HTML page, i.e. base_url points at a web page, not the API), a
    well-formed body of the wrong shape, 401, other 403s, 404 and 400 — they fail again.
    """
    if isinstance(error, DifyResponseError):
        return error.code == "invalid_json"
    return isinstance(error, (DifyConnectionError, DifyServerError, DifyRateLimitError))


def is_dify_answer(error: DifyError) -> bool:
    """Whether a failed request still proves it reached Dify's API (its JSON error envelope).

    A wait that has seen one such answer (or a status) knows ``base_url`` is right, so it
    rides out later connection errors and proxy pages up to its deadline.
    """
    return isinstance(error, DifyAPIError) and error.from_dify


# Retries counted past this add nothing (the backoff is at its maximum long before), and
# 2.0 ** retry would overflow a float after 1,023 of them (~1.7 h of 503s for a poll loop).
_MAX_EXPONENT = 32


@dataclass(frozen=True)
class RetryPolicy:
    """Transport retry schedule: exponential backoff with jitter, ``Retry-After`` bounded.

    Every delay is at least the ordinary backoff for its retry number, whatever the server
    says (``Retry-After: 0``, negative, a past date or ``nan`` cannot make a client storm),
    and at most ``max_retry_after``.

    Attributes:
        max_retries: Retries after the first attempt (so ``max_retries + 1`` attempts at most).
        backoff_base: First backoff in seconds (> 0); doubles per retry.
        backoff_max: Upper bound of one exponential backoff.
        rate_limit_cooldown: How long every request that counts against Dify Cloud's 403
            knowledge rate limit pauses after it (60 s). Dify adds each call, rejected ones
            too, to a per-workspace 60 s sliding window before checking it, so a retry
            earlier than the window's length can keep the workspace locked.
        max_retry_after: The longest single wait accepted from a ``Retry-After`` header.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    rate_limit_cooldown: float = 60.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        check_int(self.max_retries, "max_retries", minimum=0, maximum=1000)
        check_number(self.backoff_base, "backoff_base", minimum=0, exclusive_minimum=True)
        check_number(self.backoff_max, "backoff_max", minimum=self.backoff_base)
        check_number(self.rate_limit_cooldown, "rate_limit_cooldown", minimum=0)
        check_number(self.max_retry_after, "max_retry_after", minimum=0)

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The ordinary backoff before retry number ``retry``: the floor of every delay."""
        exponent = min(max(retry, 0), _MAX_EXPONENT)
        step = min(self.backoff_max, self.backoff_base * (2.0**exponent))
        # "Equal jitter": at least half the step, so retries never bunch at zero.
        return step / 2 + (rng or _rng).uniform(0, step / 2)

    def delay(self, retry: int, error: DifyError, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        rng = rng or _rng
        floor = self.backoff(retry, rng)
        if isinstance(error, DifyRateLimitError):
            if error.is_knowledge_rate_limit:
                return max(floor, self.knowledge_cooldown(rng))
            if error.retry_after is not None:
                return max(floor, min(error.retry_after, self.max_retry_after))
        return floor

    def knowledge_cooldown(self, rng: random.Random | None = None) -> float:
        """The pause after Dify Cloud's 403 rate limit: the window, plus up to 10 % jitter.

        Never shorter than ``rate_limit_cooldown``: the rejected call itself sits in the
        window until then. The jitter keeps clients that were refused together apart.
        """
        return self.rate_limit_cooldown * (rng or _rng).uniform(1.0, 1.1)

    def should_retry(self, retry: int, error: DifyError, *, idempotent: bool) -> bool:
        """Whether to try again after ``retry`` retries already made."""
        return idempotent and retry < self.max_retries and is_transient(error)


def is_rate_limit(error: DifyError) -> bool:
    return isinstance(error, DifyRateLimitError)
