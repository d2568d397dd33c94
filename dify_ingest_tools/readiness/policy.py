"""Pure decisions of a wait, no I/O: done? failed? paused? how long to the next poll? how did
it end?

The loops that sleep live in `monitor` (poll cadence) and `waiting` (the wait driver); they
ask these functions and do what they say, so every decision is unit-tested without a loop.
Whether one request is retried, and after how long, is the request path's own decision
(`dify_ingest_tools._http.retry`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dify_ingest_tools._base.inputs import check_int, check_number
from dify_ingest_tools.errors import (
    DifyError,
    DifyNotFoundError,
)
from dify_ingest_tools.models.outcome import Outcome

if TYPE_CHECKING:
    from dify_ingest_tools.models.status import BatchIndexingStatus

_rng = random.Random()

__all__ = [
    "Cadence",
    "ContactBudget",
    "OnEmpty",
    "OnPaused",
    "outcome_of",
    "step_for",
    "tolerate_not_found",
]


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


def outcome_of(
    status: BatchIndexingStatus | None = None, error: BaseException | None = None
) -> Outcome | None:
    """How a wait ended, from the error that ended it or else its last status.

    The one mapping every surface reads (CLI exit codes and reasons, tool answers,
    telemetry, gates, events). None: the status is still working and nothing ended it.
    """
    from dify_ingest_tools.errors import (
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
