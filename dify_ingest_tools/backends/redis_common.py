"""The Redis connection the shared backends use: optional import, one client per loop.

``redis.asyncio`` connections belong to the event loop that opened them, and one budget or
cache may serve an async client and a blocking one (whose loop runs in a worker thread), so
each loop gets its own client, opened on first use.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

from yarl import URL

if TYPE_CHECKING:
    from redis.asyncio import Redis

#: Every key this package writes starts with this.
KEY_PREFIX = "dify-ingest"
_SCHEMES = ("redis", "rediss", "unix")


def _import_redis() -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise ImportError(
            "the Redis backends need the redis package: pip install 'dify-ingest-tools[redis]'"
        ) from exc
    return redis_asyncio


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis call raises when the server is down, slow or refuses the command."""
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


def public_redis_url(url: str) -> str:
    """The URL without its password, for logs, reprs and errors."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "(unparseable Redis URL)"
    if parsed.password is not None:
        parsed = parsed.with_password("***")
    return str(parsed)


def check_key_part(name: str, value: str) -> str:
    """A workspace or namespace name: non-empty text that cannot break a key's hash tag."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > 200 or any(ch in value for ch in "{}\r\n\0"):
        raise ValueError(f"{name} must be at most 200 characters, without braces or newlines")
    return value


class RedisConnector:
    """Opens (lazily) and releases the Redis client of each event loop.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        timeout: Seconds for connecting and for each command; a dead server fails fast.
    """

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        if not isinstance(url, str) or URL(url).scheme not in _SCHEMES:
            raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {url!r}")
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        self._module = _import_redis()
        self.url = url
        self.public_url = public_redis_url(url)
        self.timeout = float(timeout)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = (
            weakref.WeakKeyDictionary()
        )

    def client(self) -> Redis:
        """The running loop's client (created on first use; connects on first command)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = self._module.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                # One immediate retry replaces a pooled connection a Redis restart killed;
                # more would only delay the fallback when Redis is really down.
                retry=Retry(NoBackoff(), 1),
            )
            self._clients[loop] = client
        return client

    async def release(self) -> None:
        """Close the running loop's idle connections; in-use ones finish their command first.

        Several clients may share one backend: closing one must not cut another's command.
        The backend stays usable: the next command opens a new connection.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - always called from a coroutine
            return
        client = self._clients.get(loop)
        if client is None:
            return
        pool = client.connection_pool
        try:
            await pool.disconnect(inuse_connections=False)
        except redis_errors():  # pragma: no cover - closing a broken socket
            pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.public_url!r})"


class LuaScript:
    """A Lua script run by SHA (EVALSHA), loaded again if the server forgot it (a restart)."""

    def __init__(self, source: str) -> None:
        import hashlib

        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, client: Redis, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
