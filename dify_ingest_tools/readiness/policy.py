"""Pure decisions of a wait, no I/O: done? failed? paused? how long to the next poll? how did
it end?

The loops that sleep live in `monitor` (poll cadence) and `waiting` (the wait driver); they
ask these functions and do what they say, so every decision is unit-tested without a loop.
Whether one request is retried, and after how long, is the request path's own decision
(`dify_ingest_tools._http.retry`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from dify_ingest_tools._base.inputs import check_int, check_number
from dify_ingest_tools._http.retry import is_dify_answer, is_rate_limit, is_transient
from dify_ingest_tools.errors import (
    DifyAPIError,
    DifyError,
    DifyNotFoundError,
)
from dify_ingest_tools.events import EventKind, IndexingEvent, events_between
from dify_ingest_tools.models.created import BatchRef
from dify_ingest_tools.models.outcome import Outcome
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.updates import PollUpdate
from dify_ingest_tools.readiness.wait_errors import (
    empty_error,
    failed_error,
    queued_error,
    stalled_error,
    timeout_error,
    unreachable_error,
)

if TYPE_CHECKING:
    from dify_ingest_tools.readiness.wait_options import WaitOptions

_rng = random.Random()


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
    Dify failing to answer (`readiness.contact`). Once Dify has answered, transient failures are
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


# -- one wait, one decision per turn --------------------------------------------------------


@dataclass(frozen=True)
class ContactReading:
    """What a wait's requests went through, read at one instant (`Contact`'s readings).

    Attributes:
        failures: Failed requests of the client since the wait began and Dify last answered.
        failing_for: Seconds those failures span.
        silent: Seconds the batch's own polls were out or failing (queue time excluded).
        sent: Whether a poll of the batch has left at all.
        last_failure: The latest of the failures.
    """

    failures: int = 0
    failing_for: float = 0.0
    silent: float = 0.0
    sent: bool = False
    last_failure: DifyError | None = None

    @property
    def elapsed(self) -> float:
        """How long Dify has been silent: the longer of ``failing_for`` and ``silent``."""
        return max(self.failing_for, self.silent)


@dataclass(frozen=True)
class WaitState:
    """What one wait has seen so far; `decide` returns the next one.

    Attributes:
        ref: The batch waited on.
        options: The wait's options.
        started: When the wait began (times are readings of the wait's `Clock`).
        deadline: ``started + options.timeout``.
        last_change: When the batch last changed observably (the stall timer's start).
        previous: The last status observed.
        last_error: The last failed poll since that status (the cause of a timeout).
        reached_dify: Whether Dify has answered the wait (a status, a JSON error, a list).
    """

    ref: BatchRef
    options: WaitOptions
    started: float
    deadline: float
    last_change: float
    budget: ContactBudget
    previous: BatchIndexingStatus | None = None
    last_error: DifyError | None = None
    reached_dify: bool = False

    @classmethod
    def start(cls, ref: BatchRef, options: WaitOptions, now: float) -> WaitState:
        return cls(
            ref=ref,
            options=options,
            started=now,
            deadline=now + options.timeout,
            last_change=now,
            budget=options.contact(),
        )


Action = Literal["continue", "return", "raise"]


@dataclass(frozen=True)
class Decision:
    """What a wait does next, in this order: emit ``events``; yield ``report``; with
    ``summaries``, wait for the batch's summaries; emit ``ending``; log ``warning``; then
    the ``action``.

    Attributes:
        action: ``"continue"``: wait up to ``wait`` seconds for the next update (None:
            decide again at once, without one); ``"return"``: the wait is done;
            ``"raise"``: raise ``error`` from ``cause``.
        state: The wait's state after this turn.
    """

    action: Action
    state: WaitState
    wait: float | None = None
    events: tuple[IndexingEvent, ...] = ()
    report: BatchIndexingStatus | None = None
    summaries: bool = False
    ending: IndexingEvent | None = None
    warning: str | None = None
    error: DifyError | None = None
    cause: DifyError | None = None


def decide(
    state: WaitState,
    update: PollUpdate | None,
    now: float,
    contact: ContactReading | None = None,
) -> Decision:
    """One turn of a wait: what ``update`` (None: none came in time) means at ``now``.

    Pure: the driver reads the clock and the contact evidence and does what it is told.
    Without an update the deadline, the stall timer and the contact budget are checked and
    the decision says how long to wait for the next update.
    """
    reading = contact if contact is not None else ContactReading()
    if update is None:
        return _pace(state, now, reading)
    if update.listed:  # Dify's document list showed the batch: it answers
        return Decision("continue", replace(state, reached_dify=True))
    if update.error is not None:
        return _failed_poll(state, update, update.error, now, reading)
    status = update.status
    if status is None:  # pragma: no cover - the monitor always sends one or the other
        return Decision("continue", state)
    return _observed(state, status, now)


def _pace(state: WaitState, now: float, contact: ContactReading) -> Decision:
    """No update to take: give up, or say how long to wait for one."""
    options, ref = state.options, state.ref
    budget = state.budget
    # Until Dify answers once, failures are more likely a wrong base_url than slow indexing.
    # Only Dify's failures count: never time queued behind the client's own limits.
    exhausted = budget.exhausted(
        contact.failures, failing_for=contact.failing_for, silent=contact.silent
    )
    if not state.reached_dify and (now >= state.deadline or exhausted):
        if not (contact.sent or contact.failures):
            # The deadline, with every poll of the wait still queued behind the client's own
            # limits and nothing failing: not Dify's doing.
            return Decision("raise", state, error=queued_error(ref, options))
        failure = state.last_error or contact.last_failure
        error = unreachable_error(ref, failure, contact.failures, contact.elapsed)
        return Decision("raise", state, error=error, cause=failure)
    wait = state.deadline - now
    if not state.reached_dify:
        # Wake when the contact budget may run out (checked on the next turn).
        left = budget.time_left(
            contact.failures, failing_for=contact.failing_for, silent=contact.silent
        )
        wait = min(wait, max(0.001, left))
    if options.stall_timeout is not None:
        wait = min(wait, state.last_change + options.stall_timeout - now)
    if wait > 0:
        return Decision("continue", state, wait=wait)
    previous, last_error = state.previous, state.last_error
    if now >= state.deadline:
        # The cause: why the last poll failed (Dify down, rate limited), if it did.
        error = timeout_error(ref, options, previous, last_error)
        return Decision("raise", state, error=error, cause=last_error)
    stalled = stalled_error(ref, options, previous, last_error)
    event = IndexingEvent.for_error("stalled", ref.dataset_id, ref.batch, stalled, previous)
    return Decision("raise", state, events=(event,), error=stalled)


def _failed_poll(
    state: WaitState, update: PollUpdate, error: DifyError, now: float, contact: ContactReading
) -> Decision:
    """A poll failed: ride it out (transient; not found within the grace) or end the wait."""
    options, ref = state.options, state.ref
    if is_dify_answer(error):
        state = replace(state, reached_dify=True)
    elif (
        not state.reached_dify
        and is_transient(error)
        and state.budget.exhausted(
            contact.failures, failing_for=contact.failing_for, silent=contact.silent
        )
    ):
        unreachable = unreachable_error(ref, error, contact.failures, contact.elapsed)
        return Decision("raise", state, error=unreachable, cause=error)
    if not update.final and (
        is_transient(error)
        or tolerate_not_found(error, elapsed=now - state.started, grace=options.not_found_grace)
    ):
        if state.last_error is None or now < state.deadline:
            # A poll cut short by the wait's own deadline says less than the failure
            # before it (refused, rate limited): keep that one.
            state = replace(state, last_error=error)
        kind: EventKind = "rate_limited" if is_rate_limit(error) else "retrying"
        event = IndexingEvent.for_error(
            kind, ref.dataset_id, ref.batch, error, state.previous, retry_in=update.retry_in
        )
        return Decision("continue", state, events=(event,))
    # The poll loop hands this one error to every wait on the batch: each raises its own
    # copy, with its own last status (and hint).
    own: DifyError
    if isinstance(error, DifyAPIError) and not update.final:
        # Documents not found. past the grace period.
        own = error.with_context(
            last_status=state.previous,
            hint=(
                f"The batch is still not visible {options.not_found_grace:g}s after "
                "the wait started: check the dataset id and batch, or whether the "
                "documents were deleted."
            ),
        )
    else:
        own = error.with_context(last_status=state.previous)
    return Decision("raise", state, error=own, cause=error)


def _observed(state: WaitState, status: BatchIndexingStatus, now: float) -> Decision:
    """A status came: report what changed, and end the wait if the batch is done."""
    options, ref = state.options, state.ref
    events = tuple(events_between(state.previous, status))
    state = replace(
        state,
        previous=status,
        last_error=None,
        reached_dify=True,
        last_change=now if events else state.last_change,
    )
    report = status if events else None
    step = step_for(status, raise_on_error=options.raise_on_error, on_paused=options.on_paused)
    if step == "continue":
        return Decision("continue", state, events=events, report=report)
    # Empty documents make no summaries; one that will raise is not worth waiting on.
    raising_empty = status.is_empty and options.on_empty == "raise"
    ending = IndexingEvent(
        kind="batch_completed" if status.is_completed else "batch_failed",
        dataset_id=ref.dataset_id,
        batch=ref.batch,
        status=status,
    )
    done = Decision(
        "return",
        state,
        events=events,
        report=report,
        summaries=status.is_completed and options.summaries and not raising_empty,
        ending=ending,
    )
    if step == "fail":
        return replace(done, action="raise", error=failed_error(status))
    if status.is_empty and options.on_empty == "raise":
        return replace(done, action="raise", error=empty_error(status))
    if status.is_empty and options.on_empty == "warn":
        return replace(done, warning=status.summary())
    return done
