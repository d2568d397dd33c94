"""`RedisBudget`: one sliding window per workspace, shared by real processes, never stuck."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyTimeoutError
from dify_ingest_tools.backends.budget import BudgetBackend
from dify_ingest_tools.backends.redis_budget import RedisBudget
from dify_ingest_tools.backends.request_budget import RequestBudget
from dify_ingest_tools.cli import main
from dify_ingest_tools.testing import DifySimulator

from .processes import run_all, start
from .redis_server import RedisServer, free_port


def budget(url: str, workspace: str, limit: float = 10, **options: Any) -> RedisBudget:
    return RedisBudget(url, workspace=workspace, limit=limit, **options)


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
    dead = budget(
        f"redis://user:s3cret@127.0.0.1:{free_port()}/0", "w", limit=600, fallback="local"
    )
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
    hung = budget(
        f"redis://127.0.0.1:{silent_server}/0", "w", limit=600, timeout=0.2, fallback="local"
    )
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
    shared = budget(own_redis.url, workspace, limit=600, retry_redis_after=0.1, fallback="local")
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
        ({"limit": "gold"}, "preset"),
        ({"limit": None}, "limit is required"),
        ({"requests_per_minute": 10}, "not both"),
        ({"limit": None, "requests_per_minute": 10, "window": 3}, "means per 60 s"),
        ({"window": 0}, "window"),
        ({"headroom": 1}, "headroom"),
        ({"latency_allowance": -1}, ">= 0"),
        ({"timeout": 0}, "timeout"),
        ({"burst": 0}, "burst"),
        ({"fallback": "shared"}, "share, local, wait"),
        ({"fallback": 0}, "fraction"),
        ({"fallback": 1.5}, "fraction"),
        ({"fallback": True}, "fraction"),
        ({"fallback": float("nan")}, "fraction"),
        ({"fallback": "share", "fallback_requests_per_minute": 5}, "goes with"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    options: dict[str, object] = {
        "url": "redis://127.0.0.1:6379/0",
        "workspace": "w",
        "limit": 10,
        **kwargs,
    }
    url = options.pop("url")
    with pytest.raises(ValueError, match=message):
        RedisBudget(url, **options)  # type: ignore[arg-type]


def test_a_client_takes_a_budget_or_a_rate_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        AsyncDifyKnowledgeClient("k", budget=RequestBudget(10), requests_per_minute=10)


# -- while Redis is unreachable: the fallback keeps the workspace limit -------------------------


class FakeTime:
    """Monotonic seconds that move only when a budget sleeps (Redis keeps its own clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_without_redis_each_process_takes_its_share_after_one_window(
    own_redis: RedisServer, workspace: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeTime()
    options: dict[str, Any] = {"window": 10, "latency_allowance": 0, "burst": 21,
                               "retry_redis_after": 3, "clock": fake.clock,
                               "sleep": fake.sleep}  # fmt: skip
    fleet = [budget(own_redis.url, workspace, limit=21, **options) for _ in range(4)]
    for member in fleet * 2:  # each sees the fleet as of its last slot: the second round
        await member.acquire(fake.now + 5)
    assert (await fleet[0].usage()).processes == 4
    own_redis.kill()
    one = fleet[0]
    started = fake.now
    stamps = []
    with caplog.at_level(logging.WARNING, "dify_ingest_tools"):
        for _ in range(12):
            await one.acquire()
            stamps.append(fake.now - started)
    for member in fleet:
        await member.aclose()
    assert one.in_fallback
    # Nothing until the fleet's earlier slots left the window, then 19 // 4 = 4 per window.
    assert stamps[0] >= 10
    assert all(later - earlier >= 10 for earlier, later in zip(stamps, stamps[4:], strict=False))
    assert stamps[-1] < 45  # and the share is used, not starved
    (warning,) = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert "at most 4 per 10s (1/4 of the limit: 4 processes seen)" in warning


async def test_a_budget_that_never_saw_redis_takes_a_tenth(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime()
    dead = budget(f"redis://127.0.0.1:{free_port()}/0", "w", limit=101, window=10,
                  latency_allowance=0, clock=fake.clock, sleep=fake.sleep)  # fmt: skip
    with caplog.at_level(logging.WARNING, "dify_ingest_tools"):
        stamps = []
        for _ in range(21):
            await dead.acquire()
            stamps.append(fake.now)
    await dead.aclose()
    assert stamps[10] - stamps[0] >= 10  # 95 // 10 = 9 per window
    assert "Redis never seen: 1/10 of the limit" in caplog.text


async def test_fallback_wait_sends_nothing_until_redis_is_back(
    own_redis: RedisServer, workspace: str
) -> None:
    waiting = budget(own_redis.url, workspace, fallback="wait", retry_redis_after=0.05)
    await waiting.acquire(time.monotonic() + 5)
    own_redis.kill()
    with pytest.raises(DifyTimeoutError, match="fallback='wait'"):
        await waiting.acquire(time.monotonic() + 0.3)
    own_redis.start()
    await waiting.acquire(time.monotonic() + 5)
    assert not waiting.in_fallback
    assert (await waiting.usage()).used == 1  # the restarted Redis: only the new slot
    await waiting.aclose()


async def test_back_from_an_outage_the_slots_taken_alone_are_written_back_and_the_share_holds(
    own_redis: RedisServer, workspace: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeTime()
    shared = budget(own_redis.url, workspace, limit=21, window=10, latency_allowance=0,
                    fallback=0.5, burst=21, retry_redis_after=2, clock=fake.clock,
                    sleep=fake.sleep)  # fmt: skip
    await shared.acquire()
    own_redis.kill()
    stamps = []
    for _ in range(3):
        await shared.acquire()
        stamps.append(fake.now)
    assert shared.in_fallback
    own_redis.start()  # empty: the window it kept is gone
    fake.now += 2  # time to look at Redis again
    with caplog.at_level(logging.INFO, "dify_ingest_tools"):
        await shared.acquire()
        stamps.append(fake.now)
    assert not shared.in_fallback
    assert (await shared.usage()).used == 4  # 3 taken alone, written back, and the new one
    assert "reachable again" in caplog.text
    # For a window more, 19 * 0.5 = 9 per window still: others may not have noticed Redis yet.
    for _ in range(7):
        await shared.acquire()
        stamps.append(fake.now)
    await shared.aclose()
    assert all(later - earlier >= 10 for earlier, later in zip(stamps, stamps[9:], strict=False))
    assert stamps[-1] - stamps[0] < 15
    assert (await shared.usage()).used == 11
    await shared.aclose()


def test_a_fleet_keeps_the_workspace_limit_when_redis_is_killed_mid_run(
    own_redis: RedisServer, workspace: str
) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("killed")
    sim.set_rate_limit(20, window=1.0)

    def run(fallback: str, prefix: str) -> list[dict[str, Any]]:
        if own_redis.process is None:
            own_redis.start()
        base = {"command": "upload", "base_url": base_url, "key": sim.api_key,
                "dataset": dataset_id, "n": 12, "redis": own_redis.url,
                "workspace": f"{workspace}-{prefix}", "limit": 20, "window": 1.0,
                "latency_allowance": 0.1, "fallback": fallback}  # fmt: skip
        before = len(sim.requests_for("create_by_text"))
        processes = [start({**base, "prefix": f"{prefix}{i}"}) for i in range(4)]
        try:
            # Kill Redis once the fleet has sent a window's worth on the shared budget.
            deadline = time.monotonic() + 60
            while len(sim.requests_for("create_by_text")) - before < 20:
                assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
                time.sleep(0.01)
            own_redis.kill()
            return [finish(process) for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.communicate()

    with sim.serve_in_thread() as base_url:
        shared = run("share", "s")
        assert all(answer["fell_back"] for answer in shared)
        assert sum(answer["created"] for answer in shared) == 48
        assert sim.rate_limited_count() == 0
        # The same fleet, each process assuming the whole limit without Redis: 403s.
        alone = run("local", "l")
        assert sum(answer["rate_limited"] for answer in alone) > 0


def test_the_cli_takes_the_fallback_and_refuses_a_confused_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, redis_url: str, workspace: str
) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("cli")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("alpha")
    with sim.serve_in_thread() as base_url:
        argv = ["sync", str(tmp_path / "docs"), "--dataset", dataset_id, "--json",
                "--no-progress", "--api-key", sim.api_key, "--base-url", base_url,
                "--ledger", str(tmp_path / "l.db"), "--redis-url", redis_url,
                "--workspace", workspace, "--requests-per-minute", "10"]  # fmt: skip
        for confused in ("shared", "0", "1.5", "nan", "\x1b[2J" + "x" * 5000):
            assert main([*argv, "--redis-fallback", confused]) == 2
            err = capsys.readouterr().err
            assert "fallback must be" in err and "\x1b" not in err and len(err) < 500
        assert creates_of(sim) == 0
        assert main([*argv, "--redis-fallback", "0.25"]) == 0
    assert creates_of(sim) == 1


def creates_of(sim: DifySimulator) -> int:
    return len(sim.requests_for("create_by_file"))


def finish(process: Any) -> dict[str, Any]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))
