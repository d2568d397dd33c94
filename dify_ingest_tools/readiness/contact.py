"""Has Dify failed to answer, or has the client only queued? What a wait's contact budget counts.

A wait gives up early when Dify never answered (a wrong ``base_url``, a dead port, a server
that accepts connections and stays silent: `ContactBudget`). Only Dify's failures may count
toward that: time a poll spends queued behind the client's *own* limits (its request budget,
its concurrency cap, a rate-limit cool-down) is not time Dify failed to answer. With 30
batches and ``requests_per_minute=120`` the last first poll leaves about 15 s after the wait
started; it must not be blamed on the server.

- `AttemptClock` (one per poll loop) runs only while the loop's requests are out or failing:
  from the first request that actually left, minus every later stretch spent queued.
- `Reach` (one per monitor) counts failed attempts since Dify last answered any request of
  the monitor. A wrong ``base_url`` is the same for every batch, so three refused polls of
  any batches are evidence enough: 30 waits on a dead port fail together within the contact
  budget, not each after three turns in the queue.
- `Contact` is one wait's view of both, from the moment it began.

Times are readings of the client's `Clock` (`_base.clock`), as the waits' own.
"""

from __future__ import annotations

from dify_ingest_tools.errors import DifyError


class AttemptClock:
    """Seconds a poll loop's requests were out or failing, not queued on the client's side.

    Nothing counts before the loop's first request left. Each request is bracketed by
    `queued` (it starts waiting for its turn), `sent` (an attempt leaves; several with
    transport retries) and `settled` (it ended, sent or not).
    """

    __slots__ = ("_first_sent", "_queued", "_queued_since", "sends")

    def __init__(self) -> None:
        self.sends = 0  # attempts that left
        self._first_sent: float | None = None
        self._queued_since: float | None = None
        self._queued = 0.0  # seconds queued after the first send

    def queued(self, now: float) -> None:
        self._queued_since = now

    def sent(self, now: float) -> None:
        self.sends += 1
        if self._first_sent is None:
            self._first_sent = now
        elif self._queued_since is not None:
            self._queued += now - self._queued_since
        self._queued_since = None

    def looked(self, now: float) -> None:
        """Something else looked for the batch (a dataset sweep's list request left): from
        now on the batch is waiting for Dify, though the loop sent nothing itself."""
        if self._first_sent is None:
            self._first_sent = now
            if self._queued_since is not None:
                self._queued_since = now  # its own queue so far counts for nothing

    def settled(self, now: float) -> None:
        if self._queued_since is not None and self._first_sent is not None:
            self._queued += now - self._queued_since
        self._queued_since = None

    @property
    def ever_sent(self) -> bool:
        return self._first_sent is not None

    def reading(self, now: float) -> float:
        """The seconds counted so far (never decreasing)."""
        if self._first_sent is None:
            return 0.0
        queued = self._queued
        if self._queued_since is not None:
            queued += now - self._queued_since
        return max(0.0, now - self._first_sent - queued)


class Reach:
    """Failed attempts of a monitor's requests since Dify last answered one of them."""

    __slots__ = ("_failing_since", "_streak_from", "failed_total", "last_error")

    def __init__(self) -> None:
        self.failed_total = 0  # every failure ever, so a wait can count from its start
        self._streak_from = 0  # failed_total when Dify last answered
        self._failing_since: float | None = None
        #: The latest failure of the streak: what a wait whose own poll is still queued
        #: reports when the others' failures end it.
        self.last_error: DifyError | None = None

    def answered(self) -> None:
        """Dify answered (a status, a list page, or one of its JSON errors)."""
        self._streak_from = self.failed_total
        self._failing_since = None
        self.last_error = None

    def failed(self, now: float, error: DifyError) -> None:
        """An attempt that left got no answer from Dify (refused, reset, cut off, a proxy)."""
        if self._failing_since is None:
            self._failing_since = now
        self.failed_total += 1
        self.last_error = error

    def streak(self, since_total: int) -> int:
        """Failures since Dify last answered that came after ``since_total``."""
        return self.failed_total - max(self._streak_from, since_total)

    def failing_since(self) -> float | None:
        return self._failing_since


class Contact:
    """One wait's view: what its batch's attempts and the monitor's requests went through
    since the wait began (`ContactBudget` decides when that is enough to give up)."""

    __slots__ = ("_attempts", "_base_failures", "_base_reading", "_reach", "_started")

    def __init__(self, attempts: AttemptClock, reach: Reach, now: float) -> None:
        self._attempts = attempts
        self._reach = reach
        self._started = now
        self._base_reading = attempts.reading(now)
        self._base_failures = reach.failed_total

    def failures(self) -> int:
        """Failed attempts (any batch of the client) since the wait began and Dify answered."""
        return self._reach.streak(self._base_failures)

    def failing_for(self, now: float) -> float:
        """Seconds those failures span, from the first of them (0 with none)."""
        since = self._reach.failing_since()
        if since is None or self.failures() == 0:
            return 0.0
        return max(0.0, now - max(since, self._started))

    def unanswered(self, now: float) -> float:
        """Seconds the batch's own requests were out or failing since the wait began."""
        return self._attempts.reading(now) - self._base_reading

    def last_failure(self) -> DifyError | None:
        """The latest of `failures` (None without any)."""
        return self._reach.last_error if self.failures() else None

    def elapsed(self, now: float) -> float:
        """The longer of `failing_for` and `unanswered`: how long Dify has been silent."""
        return max(self.failing_for(now), self.unanswered(now))

    def sent(self) -> bool:
        """Whether a request of the batch has left since the wait began (or before)."""
        return self._attempts.ever_sent
