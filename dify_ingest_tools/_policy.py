"""Pure decisions, no I/O: is this failure worth retrying, and how long to wait first.

The loops that sleep live in `_transport` (retries) and `monitor` (poll cadence); they
ask these functions and do what they say, so every decision is unit-tested without a loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._inputs import check_int, check_number
from .errors import (
    DifyAPIError,
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyRateLimitError,
    DifyResponseError,
    DifyServerError,
)
from .models import Outcome

if TYPE_CHECKING:
    from .models import BatchIndexingStatus

_rng = random.Random()

__all__ = [
    "Cadence",
    "ContactBudget",
    "OnEmpty",
    "OnPaused",
    "RetryPolicy",
    "is_dify_answer",
    "is_rate_limit",
    "is_transient",
    "outcome_of",
    "step_for",
    "tolerate_not_found",
]


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


@dataclass(frozen=True)
class ContactBudget:
    """How long a wait tries before its first valid answer from Dify.

    A wrong ``base_url`` (nothing listening, a DNS name that does not resolve, a web page
    or a proxy's error page instead of the API) must not look like slow indexing: until a
    poll gets a status or Dify's JSON error envelope, a wait gives up once ``attempts``
    requests have failed over at least ``min_seconds`` (a blip is ridden out), or once its
    polls have gone ``seconds`` without an answer, even while one is still in flight (a
    server that accepts connections and never answers). Time a poll spent queued behind the
    client's own request budget, concurrency cap or cool-down is not counted: that is not
    Dify failing to answer (`_contact`). Once Dify has answered, transient failures are
    retried up to the wait's deadline.

    Attributes:
        attempts: Failed requests (connection errors, non-Dify answers; of any batch of the
            client, since Dify last answered) before giving up ...
        min_seconds: ... once they span at least this many seconds.
        seconds: Give up once the batch's polls were out or failing this long
            (``contact_timeout``).
    """

    attempts: int = 3
    min_seconds: float = 2.0
    seconds: float = 10.0

    def __post_init__(self) -> None:
        check_int(self.attempts, "contact attempts", minimum=1)
        check_number(self.min_seconds, "contact min_seconds", minimum=0)
        check_number(self.seconds, "contact_timeout", minimum=0, exclusive_minimum=True)

    def time_left(self, failures: int, *, failing_for: float, silent: float) -> float:
        """Seconds until a wait with no Dify answer yet gives up (<= 0: now).

        Args:
            failures: Failed requests since Dify last answered.
            failing_for: Seconds since the first of them.
            silent: Seconds the wait's polls were out or failing (queue time excluded).
        """
        left = self.seconds - silent
        if failures >= self.attempts:
            left = min(left, self.min_seconds - failing_for)
        return left

    def exhausted(self, failures: int, *, failing_for: float, silent: float) -> bool:
        """Whether a wait with no Dify answer yet should stop now."""
        return self.time_left(failures, failing_for=failing_for, silent=silent) <= 0


# -- waiting --------------------------------------------------------------------------------

OnPaused = Literal["wait", "fail"]
OnEmpty = Literal["raise", "warn", "accept"]
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
        check_number(self.initial, "poll_interval", minimum=0, exclusive_minimum=True)
        check_number(self.maximum, "max_poll_interval", minimum=0, exclusive_minimum=True)
        if self.maximum < self.initial:
            raise ValueError("max_poll_interval must be >= poll_interval")
        check_number(self.factor, "cadence factor", minimum=1)
        check_number(self.jitter, "cadence jitter", minimum=0)
        if self.jitter >= 1:
            raise ValueError("cadence jitter must be in [0, 1)")

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


def outcome_of(
    status: BatchIndexingStatus | None = None, error: BaseException | None = None
) -> Outcome | None:
    """How a wait ended, from the error that ended it or else its last status.

    The one mapping every surface reads (CLI exit codes and reasons, tool answers,
    telemetry, gates, events). None: the status is still working and nothing ended it.
    """
    from .errors import (
        DifyError,
        DifyNotFoundError,
        IndexingEmptyError,
        IndexingFailedError,
        IndexingPausedError,
        IndexingStalledError,
        IndexingTimeoutError,
    )

    if error is not None:
        if isinstance(error, IndexingEmptyError):
            return Outcome.empty
        if isinstance(error, IndexingPausedError):
            return Outcome.paused
        if isinstance(error, IndexingFailedError):
            # Raised before IndexingPausedError existed for paused batches: its status says.
            last = error.last_status
            paused = last is not None and last.is_paused and not last.is_failed
            return Outcome.paused if paused else Outcome.failed
        if isinstance(error, IndexingTimeoutError):
            return Outcome.timed_out
        if isinstance(error, IndexingStalledError):
            return Outcome.stalled
        if isinstance(error, DifyNotFoundError):
            return Outcome.not_found
        if isinstance(error, DifyError):
            return Outcome.unreachable
        if not isinstance(error, Exception):  # CancelledError, KeyboardInterrupt, GeneratorExit
            return Outcome.cancelled
        return None
    if status is None:
        return None
    if status.is_empty:
        return Outcome.empty
    if status.is_completed:
        return Outcome.ready
    if status.is_failed:
        return Outcome.failed
    if status.is_paused:
        return Outcome.paused
    return None
