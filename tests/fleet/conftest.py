"""Redis for the fleet tests.

``DIFY_INGEST_TEST_REDIS_URL`` points the tests at a running server (CI starts one). Without
it, a ``redis-server`` child process is started on a free loopback port if the binary is on
PATH; otherwise the Redis tests are skipped — unless ``DIFY_INGEST_REQUIRE_REDIS=1`` (CI),
which turns the skip into a failure. Every test uses its own workspace and namespace keys,
so a shared server needs no flushing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from .redis_server import RedisServer


def _unavailable(reason: str) -> None:
    if os.environ.get("DIFY_INGEST_REQUIRE_REDIS") == "1":
        pytest.fail(f"Redis is required here (DIFY_INGEST_REQUIRE_REDIS=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server URL for the whole session."""
    url = os.environ.get("DIFY_INGEST_TEST_REDIS_URL")
    if url:
        yield url
        return
    try:
        server = RedisServer().start()
    except FileNotFoundError:
        _unavailable("redis-server is not installed (apt-get install redis-server)")
        return
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: object) -> Iterator[RedisServer]:
    """A Redis server of this test alone (for tests that stop and restart it)."""
    try:
        server = RedisServer().start()
    except FileNotFoundError:
        _unavailable("redis-server is not installed (apt-get install redis-server)")
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workspace() -> str:
    """A workspace key no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
