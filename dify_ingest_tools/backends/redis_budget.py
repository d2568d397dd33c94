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
  wait (the caller's deadline). When Redis is unreachable the budget logs a warning, follows
  its ``fallback`` and tries Redis again every ``retry_redis_after`` seconds.
* **A fallback that keeps the workspace limit.** Every process must go on alone when Redis
  dies, and N processes that each assumed the whole limit sent N times it (four of them put
  24 counted calls in a window of 20). So each budget registers in Redis with every counted
  call (a sorted set of budgets seen in the last ten windows), learns the fleet's size from
  the same script, and by default (``fallback="share"``) takes only its share of the limit
  while Redis is away: the limit divided by the budgets it saw, or a tenth of it when it never
  saw Redis or saw it too long ago. The share starts one window (plus ``latency_allowance``)
  after the outage was noticed: until then the fleet's last slots are still in Dify's window
  and no process knows how many there were. ``"wait"`` sends no counted request until Redis
  is back; ``"local"`` is the old, unsafe whole limit per process; a number in (0, 1] is a
  fixed fraction of the limit. When Redis answers again, the budget first writes the slots it
  took meanwhile back into the window (times from Redis, ages from this host), so a Redis
  that restarted empty still sees them, and keeps to its share (pause included) for one more
  window: processes that have not noticed Redis yet still send theirs, unrecorded.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from dify_ingest_tools._base.clock import Clock, as_clock
from dify_ingest_tools.backends.redis_common import (
    KEY_PREFIX,
    LuaScript,
    RedisConnector,
    check_key_part,
    redis_errors,
)
from dify_ingest_tools.backends.redis_fallback import FLEET_WINDOWS, RedisFallback, check_fallback
from dify_ingest_tools.backends.request_budget import RequestBudget, resolve_requests_per_minute
from dify_ingest_tools.errors import DifyTimeoutError

_PACING = 0.85

# KEYS[1] the window (sorted set: member = unique id, score = ms), KEYS[2] the cooldown key,
# KEYS[3] the fleet (sorted set: member = a budget's id, score = ms it last asked).
# ARGV[1] calls admitted per window, ARGV[2] the window in ms, ARGV[3] this call's member,
# ARGV[4] the pacing gap in ms, ARGV[5] calls admitted back to back before pacing applies,
# ARGV[6] this budget's id, ARGV[7] ms a budget stays in the fleet.
# Returns {1, 0, fleet size} when admitted, else {0, ms to wait, fleet size}.
_ACQUIRE = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[7])
redis.call('ZADD', KEYS[3], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
local fleet = redis.call('ZCARD', KEYS[3])
local cooling = redis.call('PTTL', KEYS[2])
if cooling > 0 then
  return {0, cooling, fleet}
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
  return {0, wait, fleet}
end
if used >= tonumber(ARGV[5]) then
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  local since = now - tonumber(newest[2])
  if since < tonumber(ARGV[4]) then
    return {0, math.max(1, math.ceil(tonumber(ARGV[4]) - since)), fleet}
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window + 1000)
return {1, 0, fleet}
""")

# KEYS[1] the cooldown key; ARGV[1] ms. Only ever lengthens a cooldown already running.
_COOL_DOWN = LuaScript("""
local want = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < want then
  redis.call('SET', KEYS[1], '1', 'PX', want)
end
return want
""")

# KEYS[1] the window; ARGV[1] the window in ms, then pairs of (age in ms, member): the slots
# this budget took while Redis was away, written back (NX: one Redis kept is not doubled).
_RESTORE = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'NX', now - tonumber(ARGV[i]), ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + 1000)
return (#ARGV - 1) / 2
""")

# KEYS[1] the window, KEYS[2] the cooldown, KEYS[3] the fleet; ARGV[1] the window in ms,
# ARGV[2] ms a budget stays in the fleet.
_USAGE = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local used = redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]) + 1, '+inf')
local cooling = redis.call('PTTL', KEYS[2])
if cooling < 0 then
  cooling = 0
end
local fleet = redis.call('ZCOUNT', KEYS[3], now - tonumber(ARGV[2]) + 1, '+inf')
return {used, cooling, fleet}
""")


@dataclass(frozen=True)
class BudgetUsage:
    """A snapshot of the shared window.

    Attributes:
        used: Slots taken in the current window (by every process).
        limit: Slots the window admits (the plan's limit minus the headroom).
        cooldown: Seconds left of a shared 403 cooldown (0 when none).
        processes: Budgets (one per process, usually) that asked for a slot in the last ten
            windows: the fleet whose share each takes when Redis is unreachable.
    """

    used: int
    limit: int
    cooldown: float
    processes: int = 0


class RedisBudget(RedisFallback):
    """A sliding-window budget in Redis, shared by every client naming this URL and workspace.

    Pass it to any number of clients, in any number of processes and machines::

        budget = RedisBudget("redis://cache:6379/0", workspace="acme", limit=100)
        client = AsyncDifyKnowledgeClient(key, url, budget=budget)

    Args:
        url: The Redis server (``redis://``, ``rediss://`` or ``unix://``).
        workspace: The key every process of one Dify workspace shares (e.g. its name or
            tenant id). Different workspaces must use different keys.
        limit: The workspace's knowledge rate limit: requests per ``window``, a number or a
            Dify Cloud plan preset (``"sandbox"`` = 10, ``"professional"`` = 100,
            ``"team"`` = 1000, per 60 s).
        window: Seconds of Dify's sliding window (60). Change it only to match a simulator
            whose window is scaled down.
        requests_per_minute: The same limit named per minute: only with the 60 s window
            (with another ``window``, pass ``limit``). One of the two is required.
        headroom: Fraction of the limit left unused (at least one call), for requests from
            outside this fleet (the console) and timing noise.
        latency_allowance: Seconds each slot is held beyond the window, for the time a request
            takes to reach Dify and for clock differences between Dify's API workers.
        burst: Calls that may go out back to back while the window is nearly empty; past
            that, slots are spaced evenly (default: a tenth of the window, at least 2; the
            window's size disables the spacing).
        fallback: What a process does while Redis is unreachable. ``"share"`` (the default)
            pauses counted requests for one window (the fleet's last slots leave Dify's
            window), then takes the limit divided by the budgets seen in Redis in the last
            ten windows (a tenth of the limit if it never saw Redis, or not for that long),
            so the fleet stays under the workspace limit without Redis. ``"wait"`` sends no
            counted request until Redis answers (a call raises `DifyTimeoutError` at its
            deadline). ``"local"`` takes the whole limit in each process (or
            ``fallback_requests_per_minute``): N processes may then send N times the limit.
            A number in (0, 1] is a fixed fraction of the limit per process, after the same
            pause as ``"share"``. Both keep to the share for one window after Redis is back.
        fallback_requests_per_minute: With ``fallback="local"`` (implied when only this is
            given), the in-process rate per 60 s while Redis is down (default: the limit).
        timeout: Seconds for each Redis command (and for connecting).
        retry_redis_after: Seconds in fallback mode before Redis is tried again.
        clock: The `Clock` deadlines and fallback timing are measured on: pass the client's
            when it has one of its own (deadlines come from it). A ``() -> float`` reading,
            paired with ``sleep``, is accepted too.
        sleep: Only with a reading function as ``clock``: how to wait.
    """

    def __init__(
        self,
        url: str,
        *,
        workspace: str,
        limit: float | str | None = None,
        window: float = 60.0,
        requests_per_minute: float | str | None = None,
        headroom: float = 0.05,
        latency_allowance: float = 0.5,
        burst: int | None = None,
        fallback: str | float | None = None,
        fallback_requests_per_minute: float | None = None,
        timeout: float = 2.0,
        retry_redis_after: float = 5.0,
        clock: Clock | Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if limit is not None and requests_per_minute is not None:
            raise ValueError("pass limit= (requests per window) or requests_per_minute=, not both")
        if requests_per_minute is not None:
            if window != 60.0:
                raise ValueError(
                    f"requests_per_minute= means per 60 s, but window={window!r}: pass "
                    "limit= (requests per window) with another window"
                )
            limit = requests_per_minute
        rate = resolve_requests_per_minute(limit)
        if rate is None:
            raise ValueError("limit is required: requests per window, or a plan preset")
        if window <= 0:
            raise ValueError("window must be > 0 seconds")
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        if latency_allowance < 0 or retry_redis_after < 0:
            raise ValueError("latency_allowance and retry_redis_after must be >= 0")
        #: The workspace's limit: requests per `window` seconds.
        self.workspace_limit = rate
        self.workspace = check_key_part("workspace", workspace)
        self.window = float(window)
        # The limit is per window, so it is not scaled: the window moves instead.
        self.limit = max(1, min(math.floor(rate * (1 - headroom)), math.ceil(rate) - 1))
        self.latency_allowance = float(latency_allowance)
        if burst is not None and burst < 1:
            raise ValueError("burst must be >= 1")
        self.burst = burst if burst is not None else max(2, math.ceil(self.limit / 10))
        self.retry_redis_after = float(retry_redis_after)
        self.fallback = check_fallback(fallback, fallback_requests_per_minute)
        self._connector = RedisConnector(url, timeout=timeout)
        self.clock = as_clock(clock, sleep)
        self._clock = self.clock.monotonic
        self._sleep = self.clock.sleep
        self._fallback = RequestBudget(
            fallback_requests_per_minute or rate * 60.0 / self.window, clock=self.clock
        )
        self._fallback_until: float | None = None
        self._rng = random.Random()
        tag = f"{{{self.workspace}}}"  # a hash tag: every key lives on one cluster slot
        self._window_key = f"{KEY_PREFIX}:budget:{tag}:window"
        self._cooldown_key = f"{KEY_PREFIX}:budget:{tag}:cooldown"
        self._fleet_key = f"{KEY_PREFIX}:budget:{tag}:fleet"
        self._id = uuid.uuid4().hex
        # The fleet as last seen in Redis: (budgets, monotonic time seen).
        self._fleet: tuple[int, float] | None = None
        # When the running outage was noticed (None while Redis answers), and the slots
        # taken since (monotonic time, member), to pace the share and write back later.
        self._outage_since: float | None = None
        self._taken_alone: deque[tuple[float, str]] = deque()
        # Nothing before this (the fleet's slots from before the outage may be in Dify's window
        # still, and lost from a Redis that restarted empty).
        self._pause_until: float | None = None
        # For one window after Redis answers again, the share still holds: processes that
        # have not noticed yet send theirs, and Redis does not count them until they do.
        self._share_until: float | None = None

    # -- the interface ----------------------------------------------------------------------

    async def acquire(self, deadline: float | None = None, *, counted: bool = True) -> None:
        """Take a slot in the shared window, waiting (up to ``deadline``) for one to free.

        Raises:
            DifyTimeoutError: No slot frees before ``deadline``.
        """
        if not counted:
            return
        window_ms = round(self._padded_window * 1000)
        # A little under the even spacing: waking up and asking Redis takes a few ms, which
        # would otherwise add up slot after slot; the window itself stays the hard limit.
        gap_ms = _PACING * window_ms / self.limit
        fleet_ms = round(FLEET_WINDOWS * self._padded_window * 1000)
        while True:
            if self._in_fallback():
                if self.fallback == "local":
                    await self._fallback.acquire(deadline)
                    return
                if await self._acquire_alone(deadline):
                    return
                continue
            # Back from an outage (or about to try Redis again): the share still holds.
            if self._sharing() and not await self._within_share(deadline):
                continue
            member = uuid.uuid4().hex
            args = [self.limit, window_ms, member, gap_ms, self.burst, self._id, fleet_ms]
            keys = [self._window_key, self._cooldown_key, self._fleet_key]
            try:
                if self._outage_since is not None:
                    await self._write_back(window_ms, deadline)
                reply = await self._run(_ACQUIRE, keys, args, deadline, "a budget slot")
            except _RedisDown as down:
                self._fall_back(down.error)
                continue
            self._recovered()
            granted, wait_ms = int(reply[0]), int(reply[1])
            self._fleet = (max(1, int(reply[2])), self._clock())
            if granted:
                if self._share_until is not None:
                    self._taken_alone.append((self._clock(), member))
                return
            # A little jitter so processes woken by the same expiry do not all retry at once.
            spacing = self.window / self.limit
            wait = wait_ms / 1000 + self._rng.uniform(0, min(0.25, spacing / 4))
            if deadline is not None and self._clock() + wait > deadline:
                raise DifyTimeoutError(
                    f"the shared request budget ({self.workspace_limit:g} per "
                    f"{self.window:g}s, workspace {self.workspace!r}) has no free slot before "
                    "the deadline"
                )
            await self._sleep(wait)

    async def report_rate_limited(self, cooldown: float) -> None:
        """Pause counted requests of every process for ``cooldown`` seconds."""
        await self._fallback.report_rate_limited(cooldown)
        if self._in_fallback():
            return
        keys = [self._cooldown_key]
        try:
            await self._run(_COOL_DOWN, keys, [max(1, round(cooldown * 1000))], None, "a cooldown")
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
        window_ms = round(self._padded_window * 1000)
        fleet_ms = round(FLEET_WINDOWS * self._padded_window * 1000)
        client = self._connector.client()
        keys = [self._window_key, self._cooldown_key, self._fleet_key]
        used, cooling, fleet = await _USAGE(client, keys, [window_ms, fleet_ms])
        return BudgetUsage(
            used=int(used), limit=self.limit, cooldown=int(cooling) / 1000, processes=int(fleet)
        )

    @property
    def in_fallback(self) -> bool:
        """Whether Redis was unreachable and has not answered since (the fallback is in use)."""
        return self._outage_since is not None

    @property
    def requests_per_minute(self) -> float:
        """The limit per 60 s (`BudgetBackend`): ``limit`` scaled from ``window`` to a minute."""
        return self.workspace_limit * 60.0 / self.window

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._connector.public_url!r}, "
            f"workspace={self.workspace!r}, limit={self.workspace_limit:g}, "
            f"window={self.window:g})"
        )

    # -- Redis and the fallback -------------------------------------------------------------

    async def _run(
        self,
        script: LuaScript,
        keys: list[str],
        args: list[Any],
        deadline: float | None,
        what: str,
    ) -> Any:
        timeout = self._connector.timeout
        if deadline is not None:
            left = deadline - self._clock()
            if left <= 0:
                raise DifyTimeoutError(f"the deadline passed while waiting for {what}")
            timeout = min(timeout, left)
        try:
            return await asyncio.wait_for(script(self._connector.client(), keys, args), timeout)
        except asyncio.TimeoutError as exc:
            if timeout < self._connector.timeout:
                raise DifyTimeoutError(f"the deadline passed while waiting for {what}") from None
            raise _RedisDown(exc) from None
        except redis_errors() as exc:
            raise _RedisDown(exc) from None

    async def _write_back(self, window_ms: int, deadline: float | None) -> None:
        now = self._clock()
        args: list[Any] = [window_ms]
        for at, member in self._taken_alone:
            age_ms = round((now - at) * 1000)
            if age_ms < window_ms:
                args += [age_ms, member]
        if len(args) > 1:
            await self._run(_RESTORE, [self._window_key], args, deadline, "the budget")


class _RedisDown(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
