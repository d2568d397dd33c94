"""Time, from one place: the `Clock` a client hands down to everything that reads or waits.

Every deadline, backoff, budget slot, poll gap and stall timer of a client is measured on
its clock: `SystemClock` (monotonic time, asyncio sleeps and timers) unless the caller gives
another. `FakeClock` only moves when told to (or, under `FakeClock.autojump`, whenever
everything waits on it), so the waits, monitors and budgets run in tests in milliseconds
and cannot depend on how busy the machine is.

A clock measures our waiting, not the network: an HTTP exchange takes real time whatever
the clock says. The transport brackets each exchange in `Clock.io` (the ledger hook each
write), so a fake clock never jumps while an answer is on its way (a poll's answer is never
judged "late" because the test moved time under it).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable


class Timer(Protocol):
    """A scheduled callback (`Clock.call_later`); cancelling an expired one does nothing."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Monotonic seconds, sleeps and timers: everything a client's waiting is made of."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller ``seconds`` on this clock (0 or less: only yield once)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback()`` on the running loop once ``delay`` seconds have passed."""
        ...

    def io(self) -> AbstractContextManager[None]:
        """Bracket real I/O (an HTTP attempt, a ledger write): a fake clock stands still
        meanwhile."""
        ...


_NO_IO = contextlib.nullcontext()


class SystemClock:
    """`time.monotonic`, `asyncio.sleep` and the loop's own timers (the default)."""

    __slots__ = ()

    monotonic = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    def io(self) -> AbstractContextManager[None]:
        return _NO_IO

    def __repr__(self) -> str:
        return "SystemClock()"


#: The clock of every client not given one.
SYSTEM_CLOCK = SystemClock()


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class FakeClock:
    """A clock for tests: time moves only by `advance`, or by `autojump` when all is idle.

    Timers fire in order of their instants (ties in the order they were set), each with
    the clock reading its own instant, so a sleeper that sets a new timer while time moves
    sees it fire in turn. Use one per event loop.

    Example::

        clock = FakeClock()
        sim = DifySimulator(clock=clock.monotonic)  # documents move on the same time
        async with AsyncDifyKnowledgeClient(key, url, clock=clock) as client:
            async with clock.autojump():
                await client.wait_for_indexing(dataset_id, batch, timeout=600)

    Args:
        start: The first reading, in seconds.
    """

    #: Loop turns with no activity on the clock before `autojump` moves time.
    QUIET_TURNS = 20

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._order = itertools.count()
        self._io = 0  # exchanges in flight
        self._activity = 0  # bumped by every timer set and exchange begun or ended

    def monotonic(self) -> float:
        return self._now

    def __call__(self) -> float:
        """The reading (so the clock also serves where a ``() -> float`` is taken)."""
        return self._now

    @property
    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, lambda: _release(waiter))
        try:
            await waiter
        finally:
            timer.cancel()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        self._activity += 1
        return timer

    @contextlib.contextmanager
    def io(self) -> Iterator[None]:
        self._io += 1
        self._activity += 1
        try:
            yield
        finally:
            self._io -= 1
            self._activity += 1

    def next_instant(self) -> float | None:
        """When the earliest pending timer fires (None when none is set)."""
        self._drop_cancelled()
        return self._timers[0][0] if self._timers else None

    def advance(self, seconds: float) -> None:
        """Move time ``seconds`` forward, firing every timer due on the way, in order.

        The callbacks run here; the tasks they wake run once the caller yields to the loop.
        """
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back (advance({seconds!r}))")
        target = self._now + seconds
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0][0] > target:
                break
            when, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            timer.callback()
        self._now = target

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)

    @contextlib.asynccontextmanager
    async def autojump(self) -> AsyncIterator[FakeClock]:
        """While inside, jump to the next timer whenever everything waits on this clock.

        "Everything waits" means: no exchange in flight (`io`) and no timer set or exchange
        begun for `QUIET_TURNS` turns of the loop. Work that waits on anything else (a
        thread, a lock held across real I/O) should not be run under an autojumping clock.
        """
        driver = asyncio.ensure_future(self._drive())
        try:
            yield self
        finally:
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver

    async def _drive(self) -> None:
        while True:
            seen = self._activity
            for _ in range(self.QUIET_TURNS):
                await asyncio.sleep(0)
            if self._io or self._activity != seen:
                if self._io:
                    await asyncio.sleep(0.0005)  # an answer is on its way: real time
                continue
            instant = self.next_instant()
            if instant is None:
                await asyncio.sleep(0.0005)  # nothing scheduled: let the real world move
                continue
            self.advance(max(0.0, instant - self._now))

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"


class _CallableClock:
    """A `Clock` over a ``() -> float`` reading and an async sleep (the older arguments)."""

    __slots__ = ("_sleep", "monotonic")

    def __init__(
        self, reading: Callable[[], float], sleep: Callable[[float], Awaitable[None]] | None
    ) -> None:
        self.monotonic = reading
        self._sleep = sleep

    async def sleep(self, seconds: float) -> None:
        if self._sleep is None:
            await asyncio.sleep(max(0.0, seconds))
        else:
            await self._sleep(seconds)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    def io(self) -> AbstractContextManager[None]:
        return _NO_IO


def as_clock(
    clock: Clock | Callable[[], float] | None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Clock:
    """A `Clock` from what a constructor was given: a Clock, a reading function, or None.

    A reading function (the older ``clock=`` arguments) is paired with ``sleep`` (else
    `asyncio.sleep`); a `Clock` already sleeps on its own, so ``sleep`` must not be given.
    """
    if clock is None:
        if sleep is None:
            return SYSTEM_CLOCK
        return _CallableClock(time.monotonic, sleep)
    if isinstance(clock, Clock):
        if sleep is not None:
            raise TypeError("pass a Clock (which sleeps on its own) or clock= and sleep=, not both")
        return clock
    if callable(clock):
        return _CallableClock(clock, sleep)
    raise TypeError(f"clock must be a Clock or a () -> float function, not {clock!r:.60}")
