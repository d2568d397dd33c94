"""`RedisStatusCache`: processes waiting on the same batch share one poll per interval.

Each client's monitor already shares polls inside one process. Across processes, every
``indexing-status`` answer is kept in Redis for ``ttl`` seconds; a process that needs the
status reads it from there if it is fresh enough, else one process — whichever takes a short
lock first (single flight) — asks Dify and stores the answer while the others wait for it. So
N processes waiting on one batch cost about one process's requests.

The others wait without asking Redis again and again: when the one that asked Dify has stored
the answer (or given up its lock), it publishes on the key's channel, and each process keeps
one pub/sub connection per event loop (a pattern subscription for the namespace, opened on the
first wait and closed after a few idle seconds or by `aclose`) that wakes its waiters. A waiter
also looks again on its own every quarter of ``lock_timeout``, in case a message was lost or
the process asking Dify died (its lock then expires without a word). A
follower costs about three commands per poll round (a read, a lock attempt, the read after the
wake-up) where the former 20 ms loop cost a hundred per second.

The answer is stored as Dify sent it (the raw body), so every process parses and judges it
itself; errors are never cached (each process sees its own). When Redis is unreachable the
client polls Dify directly and logs a warning (once per outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dify_ingest_tools.backends.redis_common import (
    KEY_PREFIX,
    LuaScript,
    RedisConnector,
    check_key_part,
    redis_errors,
)

logger = logging.getLogger("dify_ingest_tools")

# How often a waiter looks on its own, as a fraction of the lock timeout: only a lost message
# or a fetcher that died (its lock expires, nobody publishes) needs it, so it can be rare.
_RECHECK = 0.25
# Seconds an unused pub/sub connection stays open: polls come round every few seconds.
_LISTENER_IDLE = 5.0

# Delete the lock only if it is still ours (it may have expired and been taken by another),
# then wake the waiters in every case: the answer is stored, or the lock is free to take.
_RELEASE = LuaScript("""
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  released = redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[2], '1')
return released
""")


class RedisStatusCache:
    """A short-lived, shared cache of ``indexing-status`` answers (``[redis]`` extra).

    Pass it to every client of the fleet: ``AsyncDifyKnowledgeClient(..., status_cache=cache)``.

    Args:
        url: The Redis server (``redis://``, ``rediss://`` or ``unix://``).
        ttl: Seconds an answer is reused. Around the shortest poll interval of the fleet:
            longer saves more requests and shows progress later.
        namespace: Separates unrelated fleets sharing one Redis.
        lock_timeout: Seconds the process fetching for the others may hold the lock; past
            it (that process died), another one fetches.
        timeout: Seconds for each Redis command.
        retry_redis_after: Seconds of polling Dify directly after a Redis failure.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 1.0,
        namespace: str = "default",
        lock_timeout: float = 10.0,
        timeout: float = 2.0,
        retry_redis_after: float = 5.0,
    ) -> None:
        if ttl <= 0 or lock_timeout <= 0:
            raise ValueError("ttl and lock_timeout must be > 0 seconds")
        self.ttl = float(ttl)
        self.namespace = check_key_part("namespace", namespace)
        self.lock_timeout = float(lock_timeout)
        self.retry_redis_after = float(retry_redis_after)
        self._connector = RedisConnector(url, timeout=timeout)
        self._down_until: float | None = None
        self._prefix = f"{KEY_PREFIX}:polls:{{{self.namespace}}}:"
        self._wakeups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Wakeups] = (
            weakref.WeakKeyDictionary()
        )
        #: Answers served from the cache (for benchmarks and tests).
        self.hits = 0
        #: Answers this process fetched from Dify for the fleet.
        self.fetches = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._connector.public_url!r}, ttl={self.ttl:g})"

    async def get_or_fetch(
        self,
        scope: str,
        dataset_id: str,
        batch: str,
        fetch: Callable[[], Awaitable[bytes]],
        deadline: float | None = None,
    ) -> bytes:
        """A fresh enough answer from the cache, else from ``fetch`` (one process at a time).

        Raises:
            Whatever ``fetch`` raises (errors are not shared).
        """
        if self._down_until is not None and time.monotonic() < self._down_until:
            return await fetch()
        digest = hashlib.sha256(f"{scope}\0{dataset_id.lower()}\0{batch}".encode()).hexdigest()
        base = f"{self._prefix}{digest[:32]}"
        value_key, lock_key, channel = f"{base}:status", f"{base}:lock", f"{base}:ready"
        token = uuid.uuid4().hex
        recheck = max(0.05, self.lock_timeout * _RECHECK)
        try:
            client = self._connector.client()
            wakeups = self._wakeups_of_this_loop()
            while True:
                # Listening before looking: an answer stored after the read still wakes us.
                async with wakeups.watch(channel) as woken:
                    cached = await client.get(value_key)
                    if cached is not None:
                        self._up()
                        self.hits += 1
                        return cached if isinstance(cached, bytes) else str(cached).encode()
                    lock_ms = round(self.lock_timeout * 1000)
                    if await client.set(lock_key, token, nx=True, px=lock_ms):
                        self._up()
                        break
                    # Another process is asking Dify: wait for its word, not past the deadline.
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return await fetch()
                    await woken(recheck if left is None else min(recheck, left))
        except redis_errors() as error:
            self._down(error)
            return await fetch()
        try:
            raw = await fetch()
            self.fetches += 1
            try:
                await client.set(value_key, raw, px=round(self.ttl * 1000))
            except redis_errors() as error:
                self._down(error)
            return raw
        finally:
            # Shielded: a cancelled fetch still frees the lock and wakes the others (if Redis
            # fails here, the lock expires on its own and they look again after a backoff).
            with contextlib.suppress(*redis_errors()):
                await asyncio.shield(_RELEASE(client, [lock_key], [token, channel]))

    async def aclose(self) -> None:
        """Close the idle connections of the running loop; the cache stays usable."""
        with contextlib.suppress(RuntimeError):
            wakeups = self._wakeups.get(asyncio.get_running_loop())
            if wakeups is not None:
                await wakeups.stop_if_idle()
        await self._connector.release()

    def _wakeups_of_this_loop(self) -> _Wakeups:
        loop = asyncio.get_running_loop()
        wakeups = self._wakeups.get(loop)
        if wakeups is None:
            pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._prefix) + "*"
            wakeups = self._wakeups[loop] = _Wakeups(self._connector, pattern)
        return wakeups

    def _down(self, error: BaseException) -> None:
        if self._down_until is None:
            logger.warning(
                "shared polls: Redis at %s is unreachable (%s: %s); polling Dify directly",
                self._connector.public_url,
                type(error).__name__,
                str(error)[:200],
            )
        self._down_until = time.monotonic() + self.retry_redis_after

    def _up(self) -> None:
        self._down_until = None


class _Wakeups:
    """One pattern subscription per event loop, waking the waiters of each channel."""

    def __init__(self, connector: RedisConnector, pattern: str) -> None:
        self._connector = connector
        self._pattern = pattern
        self._waiters: dict[bytes, set[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self._last_used = 0.0

    @contextlib.asynccontextmanager
    async def watch(self, channel: str) -> AsyncIterator[Callable[[float], Awaitable[None]]]:
        """Listen on ``channel``; yields ``woken(timeout)``, which returns when a message
        comes (or the listener stops) or after ``timeout`` seconds."""
        key = channel.encode()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, set()).add(future)

        async def woken(timeout: float) -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), timeout)

        try:
            await self._listening()
            yield woken
        finally:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[key]
            future.cancel()
            self._last_used = time.monotonic()

    async def stop_if_idle(self) -> None:
        task = self._task
        if task is None or self._waiters:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _listening(self) -> None:
        if self._task is None:
            self._ready = asyncio.Event()
            self._error = None
            self._task = asyncio.get_running_loop().create_task(self._listen(self._ready))
        ready = self._ready
        await ready.wait()
        if self._error is not None and ready is self._ready:
            raise self._error

    async def _listen(self, ready: asyncio.Event) -> None:
        pubsub = self._connector.client().pubsub()
        try:
            await asyncio.wait_for(self._subscribe(pubsub), self._connector.timeout)
            ready.set()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None and message.get("type") == "pmessage":
                    self._wake(message.get("channel"))
                if not self._waiters and time.monotonic() - self._last_used > _LISTENER_IDLE:
                    return
        except redis_errors() as error:
            if not ready.is_set():
                self._error = error
        finally:
            if self._ready is ready:
                self._task = None
            ready.set()
            for channel in list(self._waiters):
                self._wake(channel)
            with contextlib.suppress(*redis_errors()):
                await pubsub.aclose()

    async def _subscribe(self, pubsub: Any) -> None:
        await pubsub.psubscribe(self._pattern)
        # Subscribed once Redis says so: a message published before that would be missed.
        while True:
            message = await pubsub.get_message(timeout=self._connector.timeout)
            if message is not None and message.get("type") == "psubscribe":
                return

    def _wake(self, channel: object) -> None:
        if isinstance(channel, str):
            channel = channel.encode()
        for future in self._waiters.get(channel, ()) if isinstance(channel, bytes) else ():
            if not future.done():
                future.set_result(None)
