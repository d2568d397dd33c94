"""The monitor on its own: what it depends on, and how its dataset sweeps spend requests.

Clients run on an autojumping `FakeClock` (the simulator's documents too): rounds, polls
and budgets are counted against the time the monitor itself kept, however busy the machine.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import dify_ingest_tools
from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    CreatedDocument,
    DifyClientClosedError,
    DifyConnectionError,
    IndexingMonitor,
    IndexingTimeoutError,
    StatusSource,
)
from dify_ingest_tools._base.clock import FakeClock
from dify_ingest_tools.readiness.sweeps import (
    SWEEP_BLIND_ROUNDS,
    SWEEP_BUDGET_SHARE,
    SWEEP_FAILED_ROUNDS,
    SWEEP_MIN_BATCHES,
    SWEEP_POLL_SHARE,
)
from dify_ingest_tools.readiness.updates import PollUpdate, Updates
from dify_ingest_tools.testing import DifySimulator, DocumentScript
from tests.conftest import FAST
from tests.hostile import free_port

PACKAGE = Path(dify_ingest_tools.__file__).parent


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    """The simulator's documents move on the client's fake time."""
    return fake_clock


@pytest.fixture
def client(fake_client: AsyncDifyKnowledgeClient) -> AsyncDifyKnowledgeClient:
    return fake_client


@contextlib.asynccontextmanager
async def on_fake_time(
    url: str, api_key: str = "dataset-k", **options: Any
) -> AsyncIterator[tuple[AsyncDifyKnowledgeClient, FakeClock]]:
    """A client on an autojumping `FakeClock` of its own (`FAST` backoff unless told)."""
    clock = FakeClock()
    async with (
        AsyncDifyKnowledgeClient(api_key, url, clock=clock, **{**FAST, **options}) as client,
        clock.autojump(),
    ):
        yield client, clock


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            modules.add(node.module or "")
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.slow  # a fresh interpreter
def test_the_monitor_and_the_waits_never_import_the_client() -> None:
    names = ("monitor", "sweeps", "pollers", "updates", "contact", "waiting", "summaries")
    waits = [
        PACKAGE / "readiness" / f"{name}.py"
        for name in (*names, "wait_options", "wait_errors", "policy")
    ]
    for path in [*waits, PACKAGE / "errors.py", *(PACKAGE / "models").glob("*.py")]:
        imported = _imported_modules(path)
        client_code = {
            module
            for module in imported
            if module.startswith("dify_ingest_tools.client")
            or module == "dify_ingest_tools._http.transport"
        }
        assert not client_code, (path.name, client_code)
    # And at run time: importing the waits loads no client code.
    code = (
        "import sys, dify_ingest_tools.readiness.waiting; "
        "heavy = {'dify_ingest_tools.client.async_client', 'dify_ingest_tools._http.transport'}; "
        "assert not heavy & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_clients_bookkeeping_lives_in_its_own_modules() -> None:
    root = PACKAGE / "client" / "async_client.py"
    client_source = root.read_text()
    for private in ("_uploaded", "_dataset_cache", "_techniques", "_fetch_status", "_list_page"):
        assert private not in client_source, private
    homes = {
        "dify_ingest_tools.client.pending",
        "dify_ingest_tools.client.datasets",
        "dify_ingest_tools.readiness.status_source",
    }
    assert homes <= _imported_modules(root)


async def test_a_monitor_is_built_on_a_status_source_not_on_a_client(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(TypeError, match=r"client\.monitor"):
        IndexingMonitor(client)  # type: ignore[arg-type]
    source: StatusSource = client._source
    monitor = IndexingMonitor(source, max_concurrency=2)
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    status = await monitor.fetch(dataset_id, batch)
    assert status.batch == batch and monitor.active_batches == 0
    with pytest.raises(ValueError, match="batch"):
        await monitor.fetch(dataset_id, "not a batch")
    await monitor.aclose()
    with pytest.raises(ValueError, match="max_concurrency"):
        IndexingMonitor(source, max_concurrency=0)


# -- sweeps against a dataset list that does not help ---------------------------------------

DATASET = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
#: Fast cadence: rounds and safety-net polls every few tens of milliseconds.
BRISK: dict[str, Any] = {"poll_interval": 0.05, "max_poll_interval": 0.2}
#: Sweep rounds every few tens of milliseconds; safety-net polls after 14 s of indexing
#: (``DocumentScript(time_scale=10.0)``) are done.
QUICK_SWEEP: dict[str, Any] = {"poll_interval": 0.02, "max_poll_interval": 60.0}


class UnhelpfulDify:
    """Batches that index for ever, and a document list that does not help to watch them.

    ``listing`` says what the list shows: ``"others"`` (5,000 newer documents, none of ours:
    a big dataset), ``"partial"`` (2,000 documents, all but one of ours on page 1, still
    indexing), ``"indexing"`` (all of ours, still indexing: right, but no news),
    ``"completed"`` (ours, falsely completed), ``"hang"`` (no answer at all) or ``"failing"``
    (Dify's 503 every time).
    """

    def __init__(self, listing: str) -> None:
        self.listing = listing
        self.log: list[str] = []
        self.lists_in_flight = 0
        self.lists_abandoned = 0

    def count(self, route: str) -> int:
        return self.log.count(route)

    async def status(self, request: web.Request) -> web.Response:
        self.log.append("indexing_status")
        batch = request.match_info["batch"]
        doc = {"id": f"doc-{batch}", "indexing_status": "indexing", "total_segments": 3}
        return web.json_response({"data": [doc]})

    async def documents(self, request: web.Request) -> web.Response:
        self.log.append("list_documents")
        page = int(request.query.get("page", "1"))
        if self.listing == "failing":
            body = {"code": "unavailable", "message": "list is down", "status": 503}
            return web.json_response(body, status=503)
        if self.listing == "hang":
            self.lists_in_flight += 1
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.lists_abandoned += 1
                raise
            finally:
                self.lists_in_flight -= 1
        others = [{"id": f"other-{page}-{i}", "indexing_status": "completed"} for i in range(100)]
        if self.listing == "others":
            body = {"data": others, "has_more": True, "limit": 100, "total": 5000, "page": page}
            return web.json_response(body)
        status = "completed" if self.listing == "completed" else "indexing"
        ours = [{"id": f"doc-{10**19 + i}", "indexing_status": status} for i in range(40)]
        if self.listing == "partial":
            data = [*ours[:7], *others[7:]] if page == 1 else others
            body = {"data": data, "has_more": True, "limit": 100, "total": 2000, "page": page}
            return web.json_response(body)
        return web.json_response({"data": ours, "has_more": False, "limit": 100, "total": 40})


@pytest.fixture
async def unhelpful() -> AsyncIterator[Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]]]:
    runners: list[web.AppRunner] = []

    async def serve(listing: str) -> tuple[UnhelpfulDify, str]:
        server = UnhelpfulDify(listing)
        app = web.Application()
        app.router.add_get(
            "/v1/datasets/{dataset}/documents/{batch}/indexing-status", server.status
        )
        app.router.add_get("/v1/datasets/{dataset}/documents", server.documents)
        runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return server, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"

    yield serve
    for runner in runners:
        await runner.cleanup()


def _library_tasks() -> list[asyncio.Task[Any]]:
    """Tasks running this library's code (the test's own server tasks aside)."""
    package = str(PACKAGE)
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "cr_code", None) is not None
        and task.get_coro().cr_code.co_filename.startswith(package)  # type: ignore[union-attr]
    ]


def _batches(count: int) -> list[tuple[str, str]]:
    return [(DATASET, str(10**19 + i)) for i in range(count)]


async def _wait_out(client: AsyncDifyKnowledgeClient, count: int, timeout: float) -> None:
    with pytest.raises(IndexingTimeoutError):
        await client.wait_for_batches(_batches(count), timeout=timeout, **BRISK)


@pytest.mark.parametrize("batches", [8, 16, 40])
async def test_a_sweep_that_never_finds_its_documents_stops_after_two_rounds(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
    batches: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dify_ingest_tools")
    server, url = await unhelpful("others")
    async with on_fake_time(url) as (client, _):
        await _wait_out(client, batches, timeout=1.0)
    # Two rounds, each of at most one page per 8 batches covered.
    pages_per_round = max(1, batches // SWEEP_MIN_BATCHES)
    assert server.count("list_documents") <= SWEEP_BLIND_ROUNDS * pages_per_round
    assert server.count("list_documents") < server.count("indexing_status") / 4
    assert "found none of its batches' documents" in caplog.text
    # (Before: 20 pages a round, every round — 160 list requests against 15 polls in 8 s.)


async def test_a_dataset_is_swept_again_on_the_next_run_after_an_unhelpful_one(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
) -> None:
    server, url = await unhelpful("others")
    async with on_fake_time(url) as (client, _):
        await _wait_out(client, 8, timeout=1.0)
        first_run = server.count("list_documents")
        assert DATASET not in client.monitor._sweeps.no_sweep  # every wait left: forgiven
        server.listing = "indexing"  # the next run's documents show in the list
        await _wait_out(client, 8, timeout=1.0)
        assert server.count("list_documents") > first_run + SWEEP_BLIND_ROUNDS


async def test_a_sweep_takes_at_most_a_quarter_of_the_request_budget(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
) -> None:
    # The list shows 7 of the 8 batches on page 1 (the sweep goes on) but not the eighth:
    # reading all 20 pages for it each round once took most of the budget.
    server, url = await unhelpful("partial")
    rpm = 1200.0
    async with on_fake_time(url, requests_per_minute=rpm) as (client, clock):
        started = clock.now
        await _wait_out(client, 8, timeout=3.0)
        elapsed = clock.now - started
    lists, polls = server.count("list_documents"), server.count("indexing_status")
    assert lists >= 2, "the sweep should keep running: it sees its documents"
    budget = elapsed * rpm / 60
    assert lists <= SWEEP_BUDGET_SHARE * budget + 1, (lists, polls, budget)
    assert lists <= 0.3 * (lists + polls), (lists, polls)
    # (Before: 40 of the 56 requests a budget allowed went to the sweep.)


async def test_a_sweep_without_budget_costs_at_most_twice_its_batches_safety_net_polls(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
) -> None:
    server, url = await unhelpful("indexing")  # the list is right, but has no news
    cadence = {"poll_interval": 0.02, "max_poll_interval": 2.0}
    async with on_fake_time(url) as (client, _):
        with pytest.raises(IndexingTimeoutError):
            await client.wait_for_batches(_batches(8), timeout=1.5, **cadence)
    # Each of the 8 loops polls every 2 s at its slowest: 8 list requests a second at most
    # (a round every 20 ms, as the fastest cadence alone would allow, is 75 in 1.5 s).
    lists = server.count("list_documents")
    assert 2 <= lists <= SWEEP_POLL_SHARE * 8 / 2.0 * 1.5 + 1, lists


async def test_a_list_announcing_changes_that_never_come_wakes_each_batch_once(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dify_ingest_tools")
    server, url = await unhelpful("completed")  # the list says done; indexing-status says not
    async with on_fake_time(url) as (client, _):
        await _wait_out(client, 8, timeout=1.5)
    assert "changes that indexing-status did not show" in caplog.text
    # Safety-net polls every 0.2 s would be ~60; a wake storm would be 8 per round on top.
    assert server.count("indexing_status") <= 8 * (1.5 / 0.05) / 2
    assert server.count("list_documents") <= 3


@pytest.mark.slow  # the server holds the list request open in real time
async def test_a_sweep_ends_with_its_last_waiter_even_mid_request(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
) -> None:
    server, url = await unhelpful("hang")
    async with AsyncDifyKnowledgeClient("dataset-k", url, **FAST) as client:
        wait = asyncio.create_task(client.wait_for_batches(_batches(8), **BRISK))
        for _ in range(400):
            if server.lists_in_flight:
                break
            await asyncio.sleep(0.005)
        assert server.lists_in_flight == 1, "the sweep never asked for the list"
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait
        assert not client.monitor._sweeps.tasks
        assert not _library_tasks()
        for _ in range(400):  # the server sees the request abandoned
            if server.lists_abandoned:
                break
            await asyncio.sleep(0.005)
        assert server.lists_abandoned == 1
    # (Before: the sweep's list request ran on for its full 30 s attempt timeout.)


# -- waits that know their documents ----------------------------------------------------------


def _created(count: int) -> list[CreatedDocument]:
    return [
        CreatedDocument(dataset_id=DATASET, document_id=f"doc-{batch}", batch=batch, name=batch)
        for _, batch in _batches(count)
    ]


async def test_waits_that_know_their_documents_send_no_first_poll_when_swept(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    for i in range(12):  # indexed slowly: per-batch polling would cost many requests
        sim.script(f"{i}.txt", DocumentScript(time_scale=10.0))
    created = [
        await client.create_document_by_text(dataset_id, f"{i}.txt", "alpha") for i in range(12)
    ]
    statuses = await client.wait_for_batches(created, timeout=120, **QUICK_SWEEP)
    assert all(status.is_completed for status in statuses)
    assert [s.documents[0].id for s in statuses] == [c.document_id for c in created]
    polls = sim.requests_for(route="indexing_status")
    assert sim.requests_for(route="list_documents"), "the dataset was never swept"
    # One indexing-status answer per batch decides it; none was asked for before.
    assert len(polls) == len(created), [p.path for p in polls]


async def test_a_wait_for_a_batch_this_client_created_knows_its_document(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    for i in range(10):
        sim.script(f"{i}.txt", DocumentScript(time_scale=10.0))
    created = [
        await client.create_document_by_text(dataset_id, f"{i}.txt", "alpha") for i in range(10)
    ]
    statuses = await asyncio.gather(
        *(
            client.wait_for_indexing(dataset_id, document.batch, timeout=120, **QUICK_SWEEP)
            for document in created
        )
    )
    assert all(status.is_completed for status in statuses)
    assert len(sim.requests_for(route="indexing_status")) == len(created)


async def test_a_list_that_shows_documents_done_never_decides_readiness(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
) -> None:
    server, url = await unhelpful("completed")  # the list says done; indexing-status says not
    async with on_fake_time(url) as (client, _):
        with pytest.raises(IndexingTimeoutError) as timed_out:
            await client.wait_for_batches(_created(8), timeout=1.0, **BRISK)
    last = timed_out.value.last_status
    assert last is not None and not last.is_completed  # an indexing-status answer
    assert server.count("indexing_status") >= 8  # every batch was asked about


async def test_waits_that_know_their_documents_poll_on_their_own_when_the_list_is_blind(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dify_ingest_tools")
    server, url = await unhelpful("others")  # the list never shows them
    async with on_fake_time(url) as (client, _):
        with pytest.raises(IndexingTimeoutError) as timed_out:
            # Safety-net polls every 5 s: only the sweep's giving up gets them polled sooner.
            await client.wait_for_batches(
                _created(8), timeout=1.5, poll_interval=0.05, max_poll_interval=5.0
            )
    assert "found none of its batches' documents" in caplog.text
    assert timed_out.value.last_status is not None  # polled after the sweep gave up
    assert server.count("indexing_status") >= 8
    assert server.count("list_documents") <= SWEEP_BLIND_ROUNDS


async def test_a_listed_batch_counts_as_contact_before_its_first_status(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    # No status for over a second (safety net at 5 s, documents done at ~1.4 s): the list
    # showing the documents is Dify answering, so a short contact_timeout does not end the
    # waits.
    created = [await client.create_document_by_text(dataset_id, f"{i}.txt", "a") for i in range(8)]
    statuses = await client.wait_for_batches(
        created, timeout=10, contact_timeout=0.3, poll_interval=0.1, max_poll_interval=5.0
    )
    assert all(status.is_completed for status in statuses)
    assert len(sim.requests_for(route="indexing_status")) == len(created)


async def test_waits_that_know_their_documents_still_fail_fast_when_nothing_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: every request is refused
    # The default backoff: a few refused polls per batch, not thousands of FAST ones.
    async with on_fake_time(url, backoff_base=0.5, backoff_max=8.0) as (client, clock):
        with pytest.raises(DifyConnectionError) as refused:
            # The sweep cannot reach Dify either: the loops must not sit out their 30 s.
            await client.wait_for_batches(
                _created(12), timeout=60, contact_timeout=30, max_poll_interval=30
            )
        elapsed = clock.now
    assert "gave up after" in str(refused.value)
    assert elapsed < 10, elapsed  # the contact budget (3 failed polls, 2 s), not 30 s


async def test_a_wait_cancelled_as_an_update_arrives_loses_nothing() -> None:
    clock = FakeClock()
    updates = Updates(clock=clock)
    empty = asyncio.ensure_future(updates.next(0.01))
    await asyncio.sleep(0)
    clock.advance(0.01)
    assert await empty is None  # nothing came: None after the timeout
    take = asyncio.ensure_future(updates.next(10))
    await asyncio.sleep(0)  # parked
    update = PollUpdate(listed=True)
    updates.put_nowait(update)  # releases the take ...
    take.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await take
    assert await updates.next(0) is update  # still there for the next take
    assert updates.empty()


async def test_a_sweep_whose_list_keeps_failing_stops_and_the_batches_poll_on_their_own(
    unhelpful: Callable[[str], Awaitable[tuple[UnhelpfulDify, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dify_ingest_tools")
    server, url = await unhelpful("failing")  # every list request: 503
    async with on_fake_time(url) as (client, _):
        with pytest.raises(IndexingTimeoutError) as timed_out:
            await client.wait_for_batches(
                _created(8), timeout=2.0, poll_interval=0.05, max_poll_interval=0.2
            )
    assert "failed 3 rounds in a row" in caplog.text
    assert timed_out.value.last_status is not None  # the batches were polled all the same
    assert server.count("list_documents") == SWEEP_FAILED_ROUNDS  # not one per round for 2 s


async def test_closing_the_client_ends_waits_that_sit_out_their_first_poll(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    # Documents that never finish, safety net at 30 s: every wait is in its no-first-poll
    # pause, watched only by the sweep, when the client closes. Its clock never moves: the
    # waits cannot end by any timer, only by the close.
    for i in range(10):
        sim.script(f"{i}.txt", DocumentScript(stall_at="indexing"))
    clock = FakeClock()
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, clock=clock, **FAST) as client:
        created = [
            await client.create_document_by_text(dataset_id, f"{i}.txt", "a") for i in range(10)
        ]
        waits = asyncio.ensure_future(
            client.wait_for_batches(created, timeout=60, max_poll_interval=30)
        )
        for _ in range(500):  # until the sweep watches them
            if sim.requests_for(route="list_documents"):
                break
            await asyncio.sleep(0.01)
        assert sim.requests_for(route="list_documents")
        assert not sim.requests_for(route="indexing_status")
        await client.aclose()
        with pytest.raises(DifyClientClosedError):
            await waits
        assert clock.now == 0.0  # at once, not at the 30 s safety net
    assert not _library_tasks()  # no poll loop, sweep or timer task left behind


async def test_status_reuses_a_loops_snapshot_only_while_it_is_fresh_on_the_clients_clock(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    _, batch = sim.add_document(
        dataset_id, "a.txt", "alpha", script=DocumentScript(stall_at="parsing")
    )
    clock = FakeClock()  # moved by hand only: the loop's next poll is 24 s away at least
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, clock=clock, **FAST) as client:
        wait = asyncio.ensure_future(
            client.wait_for_indexing(
                dataset_id, batch, timeout=600, poll_interval=30, max_poll_interval=60
            )
        )
        for _ in range(2000):  # until the loop holds its first answer
            if (poller := client.monitor._pollers.get((dataset_id, batch))) and poller.last:
                break
            await asyncio.sleep(0.001)
        fresh = await client.monitor.status(dataset_id, batch, max_age=5)
        assert len(sim.requests_for(route="indexing_status")) == 1  # the loop's, reused
        clock.advance(6)
        again = await client.monitor.status(dataset_id, batch, max_age=5)
        assert len(sim.requests_for(route="indexing_status")) == 2  # too old: asked again
        assert fresh.batch == again.batch == batch
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait
