"""`RedisBudget`: one knowledge rate-limit window for every process of a workspace.

Design notes:

* **Dify's semantics.** Dify keeps a sorted set of request times per workspace, drops those
  older than 60 s, and refuses a request when more than the plan's limit remain — after
  adding it, so refused calls count too. This budget keeps the same kind of window in Redis
  (a sorted set per workspace key) and records every attempt it lets through, whether Dify
  then accepts or refuses it. Only requests Dify counts take a slot
  (`counts_against_knowledge_limit`); status polls and listings pass straight through.
* **Atomic.** Check and add happen in one Lua script on the server, so two processes can never
  both take the last slot. Times come from Redis ``TIME``, never from the hosts, so workers
  on machines with skewed clocks still share one timeline.
* **A safety margin.** The window admits ``headroom`` fewer calls than the plan allows (5 %,
  at least one), and each slot is held ``latency_allowance`` seconds longer than the window:
  a request reaches Dify a little after its slot was taken and Dify's API workers each use
  their own clock, so without the margin N+1 calls could land in one window as Dify counts.
* **No bursts under load.** Up to a tenth of the window (at least two calls) may go out back
  to back; beyond that, slots are spaced about ``(window + latency_allowance) / limit`` apart, so a
  busy fleet arrives at Dify evenly rather than in bursts each time old slots expire (a
  burst queues on the server, and the queueing delay is exactly the jitter that would let
  N+1 calls land in Dify's window).
* **A shared cooldown.** A 403 rate limit seen by any process (the console or another tool
  may use the workspace too) sets a key every process checks before taking a slot.
* **Never blocks forever.** Every Redis command is bounded (``timeout``) and so is every
  wait (the caller's deadline). When Redis is unreachable the budget falls back to an
  in-process `RequestBudget`, logs a warning, and tries Redis again every
  ``retry_redis_after`` seconds; a restarted Redis starts from an empty window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ._budget import RequestBudget, resolve_requests_per_minute
from ._redis import KEY_PREFIX, LuaScript, RedisConnector, check_key_part, redis_errors
from .errors import DifyTimeoutError

__all__ = ["BudgetUsage", "RedisBudget"]

_PACING = 0.85

logger = logging.getLogger("dify_ingest_tools")

# KEYS[1] the window (sorted set: member = unique id, score = ms), KEYS[2] the cooldown key.
# ARGV[1] calls admitted per window, ARGV[2] the window in ms, ARGV[3] this call's member,
# ARGV[4] the pacing gap in ms, ARGV[5] calls admitted back to back before pacing applies.
# Returns {1, 0} when admitted, else {0, ms to wait}.
_ACQUIRE = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cooling = redis.call('PTTL', KEYS[2])
if cooling > 0 then
  return {0, cooling}
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now + 1
  if wait < 1 then
    wait = 1
  end
  return {0, wait}
end
if used >= tonumber(ARGV[5]) then
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  local since = now - tonumber(newest[2])
  if since < tonumber(ARGV[4]) then
    return {0, math.max(1, math.ceil(tonumber(ARGV[4]) - since))}
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window + 1000)
return {1, 0}
""")

# KEYS[1] the cooldown key; ARGV[1] ms. Only ever lengthens a cooldown already running.
_COOL_DOWN = LuaScript("""
local want = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < want then
  redis.call('SET', KEYS[1], '1', 'PX', want)
end
return want
""")

# KEYS[1] the window, KEYS[2] the cooldown; ARGV[1] the window in ms.
_USAGE = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local used = redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]) + 1, '+inf')
local cooling = redis.call('PTTL', KEYS[2])
if cooling < 0 then
  cooling = 0
end
return {used, cooling}
""")


@dataclass(frozen=True)
class BudgetUsage:
    """A snapshot of the shared window.

    Attributes:
        used: Slots taken in the current window (by every process).
        limit: Slots the window admits (the plan's limit minus the headroom).
        cooldown: Seconds left of a shared 403 cooldown (0 when none).
    """

    used: int
    limit: int
    cooldown: float


class RedisBudget:
    """A sliding-window budget in Redis, shared by every client naming this URL and workspace.

    Pass it to any number of clients, in any number of processes and machines::

        budget = RedisBudget("redis://cache:6379/0", workspace="acme", requests_per_minute=100)
        client = AsyncDifyKnowledgeClient(key, url, budget=budget)

    Args:
        url: The Redis server (``redis://``, ``rediss://`` or ``unix://``).
        workspace: The key every process of one Dify workspace shares (e.g. its name or
            tenant id). Different workspaces must use different keys.
        requests_per_minute: The workspace's knowledge rate limit: a number or a Dify Cloud
            plan preset (``"sandbox"`` = 10, ``"professional"`` = 100, ``"team"`` = 1000).
        window: Seconds of Dify's sliding window (60). Change it only to match a simulator
            whose window is scaled down; the limit is then per ``window``.
        headroom: Fraction of the limit left unused (at least one call), for requests from
            outside this fleet (the console) and timing noise.
        latency_allowance: Seconds each slot is held beyond the window, for the time a request
            takes to reach Dify and for clock differences between Dify's API workers.
        burst: Calls that may go out back to back while the window is nearly empty; past
            that, slots are spaced evenly (default: a tenth of the window, at least 2; the
            window's size disables the spacing).
        fallback_requests_per_minute: The in-process budget used while Redis is down (default:
            ``requests_per_minute``; give the limit divided by the number of processes to stay
            under it even then).
        timeout: Seconds for each Redis command (and for connecting).
        retry_redis_after: Seconds in fallback mode before Redis is tried again.
        clock: Monotonic seconds (injectable for tests), for deadlines and fallback timing.
        sleep: Async sleep (injectable for tests).
    """

    def __init__(
        self,
        url: str,
        *,
        workspace: str,
        requests_per_minute: float | str,
        window: float = 60.0,
        headroom: float = 0.05,
        latency_allowance: float = 0.5,
        burst: int | None = None,
        fallback_requests_per_minute: float | None = None,
        timeout: float = 2.0,
        retry_redis_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        rate = resolve_requests_per_minute(requests_per_minute)
        if rate is None:
            raise ValueError("requests_per_minute is required (a number or a plan preset)")
        if window <= 0:
            raise ValueError("window must be > 0 seconds")
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        if latency_allowance < 0 or retry_redis_after < 0:
            raise ValueError("latency_allowance and retry_redis_after must be >= 0")
        self.requests_per_minute = rate
        self.workspace = check_key_part("workspace", workspace)
        self.window = float(window)
        # The limit is per window, so it is not scaled: the window moves instead.
        self.limit = max(1, min(math.floor(rate * (1 - headroom)), math.ceil(rate) - 1))
        self.latency_allowance = float(latency_allowance)
        if burst is not None and burst < 1:
            raise ValueError("burst must be >= 1")
        self.burst = burst if burst is not None else max(2, math.ceil(self.limit / 10))
        self.retry_redis_after = float(retry_redis_after)
        self._connector = RedisConnector(url, timeout=timeout)
        self._clock = clock
        self._sleep = sleep
        self._fallback = RequestBudget(
            fallback_requests_per_minute or rate * 60.0 / self.window, clock=clock, sleep=sleep
        )
        self._fallback_until: float | None = None
        self._rng = random.Random()
        tag = f"{{{self.workspace}}}"  # a hash tag: both keys live on one cluster slot
        self._window_key = f"{KEY_PREFIX}:budget:{tag}:window"
        self._cooldown_key = f"{KEY_PREFIX}:budget:{tag}:cooldown"

    # -- the interface ----------------------------------------------------------------------

    async def acquire(self, deadline: float | None = None, *, counted: bool = True) -> None:
        """Take a slot in the shared window, waiting (up to ``deadline``) for one to free.

        Raises:
            DifyTimeoutError: No slot frees before ``deadline``.
        """
        if not counted:
            return
        window_ms = round((self.window + self.latency_allowance) * 1000)
        # A little under the even spacing: waking up and asking Redis takes a few ms, which
        # would otherwise add up slot after slot; the window itself stays the hard limit.
        gap_ms = _PACING * window_ms / self.limit
        while True:
            if self._in_fallback():
                await self._fallback.acquire(deadline)
                return
            member = uuid.uuid4().hex
            args = [self.limit, window_ms, member, gap_ms, self.burst]
            try:
                reply = await self._run(_ACQUIRE, args, deadline, "a budget slot")
            except _RedisDown as down:
                self._fall_back(down.error)
                continue
            self._recovered()
            granted, wait_ms = int(reply[0]), int(reply[1])
            if granted:
                return
            # A little jitter so processes woken by the same expiry do not all retry at once.
            spacing = self.window / self.limit
            wait = wait_ms / 1000 + self._rng.uniform(0, min(0.25, spacing / 4))
            if deadline is not None and self._clock() + wait > deadline:
                raise DifyTimeoutError(
                    f"the shared request budget ({self.requests_per_minute:g} per "
                    f"{self.window:g}s, workspace {self.workspace!r}) has no free slot before "
                    "the deadline"
                )
            await self._sleep(wait)

    async def report_rate_limited(self, cooldown: float) -> None:
        """Pause counted requests of every process for ``cooldown`` seconds."""
        await self._fallback.report_rate_limited(cooldown)
        if self._in_fallback():
            return
        try:
            await self._run(_COOL_DOWN, [max(1, round(cooldown * 1000))], None, "the cooldown")
        except _RedisDown as down:
            self._fall_back(down.error)

    async def aclose(self) -> None:
        """Close idle Redis connections of the running loop; the budget stays usable."""
        await self._connector.release()

    async def __aenter__(self) -> RedisBudget:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- inspection -------------------------------------------------------------------------

    async def usage(self) -> BudgetUsage:
        """How full the shared window is right now (one Redis call).

        Raises:
            redis.exceptions.RedisError: Redis is unreachable (no fallback for a read).
        """
        window_ms = round((self.window + self.latency_allowance) * 1000)
        client = self._connector.client()
        used, cooling = await _USAGE(client, [self._window_key, self._cooldown_key], [window_ms])
        return BudgetUsage(used=int(used), limit=self.limit, cooldown=int(cooling) / 1000)

    @property
    def in_fallback(self) -> bool:
        """Whether Redis was unreachable and the in-process fallback is in use."""
        return self._in_fallback()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._connector.public_url!r}, "
            f"workspace={self.workspace!r}, requests_per_minute={self.requests_per_minute:g})"
        )

    # -- Redis and the fallback -------------------------------------------------------------

    async def _run(
        self, script: LuaScript, args: list[Any], deadline: float | None, what: str
    ) -> Any:
        timeout = self._connector.timeout
        if deadline is not None:
            left = deadline - self._clock()
            if left <= 0:
                raise DifyTimeoutError(f"the deadline passed while waiting for {what}")
            timeout = min(timeout, left)
        keys = (
            [self._window_key, self._cooldown_key] if script is _ACQUIRE else [self._cooldown_key]
        )
        try:
            return await asyncio.wait_for(script(self._connector.client(), keys, args), timeout)
        except asyncio.TimeoutError as exc:
            if timeout < self._connector.timeout:
                raise DifyTimeoutError(f"the deadline passed while waiting for {what}") from None
            raise _RedisDown(exc) from None
        except redis_errors() as exc:
            raise _RedisDown(exc) from None

    def _in_fallback(self) -> bool:
        if self._fallback_until is None:
            return False
        # Past the retry time, Redis gets tried again (the flag stays until it answers).
        return self._clock() < self._fallback_until

    def _fall_back(self, error: BaseException) -> None:
        if self._fallback_until is None:
            logger.warning(
                "Redis budget at %s is unreachable (%s: %s); using an in-process budget of "
                "%g requests per %gs until it is back",
                self._connector.public_url,
                type(error).__name__,
                str(error)[:200],
                self._fallback.requests_per_minute * self.window / 60.0,
                self.window,
            )
        self._fallback_until = self._clock() + self.retry_redis_after

    def _recovered(self) -> None:
        if self._fallback_until is not None:
            self._fallback_until = None
            logger.info(
                "Redis budget at %s is reachable again; sharing the workspace window",
                self._connector.public_url,
            )


class _RedisDown(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
