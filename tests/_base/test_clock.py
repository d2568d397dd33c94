"""The client's one `Clock`: the fake one tests drive, and how the client hands it down."""

from __future__ import annotations

import asyncio

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyTimeoutError
from dify_ingest_tools._base.clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock, as_clock
from dify_ingest_tools.backends.request_budget import RequestBudget
from dify_ingest_tools.testing import DifySimulator, Fault


async def test_sleepers_wake_in_the_order_of_their_instants() -> None:
    clock = FakeClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [
        asyncio.ensure_future(sleeper(name, seconds))
        for name, seconds in (("late", 3.0), ("early", 1.0), ("tie-a", 2.0), ("tie-b", 2.0))
    ]
    await asyncio.sleep(0)  # every sleeper has set its timer
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert woke == [("early", 101.5)]
    clock.advance(10)
    await asyncio.gather(*tasks)
    # Each timer fired at its own instant, ties in the order they were set.
    assert [name for name, _ in woke] == ["early", "tie-a", "tie-b", "late"]
    assert clock.monotonic() == 111.5


async def test_a_cancelled_timer_never_fires_and_time_never_goes_back() -> None:
    clock = FakeClock()
    fired: list[float] = []
    timer = clock.call_later(1.0, lambda: fired.append(clock.now))
    clock.call_later(2.0, lambda: fired.append(clock.now))
    timer.cancel()
    assert clock.next_instant() == 2.0
    clock.advance(5)
    assert fired == [2.0] and clock.next_instant() is None
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)


async def test_autojump_runs_a_ten_minute_sleep_at_once_but_never_jumps_over_io() -> None:
    clock = FakeClock()
    async with clock.autojump():
        await clock.sleep(600)
        assert clock.now == 600
        with clock.io():  # an exchange in flight: time stands still, whatever it costs
            await asyncio.sleep(0.05)
            sleeper = asyncio.ensure_future(clock.sleep(1))
            await asyncio.sleep(0.05)
            assert clock.now == 600 and not sleeper.done()
        await sleeper
    assert clock.now == 601


def test_as_clock_takes_a_clock_a_reading_or_nothing() -> None:
    fake = FakeClock(start=7.0)
    assert as_clock(None) is SYSTEM_CLOCK and isinstance(SYSTEM_CLOCK, SystemClock)
    assert as_clock(fake) is fake
    reading = as_clock(lambda: 42.0)
    assert isinstance(reading, Clock) and reading.monotonic() == 42.0
    with pytest.raises(TypeError, match="not both"):
        as_clock(fake, sleep=asyncio.sleep)
    with pytest.raises(TypeError, match="clock must be"):
        as_clock(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be a Clock"):
        AsyncDifyKnowledgeClient("dataset-k", clock=lambda: 1.0)  # type: ignore[arg-type]


async def test_a_budget_spaces_its_slots_on_the_clock_it_is_given() -> None:
    clock = FakeClock(start=100.0)
    budget = RequestBudget(60, clock=clock)
    async with clock.autojump():
        for _ in range(3):
            await budget.acquire()
        assert clock.now == pytest.approx(102.2)  # two gaps of 60/60 s, 10 % margin
        with pytest.raises(DifyTimeoutError, match="no free slot"):
            await budget.acquire(deadline=clock.now + 0.5)


async def test_the_client_hands_its_clock_to_every_part_that_waits(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    clock = FakeClock(start=50.0)
    async with AsyncDifyKnowledgeClient(
        sim.api_key, base_url, clock=clock, requests_per_minute=60
    ) as client:
        budget = client._transport.budget
        assert isinstance(budget, RequestBudget)
        assert client._transport.clock is clock and budget.clock is clock
        assert client.monitor.clock is clock and client._doc_names.clock() == 50.0
        _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
        # A Retry-After of 30 s, slept on the fake clock: the call ends in milliseconds.
        sim.inject(Fault.too_many_requests(retry_after=30), route="indexing_status")
        async with clock.autojump():
            status = await client.get_indexing_status(dataset_id, batch, deadline=clock.now + 40)
    assert status.documents
    assert clock.now >= 80.0
    assert [r.status for r in sim.requests_for(route="indexing_status")] == [429, 200]
