"""Clocks: the injectable monotonic clock and its mapping onto Unix epoch seconds."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class ManualClock:
    """A monotonic clock that only moves when told to.

    Pass it as ``DifySimulator(clock=...)`` to make document timelines deterministic: the
    simulator computes every status lazily from the clock at request time, so nothing changes
    between two requests unless the test calls :meth:`advance`.

    Args:
        start: The initial reading, in seconds.

    Example:
        >>> clock = ManualClock()
        >>> clock.advance(1.5)
        >>> clock()
        1.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        """The current reading, in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Args:
            seconds: How far to move; must not be negative (the clock is monotonic).

        Raises:
            ValueError: If ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back (advance({seconds!r}))")
        self._now += seconds

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


class Epoch:
    """Maps readings of a monotonic clock onto Unix epoch seconds.

    The wall-clock time is captured once, so epochs move exactly as the injected clock does:
    a :class:`ManualClock` that never advances yields the same timestamp forever.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._clock_zero = clock()
        self._wall_zero = time.time()

    def seconds(self, reading: float) -> float:
        """The epoch (float seconds) of a clock reading."""
        return self._wall_zero + (reading - self._clock_zero)

    def whole(self, reading: float | None) -> int | None:
        """The epoch of a reading as whole seconds, as Dify serialises every ``*_at`` field."""
        if reading is None:
            return None
        return int(self.seconds(reading))
