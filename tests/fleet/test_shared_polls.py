"""Shared polls: N processes waiting on the same batches cost about one process's polls."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
import redis.asyncio

from dify_ingest_tools import AsyncDifyKnowledgeClient
from dify_ingest_tools.backends.shared_polls import RedisStatusCache
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault

from .processes import start
from .redis_server import RedisServer, free_port


def fleet_polls(redis_url: str | None, workers: int = 4) -> tuple[int, list[dict[str, Any]]]:
    """Status requests Dify gets while ``workers`` processes wait on 5 stalled batches."""
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("polls")
    added = [
        sim.add_document(
            dataset_id, f"{i}.txt", "alpha", script=DocumentScript(stall_at="indexing")
        )
        for i in range(5)
    ]
    with sim.serve_in_thread() as base_url:
        spec: dict[str, Any] = {"command": "wait", "base_url": base_url, "key": sim.api_key,
                                "dataset": dataset_id, "batches": [b for _, b in added],
                                "interval": 0.05}  # fmt: skip
        if redis_url is not None:
            spec.update(redis=redis_url, ttl=0.1)
        processes = [start(spec) for _ in range(workers)]
        try:
            for process in processes:
                assert process.stdout is not None
                assert process.stdout.readline().strip() == "waiting"
            sim.clear_requests()
            time.sleep(1.0)  # every worker polls the stalled batches for a second
            for document_id, _ in added:
                sim.release(document_id)
            answers = []
            for process in processes:
                out, err = process.communicate(timeout=30)
                assert process.returncode == 0, err
                answers.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        return len(sim.requests_for("indexing_status")), answers


def test_processes_waiting_on_the_same_batches_share_their_polls(redis_url: str) -> None:
    alone, answers_alone = fleet_polls(None)
    shared, answers_shared = fleet_polls(redis_url)
    assert all(answer["completed"] == 5 for answer in answers_alone + answers_shared)
    # 4 processes x 5 batches x ~20 polls each, against ~10 shared polls per batch.
    assert shared * 2 <= alone, (shared, alone)
    assert sum(answer["hits"] for answer in answers_shared) > 0


async def test_a_dead_redis_means_polling_dify_directly_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("polls")
    batches = [sim.add_document(dataset_id, f"{i}.txt", "alpha")[1] for i in range(3)]
    cache = RedisStatusCache(f"redis://user:pw-secret@127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.WARNING, "dify_ingest_tools"):
        async with (
            sim.serve() as base_url,
            AsyncDifyKnowledgeClient(sim.api_key, base_url, ledger=False, status_cache=cache) as c,
        ):
            statuses = await c.wait_for_batches(
                [(dataset_id, b) for b in batches], timeout=10, poll_interval=0.01
            )
    assert all(status.is_completed for status in statuses)
    messages = [r.getMessage() for r in caplog.records if "shared polls" in r.getMessage()]
    assert len(messages) == 1 and "pw-secret" not in messages[0]


async def test_cached_answers_are_reused_and_errors_are_not(redis_url: str, workspace: str) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("polls")
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    cache = RedisStatusCache(redis_url, ttl=30, namespace=workspace)
    async with sim.serve() as base_url:
        options: dict[str, Any] = {"ledger": False, "status_cache": cache}
        async with AsyncDifyKnowledgeClient(sim.api_key, base_url, **options) as one:
            first = await one.get_indexing_status(dataset_id, batch)
        async with AsyncDifyKnowledgeClient(sim.api_key, base_url, **options) as two:
            again = await two.get_indexing_status(dataset_id, batch)
            with pytest.raises(Exception, match="Documents not found"):
                await two.get_indexing_status(dataset_id, "20990101000000000001")
            with pytest.raises(Exception, match="Documents not found"):
                await two.get_indexing_status(dataset_id, "20990101000000000001")
    assert again.documents == first.documents
    assert len(sim.requests_for("indexing_status")) == 3  # 1 shared + 2 uncached errors
    assert cache.hits == 1 and cache.fetches == 1
    await cache.aclose()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="> 0"):
        RedisStatusCache("redis://127.0.0.1:1/0", ttl=0)
    with pytest.raises(ValueError, match="redis://"):
        RedisStatusCache("http://127.0.0.1:1/0")


async def commands_so_far(probe: Any) -> int:
    """Commands the server ran (scripts' inner calls included), INFO itself left out."""
    stats = await probe.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def test_waiters_behind_a_slow_dify_are_woken_instead_of_asking_redis_in_a_loop(
    own_redis: RedisServer,
) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("slow")
    document_id, batch = sim.add_document(
        dataset_id, "a.txt", "alpha", script=DocumentScript(stall_at="indexing")
    )
    sim.inject(Fault.latency(2.0), route="indexing_status", times=1000)  # a slow Dify
    probe = redis.asyncio.Redis.from_url(own_redis.url)
    # 20 waiters with a cache each, as 20 processes would have.
    caches = [RedisStatusCache(own_redis.url, ttl=0.25) for _ in range(20)]
    async with sim.serve() as base_url:
        clients = [
            AsyncDifyKnowledgeClient(sim.api_key, base_url, ledger=False, status_cache=cache)
            for cache in caches
        ]
        waits = [
            asyncio.create_task(
                client.wait_for_batches(
                    [(dataset_id, batch)], timeout=60, poll_interval=0.5, max_poll_interval=0.5
                )
            )
            for client in clients
        ]
        await asyncio.sleep(1.0)  # every waiter is behind the first, slow answer
        before, started = await commands_so_far(probe), time.monotonic()
        await asyncio.sleep(5.0)
        commands, elapsed = await commands_so_far(probe) - before, time.monotonic() - started
        sim.clear_faults()
        sim.release(document_id)
        statuses = await asyncio.gather(*waits)
        for client in clients:
            await client.aclose()
    await probe.aclose()
    assert all(status.is_completed for (status,) in statuses)
    # The former 20 ms loop: 20 waiters x (GET + SET NX) 50 times a second, ~1,000-2,000/s.
    assert commands / elapsed < 60, (commands, elapsed)
    # And still one Dify request per poll round, for all 20 waiters.
    fetches, hits = sum(c.fetches for c in caches), sum(c.hits for c in caches)
    assert fetches == len(sim.requests_for("indexing_status"))
    assert hits >= 15 * fetches, (hits, fetches)


async def test_a_namespace_with_pattern_characters_still_wakes_its_waiters(
    redis_url: str,
) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("glob")
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    sim.inject(Fault.latency(0.5), route="indexing_status", times=10)
    # A waiter left to its own looks would take 15 s (a quarter of the lock timeout).
    caches = [RedisStatusCache(redis_url, namespace="team[1]*?\\", lock_timeout=60) for _ in "ab"]
    async with sim.serve() as base_url:
        clients = [
            AsyncDifyKnowledgeClient(sim.api_key, base_url, ledger=False, status_cache=cache)
            for cache in caches
        ]
        polls = [client.get_indexing_status(dataset_id, batch) for client in clients]
        first, second = await asyncio.wait_for(asyncio.gather(*polls), 10)
        for client in clients:
            await client.aclose()
    assert first.documents == second.documents
    assert len(sim.requests_for("indexing_status")) == 1
    assert sorted((c.fetches, c.hits) for c in caches) == [(0, 1), (1, 0)]


async def test_waiters_go_on_alone_when_redis_dies_under_them(own_redis: RedisServer) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("killed")
    document_id, batch = sim.add_document(
        dataset_id, "a.txt", "alpha", script=DocumentScript(stall_at="indexing")
    )
    sim.inject(Fault.latency(0.3), route="indexing_status", times=1000)
    caches = [RedisStatusCache(own_redis.url, ttl=0.1, retry_redis_after=60) for _ in range(3)]
    async with sim.serve() as base_url:
        clients = [
            AsyncDifyKnowledgeClient(sim.api_key, base_url, ledger=False, status_cache=cache)
            for cache in caches
        ]
        waits = [
            asyncio.create_task(
                client.wait_for_batches([(dataset_id, batch)], timeout=30, poll_interval=0.1)
            )
            for client in clients
        ]
        await asyncio.sleep(0.8)
        own_redis.kill()
        await asyncio.sleep(0.8)
        sim.clear_faults()
        sim.release(document_id)
        statuses = await asyncio.wait_for(asyncio.gather(*waits), 20)
        for client in clients:
            await client.aclose()
    assert all(status.is_completed for (status,) in statuses)
    assert sum(cache.hits for cache in caches) > 0  # shared before the kill
