"""Shared fixtures: a real Dify simulator over loopback HTTP, and clients pointed at it."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools._base.clock import FakeClock
from dify_ingest_tools.testing import DifySimulator, ManualClock

# Every client records its uploads in a pending ledger (by default under the user cache
# dir): the test session, and every process it starts, writes to a throwaway one instead.
if "DIFY_INGEST_LEDGER" not in os.environ:
    _LEDGER_DIR = tempfile.mkdtemp(prefix="dify-ingest-tests-")
    atexit.register(shutil.rmtree, _LEDGER_DIR, ignore_errors=True)
    os.environ["DIFY_INGEST_LEDGER"] = str(Path(_LEDGER_DIR) / "ledger.db")

# The fixture users get: `pytest_plugins = ["dify_ingest_tools.testing.pytest_plugin"]`.
pytest_plugins = ["dify_ingest_tools.testing.pytest_plugin"]

#: Real Dify 1.14.1 exchanges, kept in the repository (tests/data/README.md).
RECORDED = Path(__file__).resolve().parent / "data" / "recorded"

# Small backoffs keep retry tests in milliseconds; the schedule itself is unit-tested.
FAST = {"backoff_base": 0.001, "backoff_max": 0.004, "rate_limit_cooldown": 0.001}
#: Poll fast: documents move on the manual clock, polls happen in real time.
QUICK: dict[str, Any] = {"poll_interval": 0.01, "max_poll_interval": 0.02}


async def polls_until(sim: DifySimulator, count: int) -> None:
    """Let a wait poll ``count`` more times (real time; the manual clock stands still)."""
    start = len(sim.requests_for(route="indexing_status"))
    for _ in range(1000):
        if len(sim.requests_for(route="indexing_status")) >= start + count:
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the wait stopped polling")


def load_recording(name: str) -> dict[str, Any]:
    """One recording of ``tests/data/recorded``; a missing one fails the test (never skips)."""
    data: dict[str, Any] = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> DifySimulator:
    """A simulator on a manual clock: documents move only when a test advances time."""
    return DifySimulator(clock=clock)


@pytest.fixture
def dataset_id(sim: DifySimulator) -> str:
    return sim.create_dataset("tests")


@pytest.fixture
async def base_url(sim: DifySimulator) -> AsyncIterator[str]:
    async with sim.serve() as url:
        yield url


@pytest.fixture
async def client(sim: DifySimulator, base_url: str) -> AsyncIterator[AsyncDifyKnowledgeClient]:
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, **FAST) as value:
        yield value


@pytest.fixture
def fake_clock() -> FakeClock:
    """The client's time, moved by the test (or by `FakeClock.autojump`), never by the machine.

    A module that also wants the simulator's documents on it overrides ``clock``::

        @pytest.fixture
        def clock(fake_clock: FakeClock) -> FakeClock:
            return fake_clock
    """
    return FakeClock()


@pytest.fixture
async def fake_client(
    sim: DifySimulator, base_url: str, fake_clock: FakeClock
) -> AsyncIterator[AsyncDifyKnowledgeClient]:
    """A client on `fake_clock`, which jumps to the next timer whenever everything waits on it
    (never while an HTTP answer is on its way): a 600 s wait takes milliseconds, and how busy
    the machine is cannot change how it ends."""
    async with (
        AsyncDifyKnowledgeClient(sim.api_key, base_url, clock=fake_clock, **FAST) as value,
        fake_clock.autojump(),
    ):
        yield value


@pytest.fixture
def threaded_url(sim: DifySimulator) -> Iterator[str]:
    """The simulator on its own thread and loop, for blocking clients."""
    with sim.serve_in_thread() as url:
        yield url


@pytest.fixture
def sync_client(sim: DifySimulator, threaded_url: str) -> Iterator[DifyKnowledgeClient]:
    with DifyKnowledgeClient(sim.api_key, threaded_url, **FAST) as value:
        yield value


@pytest.fixture
async def advancing(clock: ManualClock) -> AsyncIterator[None]:
    """Move the simulator's clock (0.2 s every 5 ms) from a task on the test's loop."""

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.005)
            clock.advance(0.2)

    task = asyncio.create_task(tick())
    yield
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
def ticker(clock: ManualClock) -> Iterator[None]:
    """Like `advancing`, from a thread: for blocking calls, which block the test's thread."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.005):
            clock.advance(0.2)

    thread = threading.Thread(target=tick)
    thread.start()
    yield
    stop.set()
    thread.join()
