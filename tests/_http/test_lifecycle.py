"""Closing a client ends everything it is doing; a forked child neither hangs nor harms."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchIndexingStatus,
    DifyClientClosedError,
    DifyKnowledgeClient,
    IndexingEvent,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault, ManualClock
from tests.conftest import FAST, QUICK

STALL = DocumentScript(stall_at="parsing")
ROOT = Path(__file__).resolve().parents[2]
# Python 3.12+ warns when a process with threads forks (the simulator and the client run in
# threads here); forking such a process is exactly what these tests are about.
FORK_WARNING = "ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning"


@pytest.fixture
def library_threads() -> Callable[[], list[threading.Thread]]:
    """The library's threads started since the test began (other tests' are not ours)."""
    before = set(threading.enumerate())

    def started() -> list[threading.Thread]:
        return [
            thread
            for thread in threading.enumerate()
            if thread not in before and thread.name.startswith("dify-ingest-tools")
        ]

    return started


def _none_left(threads: Callable[[], list[threading.Thread]], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not threads()


class Outcome:
    """What a call running in another thread ended with."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.error: BaseException | None = None
        self.result: Any = None
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(call,))
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as error:
            self.error = error
        finally:
            self.ended.set()


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def _no_task_left() -> None:
    """Every task but the test's own ends within moments (the simulator's handlers of the
    connections the close cut take a few loop turns to unwind; a leak never ends)."""
    await _until(lambda: asyncio.all_tasks() == {asyncio.current_task()}, seconds=2)


def _requests_in_flight(client: AsyncDifyKnowledgeClient) -> int:
    """Requests of the client running right now (each inside its lifecycle's guard)."""
    return len(client._lifecycle._running)


# -- the blocking client ------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["batch", "documents"])
def test_closing_a_blocking_client_ends_a_wait_blocked_in_another_thread(
    sim: DifySimulator,
    threaded_url: str,
    dataset_id: str,
    library_threads: Callable[[], list[threading.Thread]],
    scope: str,
) -> None:
    document_id, batch = sim.add_document(dataset_id, "stuck.txt", "alpha", script=STALL)
    client = DifyKnowledgeClient(sim.api_key, threaded_url, **FAST)
    seen: list[IndexingEvent] = []
    if scope == "batch":
        wait = Outcome(
            lambda: client.wait_for_indexing(
                dataset_id, batch, timeout=12, on_event=seen.append, **QUICK
            )
        )
    else:  # a document this client never created: its detail is polled, 30 s apart
        wait = Outcome(
            lambda: client.wait_for_documents(
                dataset_id,
                document_id,
                timeout=60,
                poll_interval=30,
                max_poll_interval=30,
                on_event=seen.append,
            )
        )
    _wait_until(lambda: bool(seen))
    started = time.monotonic()
    client.close()
    assert wait.ended.wait(5), "the wait outlived close()"
    assert time.monotonic() - started < 2
    assert isinstance(wait.error, DifyClientClosedError), repr(wait.error)
    assert isinstance(wait.error, RuntimeError)  # what a closed client raised before
    last = wait.error.last_status
    assert isinstance(last, BatchIndexingStatus)
    assert [doc.id for doc in last.documents] == [document_id]
    assert _none_left(library_threads), library_threads()
    with pytest.raises(DifyClientClosedError, match="closed"):
        client.wait_for_indexing(dataset_id, batch, timeout=1)


def test_closing_a_blocking_client_ends_watches_and_requests_in_other_threads(
    sim: DifySimulator,
    threaded_url: str,
    dataset_id: str,
    library_threads: Callable[[], list[threading.Thread]],
) -> None:
    _, batch = sim.add_document(dataset_id, "stuck.txt", "alpha", script=STALL)
    sim.inject(Fault.latency(30), route="get_dataset", times=-1)
    sim.inject(Fault.latency(30), route="retrieve", times=-1)
    client = DifyKnowledgeClient(sim.api_key, threaded_url, **FAST)
    seen: list[BatchIndexingStatus] = []

    def watch() -> None:
        for status in client.watch_indexing(dataset_id, batch, timeout=30, **QUICK):
            seen.append(status)

    calls = [
        Outcome(watch),
        Outcome(lambda: client.get_dataset(dataset_id)),
        Outcome(lambda: client.retrieve(dataset_id, "alpha")),
    ]
    # The watch has seen the batch; the two slow requests are waiting for their answers.
    _wait_until(lambda: bool(seen) and _requests_in_flight(client.async_client) >= 2)
    client.close()
    for call in calls:
        assert call.ended.wait(5), "a call outlived close()"
        assert isinstance(call.error, DifyClientClosedError), repr(call.error)
    assert _none_left(library_threads), library_threads()


def test_a_blocking_watch_left_open_is_closed_with_the_client(
    sim: DifySimulator,
    threaded_url: str,
    dataset_id: str,
    library_threads: Callable[[], list[threading.Thread]],
) -> None:
    _, batch = sim.add_document(dataset_id, "stuck.txt", "alpha", script=STALL)
    client = DifyKnowledgeClient(sim.api_key, threaded_url, **FAST)
    stream = iter(client.watch_indexing(dataset_id, batch, timeout=30, **QUICK))
    assert next(stream).batch == batch  # the consumer stops here, the watch left open
    client.close()
    with pytest.raises(DifyClientClosedError):
        next(stream)
    del stream  # nothing left to finalize: the close closed the watch
    assert _none_left(library_threads), library_threads()


def test_close_from_an_event_callback_ends_its_own_wait(
    sim: DifySimulator,
    threaded_url: str,
    dataset_id: str,
    library_threads: Callable[[], list[threading.Thread]],
) -> None:
    _, batch = sim.add_document(dataset_id, "stuck.txt", "alpha", script=STALL)
    client = DifyKnowledgeClient(sim.api_key, threaded_url, **FAST)

    def on_event(event: IndexingEvent) -> None:
        client.close()  # from the client's own loop thread

    wait = Outcome(
        lambda: client.wait_for_indexing(dataset_id, batch, timeout=12, on_event=on_event, **QUICK)
    )
    assert wait.ended.wait(5), "the wait outlived close()"
    assert isinstance(wait.error, DifyClientClosedError)
    assert _none_left(library_threads), library_threads()


# -- the async client ---------------------------------------------------------------------


async def test_aclose_ends_running_waits_watches_and_requests_at_once(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    _, stuck = sim.add_document(dataset_id, "stuck.txt", "alpha", script=STALL)
    _, other = sim.add_document(dataset_id, "other.txt", "beta", script=STALL)
    sim.inject(Fault.latency(30), route="get_dataset", times=-1)
    client = AsyncDifyKnowledgeClient(sim.api_key, base_url, **FAST)
    watched: list[BatchIndexingStatus] = []

    async def watch() -> None:
        async for status in client.watch_indexing(dataset_id, other, timeout=30, **QUICK):
            watched.append(status)

    tasks = [
        asyncio.create_task(client.wait_for_indexing(dataset_id, stuck, timeout=30, **QUICK)),
        asyncio.create_task(
            client.wait_for_batches([(dataset_id, stuck), (dataset_id, other)], timeout=30)
        ),
        asyncio.create_task(watch()),
        asyncio.create_task(client.get_dataset(dataset_id)),
    ]
    await _until(lambda: bool(watched) and _requests_in_flight(client) >= 1)
    await asyncio.sleep(0.05)  # every wait has subscribed by now
    session = client._transport.session
    assert session is not None
    started = time.monotonic()
    await client.aclose()
    _, pending = await asyncio.wait(tasks, timeout=2)
    assert not pending, "a call outlived aclose()"
    assert time.monotonic() - started < 2
    for task in tasks:
        assert isinstance(task.exception(), DifyClientClosedError), repr(task.exception())
    wait_error = tasks[0].exception()
    assert wait_error is not None and wait_error.last_status is not None
    assert session.closed and client.closed
    await _no_task_left()
    with pytest.raises(DifyClientClosedError):
        await client.get_indexing_status(dataset_id, stuck)
    with pytest.raises(DifyClientClosedError):
        await client.wait_for_indexing(dataset_id, stuck, timeout=1)
    await client.aclose()  # idempotent


async def test_aclose_ends_document_waits_sleeping_between_detail_polls_at_once(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    # Documents this client never created or updated: no batch is known, so the waits poll
    # each document's detail, 30 s apart (nothing changes while they stall).
    one, _ = sim.add_document(dataset_id, "one.txt", "alpha", script=STALL)
    two, _ = sim.add_document(dataset_id, "two.txt", "beta", script=STALL)
    client = AsyncDifyKnowledgeClient(sim.api_key, base_url, **FAST)
    seen: list[IndexingEvent] = []
    slow: dict[str, Any] = {"poll_interval": 30, "max_poll_interval": 30, "on_event": seen.append}
    tasks = [
        asyncio.create_task(client.wait_for_documents(dataset_id, one, timeout=60, **slow)),
        asyncio.create_task(client.wait_for_documents(dataset_id, [one, two], timeout=60, **slow)),
    ]
    # Both have seen their documents and sleep until their next poll, 30 s away.
    await _until(lambda: len(seen) == 2 and _requests_in_flight(client) == 0)
    started = time.monotonic()
    await client.aclose()
    _, pending = await asyncio.wait(tasks, timeout=2)
    assert not pending, "a document wait outlived aclose()"
    assert time.monotonic() - started < 2
    errors = [task.exception() for task in tasks]
    for error, wanted in zip(errors, [[one], [one, two]], strict=True):
        assert isinstance(error, DifyClientClosedError), repr(error)
        # What the wait saw last, as for batch waits.
        assert error.last_status is not None
        assert [doc.id for doc in error.last_status.documents] == wanted
    await _no_task_left()
    assert len(sim.requests_for(route="get_document")) == 3  # no poll after the close
    with pytest.raises(DifyClientClosedError):
        await client.wait_for_documents(dataset_id, one, timeout=1)


async def test_aclose_ends_a_change_pausing_between_refused_attempts(
    sim: DifySimulator, clock: ManualClock, base_url: str, dataset_id: str
) -> None:
    document_id, _ = sim.add_document(dataset_id, "a.txt", "alpha")
    clock.advance(10)
    client = AsyncDifyKnowledgeClient(sim.api_key, base_url, backoff_base=0.4, backoff_max=30)
    # A status change holds a short lock on the simulator's clock, which stands still here:
    # every later change is refused, and retried after the client's retry backoff, which
    # doubles each time (0.2-0.4 s, 0.4-0.8 s, 0.8-1.6 s, then 1.6-3.2 s).
    await client.disable_documents(dataset_id, [document_id])
    change = asyncio.create_task(
        client.enable_documents(dataset_id, [document_id], retry_unavailable=True, retry_timeout=30)
    )
    refused = lambda: len(sim.requests_for(route="document_status")) - 1  # noqa: E731
    await _until(lambda: refused() >= 4)
    await asyncio.sleep(0.2)  # into the pause of at least 1.6 s before the fifth attempt
    started = time.monotonic()
    await client.aclose()
    with pytest.raises(DifyClientClosedError):
        await asyncio.wait_for(change, 5)
    assert time.monotonic() - started < 1
    assert refused() == 4


async def test_a_request_sleeping_in_its_retry_backoff_ends_on_close(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.server_error(503), route="get_dataset", times=-1)
    client = AsyncDifyKnowledgeClient(sim.api_key, base_url, backoff_base=30, backoff_max=30)
    call = asyncio.create_task(client.get_dataset(dataset_id))
    await _until(lambda: bool(sim.requests_for(route="get_dataset")))
    await asyncio.sleep(0.05)  # in its 30 s backoff now
    await client.aclose()
    with pytest.raises(DifyClientClosedError):
        await asyncio.wait_for(call, 2)


async def test_a_caller_that_catches_the_closed_error_is_not_left_cancelled(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.latency(30), route="get_dataset", times=-1)
    client = AsyncDifyKnowledgeClient(sim.api_key, base_url, **FAST)

    async def call_then_carry_on() -> str:
        with contextlib.suppress(DifyClientClosedError):
            await client.get_dataset(dataset_id)
        await asyncio.sleep(0.01)  # would raise CancelledError if the cancel had leaked
        return "carried on"

    task = asyncio.create_task(call_then_carry_on())
    await _until(lambda: _requests_in_flight(client) == 1)
    await client.aclose()
    assert await asyncio.wait_for(task, 2) == "carried on"


async def test_the_callers_own_timeout_still_wins_over_a_close(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.latency(30), route="get_dataset", times=-1)
    client = AsyncDifyKnowledgeClient(sim.api_key, base_url, **FAST)
    call = asyncio.create_task(asyncio.wait_for(client.get_dataset(dataset_id), 0.2))
    await asyncio.sleep(0.2)  # the caller's timeout and the close arrive together
    await client.aclose()
    with pytest.raises((asyncio.TimeoutError, DifyClientClosedError)):
        await asyncio.wait_for(call, 2)


# -- fork -----------------------------------------------------------------------------------

CHILD_ONLY_EXITS = r"""
import asyncio, json, os, sys, time, warnings
# Python 3.12+ warns that this process forks with threads running; that is the point here.
warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient

url, key, dataset_id, batch = sys.argv[1:5]
used = DifyKnowledgeClient(key, url)
used.get_indexing_status(dataset_id, batch)  # its loop, thread and session are live
unused = DifyKnowledgeClient(key, url)  # its loop exists, never ran
loop = asyncio.new_event_loop()  # an async client with a pooled connection on a loop
async_client = AsyncDifyKnowledgeClient(key, url, timeout=20)
loop.run_until_complete(async_client.get_indexing_status(dataset_id, batch))
pid = os.fork()
if pid == 0:
    sys.exit(0)  # a normal exit runs the clients' finalizers in the child
deadline = time.monotonic() + 10
while True:
    finished, status = os.waitpid(pid, os.WNOHANG)
    if finished:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        print(json.dumps({"child": "hung"}))
        sys.exit(1)
    time.sleep(0.01)
started = time.monotonic()
used.get_indexing_status(dataset_id, batch)
unused.get_indexing_status(dataset_id, batch)
loop.run_until_complete(async_client.get_indexing_status(dataset_id, batch))
elapsed = time.monotonic() - started
print(json.dumps({"child": os.waitstatus_to_exitcode(status), "parent": elapsed}))
used.close()
unused.close()
loop.run_until_complete(async_client.aclose())
loop.close()
"""


def test_a_forked_child_that_only_exits_neither_hangs_nor_breaks_the_parent(
    sim: DifySimulator, threaded_url: str, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD_ONLY_EXITS, threaded_url, sim.api_key, dataset_id, batch],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["child"] == 0
    # The parent's clients answer at once: the child did not unregister their sockets.
    assert report["parent"] < 5
    assert done.stderr == "", done.stderr  # no tracebacks or "unclosed ..." noise


_inherited: DifyKnowledgeClient | None = None
_inherited_async: AsyncDifyKnowledgeClient | None = None


def _use_inherited(dataset_id: str, batch: str) -> str:
    assert _inherited is not None
    return _inherited.get_indexing_status(dataset_id, batch).batch


def _use_a_new_client(url: str, key: str, dataset_id: str, batch: str) -> str:
    with DifyKnowledgeClient(key, url) as client:
        return client.get_indexing_status(dataset_id, batch).batch


def _use_inherited_async(dataset_id: str, batch: str) -> str:
    assert _inherited_async is not None
    client = _inherited_async

    async def check() -> str:
        try:
            return (await client.get_indexing_status(dataset_id, batch)).batch
        finally:
            await client.aclose()

    return asyncio.run(check())


def _closed_error_of_inherited_async(dataset_id: str) -> str:
    assert _inherited_async is not None
    client = _inherited_async
    try:
        asyncio.run(client.get_dataset(dataset_id))
    except DifyClientClosedError as error:
        return str(error)
    return "no error"


@pytest.mark.filterwarnings(FORK_WARNING)
def test_fork_pool_workers_use_inherited_clients_and_their_own(
    sim: DifySimulator, threaded_url: str, dataset_id: str
) -> None:
    global _inherited, _inherited_async
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    loop = asyncio.new_event_loop()
    async_client = AsyncDifyKnowledgeClient(sim.api_key, threaded_url, **FAST)
    try:
        with DifyKnowledgeClient(sim.api_key, threaded_url, **FAST) as client:
            # Both clients have a live session (and connection) when the pool forks.
            assert client.get_indexing_status(dataset_id, batch).batch == batch
            status = loop.run_until_complete(async_client.get_indexing_status(dataset_id, batch))
            assert status.batch == batch
            _inherited, _inherited_async = client, async_client
            pool = multiprocessing.get_context("fork").Pool(2)
            try:
                inherited = pool.apply_async(_use_inherited, (dataset_id, batch))
                own = pool.apply_async(
                    _use_a_new_client, (threaded_url, sim.api_key, dataset_id, batch)
                )
                inherited_async = pool.apply_async(_use_inherited_async, (dataset_id, batch))
                assert inherited.get(timeout=30) == batch
                assert own.get(timeout=30) == batch
                assert inherited_async.get(timeout=30) == batch
            finally:
                pool.terminate()
                pool.join()
            # The parent's clients are untouched by what their copies did in the children.
            assert client.get_indexing_status(dataset_id, batch).batch == batch
            status = loop.run_until_complete(async_client.get_indexing_status(dataset_id, batch))
            assert status.batch == batch
    finally:
        _inherited = _inherited_async = None
        loop.run_until_complete(async_client.aclose())
        loop.close()


@pytest.mark.filterwarnings(FORK_WARNING)
def test_an_inherited_client_on_a_callers_session_refuses_clearly_in_the_child(
    sim: DifySimulator, threaded_url: str, dataset_id: str
) -> None:
    global _inherited_async
    loop = asyncio.new_event_loop()

    async def open_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    session = loop.run_until_complete(open_session())
    try:
        _inherited_async = AsyncDifyKnowledgeClient(sim.api_key, threaded_url, session=session)
        pool = multiprocessing.get_context("fork").Pool(1)
        try:
            message = pool.apply_async(_closed_error_of_inherited_async, (dataset_id,))
            assert "session" in message.get(timeout=30)
        finally:
            pool.terminate()
            pool.join()
    finally:
        _inherited_async = None
        loop.run_until_complete(session.close())
        loop.close()
