"""What a `RedisBudget` sends while Redis is unreachable, and for one window after.

``fallback="share"`` (the default) pauses counted requests for one window, then takes the
limit divided by the budgets last seen in Redis; ``"wait"`` sends nothing counted; ``"local"``
takes the whole limit per process; a number in (0, 1] is a fixed fraction of the limit. See
`dify_ingest_tools.backends.redis_budget` for why.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from dify_ingest_tools.backends.redis_common import RedisConnector
from dify_ingest_tools.backends.request_budget import RequestBudget
from dify_ingest_tools.errors import DifyTimeoutError

# The named ``fallback`` settings of `RedisBudget` (a number in (0, 1] is the fourth kind).
_FALLBACK_MODES = ("share", "local", "wait")
# Budgets seen within this many windows count as the fleet, for the fallback's share.
# Counting one that stopped is only cautious (a smaller share); missing one would not be.
FLEET_WINDOWS = 10
# The fleet size assumed by a budget that never reached Redis or not for FLEET_WINDOWS.
_UNKNOWN_FLEET = 10

logger = logging.getLogger("dify_ingest_tools")


class RedisFallback:
    """The fallback half of `RedisBudget`: this process's share while Redis is away.

    The state it reads and keeps (the fleet last seen, the outage, the slots taken alone) is
    set up, and explained, in `RedisBudget.__init__`.
    """

    workspace: str
    window: float
    limit: int
    latency_allowance: float
    retry_redis_after: float
    fallback: str | float
    _connector: RedisConnector
    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _fallback: RequestBudget
    _fallback_until: float | None
    _fleet: tuple[int, float] | None
    _outage_since: float | None
    _taken_alone: deque[tuple[float, str]]
    _pause_until: float | None
    _share_until: float | None

    @property
    def _padded_window(self) -> float:
        return self.window + self.latency_allowance

    def _fleet_size(self) -> int:
        if self._fleet is None:
            return _UNKNOWN_FLEET
        size, seen = self._fleet
        if self._clock() - seen > FLEET_WINDOWS * self._padded_window:
            return max(size, _UNKNOWN_FLEET)
        return size

    def _fallback_share(self) -> tuple[int, float]:
        # What this process may send while Redis is unreachable: (calls, per seconds).
        period = self._padded_window
        if isinstance(self.fallback, float):
            rate = self.limit * self.fallback
        else:
            rate = self.limit / self._fleet_size()
        if rate >= 1:
            return math.floor(rate), period
        return 1, period / rate  # more processes than calls per window: one each, spread

    def _share_wait(self, now: float) -> float:
        """Seconds until this process's share of the limit has a free slot (0: now)."""
        if self.fallback == "wait":
            return math.inf
        calls, period = self._fallback_share()
        wait = 0.0 if self._pause_until is None else self._pause_until - now
        taken = self._taken_alone
        while taken and taken[0][0] <= now - period:
            taken.popleft()
        if len(taken) >= calls:
            wait = max(wait, taken[-calls][0] + period - now)
        if taken:  # spread over the period, not all at its start
            wait = max(wait, taken[-1][0] + period / calls - now)
        return wait

    async def _acquire_alone(self, deadline: float | None) -> bool:
        """One step of the fallback: take a slot of this process's share, or sleep.

        Returns whether a slot was taken; after a sleep the caller looks at Redis again.
        """
        now = self._clock()
        retry = max(0.0, (self._fallback_until or now) - now)
        wait = self._share_wait(now)
        if wait <= 0:
            self._taken_alone.append((now, uuid.uuid4().hex))
            return True
        if deadline is not None and now + min(wait, retry) > deadline:
            share = (
                "sends nothing while Redis is unreachable (fallback='wait')"
                if self.fallback == "wait"
                else "has no free slot of this process's share of the limit"
            )
            raise DifyTimeoutError(
                f"the shared request budget (workspace {self.workspace!r}) {share} before "
                f"the deadline; Redis at {self._connector.public_url} is retried every "
                f"{self.retry_redis_after:g}s"
            )
        # Not below 50 ms: with retry_redis_after=0 a refused connection would spin.
        await self._sleep(max(0.05, min(wait, retry)))
        return False

    def _in_fallback(self) -> bool:
        if self._fallback_until is None:
            return False
        # Past the retry time, Redis gets tried again (the flag stays until it answers).
        return self._clock() < self._fallback_until

    def _fall_back(self, error: BaseException) -> None:
        now = self._clock()
        if self._outage_since is None:
            self._outage_since = now
            self._pause_until = now + self._padded_window
            self._share_until = None
            self._taken_alone.clear()
            logger.warning(
                "Redis budget at %s is unreachable (%s: %s); %s until it is back",
                self._connector.public_url,
                type(error).__name__,
                str(error)[:200],
                self._fallback_plan(),
            )
        self._fallback_until = now + self.retry_redis_after

    def _fallback_plan(self) -> str:
        per = f"per {self._padded_window:g}s"
        if self.fallback == "local":
            rate = self._fallback.requests_per_minute * self.window / 60.0
            return f"using an in-process budget of {rate:g} requests per {self.window:g}s"
        if self.fallback == "wait":
            return "sending no counted request (fallback='wait')"
        calls, period = self._fallback_share()
        if isinstance(self.fallback, float):
            whose = f"{self.fallback:g} of the limit"
        elif self._fleet is None:
            whose = f"Redis never seen: 1/{_UNKNOWN_FLEET} of the limit"
        else:
            whose = f"1/{self._fleet_size()} of the limit: {self._fleet[0]} processes seen"
        if period != self._padded_window:
            per = f"per {period:g}s"
        return (
            f"pausing counted requests for {self._padded_window:g}s, then sending at most "
            f"{calls} {per} ({whose})"
        )

    def _sharing(self) -> bool:
        if self.fallback in ("local", "wait"):
            return False
        if self._outage_since is not None:
            return True
        if self._share_until is not None and self._clock() >= self._share_until:
            self._share_until = self._pause_until = None
            self._taken_alone.clear()
        return self._share_until is not None

    async def _within_share(self, deadline: float | None) -> bool:
        """Whether this process's share has a slot now (else it slept or raised)."""
        now = self._clock()
        wait = self._share_wait(now)
        if wait <= 0:
            return True
        if deadline is not None and now + wait > deadline:
            raise DifyTimeoutError(
                f"the shared request budget (workspace {self.workspace!r}) has no free slot of "
                "this process's share of the limit before the deadline (Redis was "
                "unreachable moments ago; the share holds one window after it is back)"
            )
        await self._sleep(wait)
        return False

    def _recovered(self) -> None:
        if self._fallback_until is not None or self._outage_since is not None:
            if self.fallback not in ("local", "wait"):
                self._share_until = self._clock() + self._padded_window
            self._fallback_until = None
            self._outage_since = None
            logger.info(
                "Redis budget at %s is reachable again; sharing the workspace window",
                self._connector.public_url,
            )


def check_fallback(fallback: str | float | None, local_rate: float | None) -> str | float:
    if fallback is None:
        return "local" if local_rate is not None else "share"
    if isinstance(fallback, str):
        if fallback not in _FALLBACK_MODES:
            raise ValueError(
                f"fallback must be one of {', '.join(_FALLBACK_MODES)} or a fraction in (0, 1], "
                f"not {fallback!r:.60}"
            )
    elif (
        isinstance(fallback, bool) or not isinstance(fallback, int | float) or not 0 < fallback <= 1
    ):
        raise ValueError(f"fallback must be a fraction in (0, 1] or a mode, not {fallback!r:.60}")
    if local_rate is not None and fallback != "local":
        raise ValueError("fallback_requests_per_minute goes with fallback='local' only")
    return float(fallback) if not isinstance(fallback, str) else fallback
