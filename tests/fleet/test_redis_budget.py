"""`RedisBudget`: one sliding window per workspace, shared by real processes, never stuck."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyTimeoutError
from dify_ingest_tools.budget import BudgetBackend, RequestBudget
from dify_ingest_tools.redis_budget import RedisBudget
from dify_ingest_tools.testing import DifySimulator

from .processes import run_all
from .redis_server import RedisServer, free_port


def budget(url: str, workspace: str, limit: float = 10, **options: float) -> RedisBudget:
    return RedisBudget(url, workspace=workspace, requests_per_minute=limit, **options)


async def test_concurrent_acquires_get_exactly_the_limit_minus_headroom(
    redis_url: str, workspace: str
) -> None:
    shared = budget(redis_url, workspace, limit=10, burst=10)  # no pacing: the window alone
    deadline = time.monotonic() + 0.5
    results = await asyncio.gather(
        *(shared.acquire(deadline) for _ in range(40)), return_exceptions=True
    )
    await shared.aclose()
    assert sum(result is None for result in results) == 9  # 10 minus one call of headroom
    assert all(isinstance(r, DifyTimeoutError) for r in results if r is not None)
    usage = await shared.usage()
    await shared.aclose()
    assert (usage.used, usage.limit, usage.cooldown) == (9, 9, 0.0)


def test_processes_share_one_window(redis_url: str, workspace: str) -> None:
    spec = {
        "command": "acquire",
        "redis": redis_url,
        "workspace": workspace,
        "limit": 12,
        "burst": 12,
        "n": 10,
        "deadline": 1.0,
    }
    answers = run_all([spec] * 4)
    # 4 processes x 10 attempts, one window: 11 slots (12 minus one of headroom), no more.
    assert sum(answer["granted"] for answer in answers) == 11
    assert sum(answer["timeouts"] for answer in answers) == 29


def test_other_workspaces_have_their_own_window(redis_url: str, workspace: str) -> None:
    base = {"command": "acquire", "redis": redis_url, "limit": 4, "burst": 4, "n": 5,
            "deadline": 0.5}  # fmt: skip
    first, second = run_all(
        [{**base, "workspace": workspace}, {**base, "workspace": "x" + workspace}]
    )
    assert (first["granted"], second["granted"]) == (3, 3)


async def test_slots_free_again_as_the_window_slides(redis_url: str, workspace: str) -> None:
    shared = budget(redis_url, workspace, limit=4, window=0.5, latency_allowance=0.1)
    started = time.monotonic()
    stamps = []
    for _ in range(6):
        await shared.acquire(started + 10)
        stamps.append(time.monotonic() - started)
    await shared.aclose()
    assert max(stamps[:3]) < 0.5  # three slots at once
    assert stamps[3] >= 0.55  # the fourth waits until the first leaves the (padded) window
    assert stamps[-1] < 5


async def test_past_the_burst_slots_are_spaced_evenly(redis_url: str, workspace: str) -> None:
    shared = budget(redis_url, workspace, limit=21, window=2.0, latency_allowance=0.0, burst=3)
    started = time.monotonic()
    stamps = []
    for _ in range(8):
        await shared.acquire(started + 10)
        stamps.append(time.monotonic() - started)
    await shared.aclose()
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert max(gaps[:2]) < 0.06  # the first three back to back
    assert min(gaps[3:]) >= 0.08  # then about 2 s / 19 slots apart (21 minus the headroom)
    assert stamps[-1] < 3


async def test_a_rate_limit_seen_by_one_process_pauses_the_others(
    redis_url: str, workspace: str
) -> None:
    run_all(
        [{"command": "cooldown", "redis": redis_url, "workspace": workspace, "limit": 10,
          "seconds": 30}]
    )  # fmt: skip
    here = budget(redis_url, workspace)
    assert (await here.usage()).cooldown > 20
    with pytest.raises(DifyTimeoutError, match="no free slot"):
        await here.acquire(time.monotonic() + 0.3)
    await here.acquire(time.monotonic() + 0.3, counted=False)  # polls are not held
    await here.aclose()


async def test_a_shorter_cooldown_never_cuts_a_longer_one(redis_url: str, workspace: str) -> None:
    shared = budget(redis_url, workspace)
    await shared.report_rate_limited(20)
    await shared.report_rate_limited(0.01)
    assert (await shared.usage()).cooldown > 15
    await shared.aclose()


async def test_uncounted_requests_never_touch_redis(caplog: pytest.LogCaptureFixture) -> None:
    dead = budget(f"redis://127.0.0.1:{free_port()}/0", "w")
    with caplog.at_level(logging.WARNING, "dify_ingest_tools"):
        for _ in range(20):
            await dead.acquire(time.monotonic() + 0.01, counted=False)
    assert not dead.in_fallback
    assert caplog.records == []


async def test_a_dead_redis_falls_back_to_an_in_process_budget_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = budget(f"redis://user:s3cret@127.0.0.1:{free_port()}/0", "w", limit=600, window=60)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "dify_ingest_tools"):
        for _ in range(3):
            await dead.acquire(started + 5)
    elapsed = time.monotonic() - started
    await dead.aclose()
    assert dead.in_fallback
    assert elapsed < 3  # 600/min in process: 0.11 s apart
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1  # once per outage, not per request
    assert "unreachable" in warnings[0] and "in-process budget" in warnings[0]
    assert "s3cret" not in warnings[0] and "s3cret" not in repr(dead)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


async def test_a_hung_redis_costs_one_command_timeout_not_a_hang(silent_server: int) -> None:
    hung = budget(f"redis://127.0.0.1:{silent_server}/0", "w", limit=600, timeout=0.2)
    started = time.monotonic()
    await hung.acquire(started + 10)
    assert time.monotonic() - started < 2
    assert hung.in_fallback
    await hung.aclose()


async def test_a_hung_redis_never_outlives_the_callers_deadline(silent_server: int) -> None:
    hung = budget(f"redis://127.0.0.1:{silent_server}/0", "w", timeout=30)
    started = time.monotonic()
    with pytest.raises(DifyTimeoutError, match="deadline"):
        await hung.acquire(started + 0.2)
    assert time.monotonic() - started < 2
    await hung.aclose()


async def test_the_budget_survives_a_redis_restart(
    own_redis: RedisServer, workspace: str, caplog: pytest.LogCaptureFixture
) -> None:
    shared = budget(own_redis.url, workspace, limit=600, retry_redis_after=0.1)
    await shared.acquire(time.monotonic() + 5)
    own_redis.stop()
    with caplog.at_level(logging.INFO, "dify_ingest_tools"):
        await shared.acquire(time.monotonic() + 5)
        assert shared.in_fallback
        own_redis.start()
        await asyncio.sleep(0.15)
        await shared.acquire(time.monotonic() + 5)
    assert not shared.in_fallback
    assert (await shared.usage()).used == 1  # a restarted Redis starts from an empty window
    await shared.aclose()
    messages = " | ".join(record.getMessage() for record in caplog.records)
    assert "unreachable" in messages and "reachable again" in messages


async def test_the_client_spends_the_shared_budget_only_on_what_dify_counts(
    redis_url: str, workspace: str
) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("counted")
    shared = budget(redis_url, workspace, limit=100)
    async with (
        sim.serve() as base_url,
        AsyncDifyKnowledgeClient(sim.api_key, base_url, budget=shared) as client,
    ):
        created = [
            await client.create_document_by_text(dataset_id, f"{i}.txt", "alpha") for i in range(3)
        ]
        await client.wait_for_batches(created, timeout=10, poll_interval=0.01)
        await client.list_documents(dataset_id)
        await client.retrieve(dataset_id, "alpha")
    polls = sim.requests_for("indexing_status")
    assert len(polls) >= 3
    assert (await shared.usage()).used == 4  # 3 creates + 1 retrieve; polls and lists are free
    await shared.aclose()


def test_a_fleet_on_the_shared_budget_gets_no_403_where_per_process_budgets_do(
    redis_url: str, workspace: str
) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("fleet")
    sim.set_rate_limit(10, window=1.0)
    with sim.serve_in_thread() as base_url:
        base = {"command": "upload", "base_url": base_url, "key": sim.api_key,
                "dataset": dataset_id, "n": 6}  # fmt: skip
        shared = {"redis": redis_url, "workspace": workspace, "limit": 10, "window": 1.0,
                  "latency_allowance": 0.1}  # fmt: skip
        fleet = run_all([{**base, **shared, "prefix": f"p{i}"} for i in range(3)])
        assert sum(answer["created"] for answer in fleet) == 18
        assert sim.rate_limited_count() == 0
        # The same fleet with a budget of its own in each process trips the workspace limit.
        alone = run_all([{**base, "requests_per_minute": 600, "prefix": f"q{i}"} for i in range(3)])
        assert sum(answer["rate_limited"] for answer in alone) > 0
        assert sim.rate_limited_count() > 0


def test_both_budgets_implement_the_interface() -> None:
    assert isinstance(RequestBudget(10), BudgetBackend)
    assert isinstance(budget("redis://127.0.0.1:1/0", "w"), BudgetBackend)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "http://127.0.0.1:6379"}, "redis://"),
        ({"workspace": ""}, "non-empty"),
        ({"workspace": "a{b}"}, "braces"),
        ({"requests_per_minute": "gold"}, "preset"),
        ({"window": 0}, "window"),
        ({"headroom": 1}, "headroom"),
        ({"latency_allowance": -1}, ">= 0"),
        ({"timeout": 0}, "timeout"),
        ({"burst": 0}, "burst"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    options: dict[str, object] = {
        "url": "redis://127.0.0.1:6379/0",
        "workspace": "w",
        "requests_per_minute": 10,
        **kwargs,
    }
    url = options.pop("url")
    with pytest.raises(ValueError, match=message):
        RedisBudget(url, **options)  # type: ignore[arg-type]


def test_a_client_takes_a_budget_or_a_rate_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        AsyncDifyKnowledgeClient("k", budget=RequestBudget(10), requests_per_minute=10)
