"""The request budget: the monitor (and every other request) never exceeds it.

Slots are measured on the client's clock: here one `FakeClock` the simulator's documents and
request log share, so "10 per second" is checked on the times the budget itself kept, however
busy the machine is.
"""

from __future__ import annotations

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyTimeoutError
from dify_ingest_tools._base.clock import FakeClock
from dify_ingest_tools.backends.request_budget import RequestBudget, resolve_requests_per_minute
from dify_ingest_tools.testing import DifySimulator


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best = 0
    start = 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_budget_holds_for_many_pending_batches() -> None:
    clock = FakeClock()
    sim = DifySimulator(clock=clock)  # the log's times are the client's clock readings
    dataset_id = sim.create_dataset("budget")
    batches = [sim.add_document(dataset_id, f"{i}.txt", "alpha")[1] for i in range(30)]
    async with (
        sim.serve() as base_url,
        AsyncDifyKnowledgeClient(
            sim.api_key, base_url, requests_per_minute=600, clock=clock
        ) as client,
        clock.autojump(),
    ):
        statuses = await client.wait_for_batches(
            [(dataset_id, batch) for batch in batches],
            timeout=120,
            poll_interval=0.05,
            max_poll_interval=0.2,
        )
    assert all(status.is_completed for status in statuses)
    times = [record.at for record in sim.requests]
    assert len(times) >= 30
    assert max_in_any_window(times) <= 10  # 600 per minute = 10 per second


def test_presets_and_validation() -> None:
    assert resolve_requests_per_minute(None) is None
    assert resolve_requests_per_minute("sandbox") == 10
    assert resolve_requests_per_minute("Professional") == 100
    assert resolve_requests_per_minute(90) == 90.0
    with pytest.raises(ValueError, match="preset"):
        resolve_requests_per_minute("gold")
    with pytest.raises(ValueError, match="> 0"):
        resolve_requests_per_minute(0)
    client = AsyncDifyKnowledgeClient("k", requests_per_minute="team")
    assert (
        client._transport.budget is not None
        and client._transport.budget.requests_per_minute == 1000
    )
    with pytest.raises(ValueError, match="max_concurrency"):
        AsyncDifyKnowledgeClient("k", max_concurrency=0)


async def test_slots_are_spaced_and_bounded_by_the_deadline() -> None:
    clock = FakeClock(start=100.0)
    budget = RequestBudget(60, clock=clock)
    taken: list[float] = []
    async with clock.autojump():
        for _ in range(3):
            await budget.acquire()
            taken.append(clock.now)
    assert taken == [100.0, pytest.approx(101.1), pytest.approx(102.2)]
    with pytest.raises(DifyTimeoutError, match="no free slot"):
        await budget.acquire(deadline=clock.now + 0.5)


async def test_the_older_clock_and_sleep_functions_still_drive_a_budget() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = RequestBudget(60, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await budget.acquire()
    assert slept == [pytest.approx(1.1), pytest.approx(1.1)]
