"""Fixtures for the LlamaIndex adapter tests: moving clocks and a recording event handler.

The simulator, its URLs and the clients come from ``tests/conftest.py``. Nothing here imports
LlamaIndex at collection time: each test module skips itself when it is not installed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from dify_ingest_tools.testing import ManualClock

if TYPE_CHECKING:
    from .helpers import Recorder

#: Poll fast: documents move on the manual clock, polls happen in real time.
QUICK: dict[str, Any] = {"poll_interval": 0.01, "max_poll_interval": 0.02}


@pytest.fixture
async def advancing(clock: ManualClock) -> AsyncIterator[None]:
    """Move the simulator's clock forward in the background (0.2 s every 5 ms)."""

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


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A handler on LlamaIndex's root dispatcher, removed after the test."""
    from llama_index.core.instrumentation import get_dispatcher

    from .helpers import Recorder

    root = get_dispatcher()
    handler = Recorder()
    root.add_event_handler(handler)
    yield handler
    root.event_handlers = [h for h in root.event_handlers if h is not handler]
