"""`RedisStatusCache`: processes waiting on the same batch share one poll per interval.

Each client's monitor already shares polls inside one process. Across processes, every
``indexing-status`` answer is kept in Redis for ``ttl`` seconds; a process that needs the
status reads it from there if it is fresh enough, else one process — whichever takes a short
lock first (single flight) — asks Dify and stores the answer while the others wait for it. So
N processes waiting on one batch cost about one process's requests.

The answer is stored as Dify sent it (the raw body), so every process parses and judges it
itself; errors are never cached (each process sees its own). When Redis is unreachable the
client polls Dify directly and logs a warning (once per outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from ._redis import KEY_PREFIX, LuaScript, RedisConnector, check_key_part, redis_errors

__all__ = ["RedisStatusCache"]

logger = logging.getLogger("dify_ingest_tools")

# Delete the lock only if it is still ours (it may have expired and been taken by another).
_RELEASE = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
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
        base = f"{KEY_PREFIX}:polls:{{{self.namespace}}}:{digest[:32]}"
        value_key, lock_key = f"{base}:status", f"{base}:lock"
        token = uuid.uuid4().hex
        try:
            client = self._connector.client()
            while True:
                cached = await client.get(value_key)
                if cached is not None:
                    self._up()
                    self.hits += 1
                    return cached if isinstance(cached, bytes) else str(cached).encode()
                if await client.set(lock_key, token, nx=True, px=round(self.lock_timeout * 1000)):
                    self._up()
                    break
                # Another process is asking Dify: wait for its answer, not past the deadline.
                if deadline is not None and time.monotonic() >= deadline:
                    return await fetch()
                await asyncio.sleep(0.02)
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
            # Shielded: a cancelled waiter still frees the lock for the others (if Redis
            # fails here, the lock expires on its own).
            with contextlib.suppress(*redis_errors()):
                await asyncio.shield(_RELEASE(client, [lock_key], [token]))

    async def aclose(self) -> None:
        """Close idle Redis connections of the running loop; the cache stays usable."""
        await self._connector.release()

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
