"""Fixtures of the LangChain adapter tests: a moving simulator clock, and a seeded simulator.

Nothing here imports LangChain: each test module skips itself when ``langchain_core`` is
missing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dify_ingest_tools.testing import DifySimulator, ManualClock

#: Poll options that keep waits in milliseconds (documents move on the simulator's clock).
QUICK: dict[str, Any] = {"poll_interval": 0.01, "max_poll_interval": 0.02}

#: Paragraphs the seeded simulator serves; each is one segment mentioning "refund".
REFUND_FAQ = (
    "Refund policy: a full refund is possible within 30 days of purchase.",
    "A refund is paid back to the card used for the purchase within five days.",
    "A refund for a gift goes to the person who bought it.",
    "Shipping costs are part of the refund when the item arrived damaged.",
)


@pytest.fixture
def ticker(clock: ManualClock) -> Iterator[None]:
    """Move the simulator's clock (0.2 s every 5 ms) from a thread: for blocking calls."""
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


@dataclass(frozen=True)
class Seeded:
    """A served simulator whose documents are already indexed."""

    sim: DifySimulator
    base_url: str
    dataset_id: str
    batch: str


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    """For the langchain-tests standard suites: indexed documents, served from a thread."""
    sim = DifySimulator(time_scale=0)  # every stage takes no time: documents are ready at once
    dataset_id = sim.create_dataset("standard-tests")
    _, batch = sim.add_document(dataset_id, "faq.txt", "\n\n".join(REFUND_FAQ[:2]))
    for number, text in enumerate(REFUND_FAQ[2:]):
        sim.add_document(dataset_id, f"faq-{number}.txt", text)
    with sim.serve_in_thread() as base_url:
        yield Seeded(sim, base_url, dataset_id, batch)
