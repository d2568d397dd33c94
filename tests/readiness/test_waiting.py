"""wait_for_indexing / wait_for_batches / watch_indexing against the simulator over HTTP.

Documents and waits share one `FakeClock` that jumps to the next timer whenever everything
waits on it (never while an answer is on its way): waits use Dify-like timeouts and poll
gaps, each test takes milliseconds, and how busy the machine is cannot change an outcome.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchIndexingStatus,
    BatchRef,
    DifyAuthenticationError,
    DifyKnowledgeClient,
    DifyNotFoundError,
    DifyPermissionError,
    IndexingEvent,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools._base.clock import FakeClock
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault
from tests.conftest import FAST, QUICK, polls_until


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    """The simulator's documents move on the client's fake time."""
    return fake_clock


@pytest.fixture
def client(fake_client: AsyncDifyKnowledgeClient) -> AsyncDifyKnowledgeClient:
    return fake_client


async def test_wait_returns_when_every_document_is_completed(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    created = await client.create_document_by_text(dataset_id, "a.txt", "alpha\n\nbeta")
    status = await client.wait_for_indexing(dataset_id, created.batch, timeout=60)
    assert status.is_completed and status.documents[0].id == created.document_id
    assert status.completed_segments == status.total_segments > 0


async def test_wait_raises_when_a_document_fails(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    good, batch = sim.add_document(dataset_id, "good.txt", "fine")
    sim.add_document(
        dataset_id,
        "bad.pdf",
        "x",
        batch=batch,
        script=DocumentScript(fail_at="splitting", error="Failed to load document (PDFium)."),
    )
    with pytest.raises(IndexingFailedError) as caught:
        await client.wait_for_indexing(dataset_id, batch, timeout=60)
    error = caught.value
    assert "Failed to load document (PDFium)." in str(error)
    assert error.last_status is not None and error.last_status.is_failed
    [failed] = error.failed_documents
    assert failed.id != good and failed.id in str(error)


async def test_raise_on_error_false_returns_the_terminal_status(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "good.txt", "fine")
    sim.add_document(
        dataset_id,
        "bad.pdf",
        "x",
        batch=batch,
        script=DocumentScript(fail_at="parsing", error="broken"),
    )
    status = await client.wait_for_indexing(dataset_id, batch, timeout=60, raise_on_error=False)
    assert status.is_terminal and status.is_failed and not status.is_completed
    assert sorted(str(d.indexing_status) for d in status.documents) == ["completed", "error"]


async def test_unknown_status_counts_as_working(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    script = DocumentScript(stages=[("waiting", 0.2), ("vectorizing", 0.6)])
    _, batch = sim.add_document(dataset_id, "v.txt", "alpha", script=script)
    seen: list[str] = []
    status = await client.wait_for_indexing(
        dataset_id,
        batch,
        timeout=60,
        poll_interval=0.1,
        max_poll_interval=0.1,
        on_event=lambda e: (
            seen.append(str(e.status.documents[0].indexing_status))
            if e.kind == "progress" and e.status
            else None
        ),
    )
    assert status.is_completed
    assert "vectorizing" in seen and seen[-1] == "completed"


async def test_timeout_says_dify_is_still_working(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(
        dataset_id, "slow.txt", "alpha", script=DocumentScript(stall_at="indexing")
    )
    with pytest.raises(IndexingTimeoutError) as caught:
        await client.wait_for_indexing(dataset_id, batch, timeout=30)
    assert isinstance(caught.value, TimeoutError)
    assert "still indexing it server-side" in str(caught.value)
    assert caught.value.last_status is not None
    assert "Last seen: Batch" in str(caught.value)


async def test_stall_is_distinct_from_the_deadline(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(
        dataset_id, "stuck.txt", "alpha", script=DocumentScript(stall_at="indexing")
    )
    clock.advance(30)  # reaches `indexing` and stays there: the worker is "down"
    events: list[IndexingEvent] = []
    with pytest.raises(IndexingStalledError) as caught:
        await client.wait_for_indexing(
            dataset_id, batch, timeout=60, stall_timeout=5, on_event=events.append
        )
    assert not isinstance(caught.value, TimeoutError)
    assert "worker may be down" in str(caught.value)
    assert caught.value.last_status is not None
    assert str(caught.value.last_status.documents[0].indexing_status) == "indexing"
    assert events[-1].kind == "stalled"
    assert [e.kind for e in events].count("progress") == 1


async def test_paused_keeps_waiting_until_resumed(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    doc, batch = sim.add_document(dataset_id, "p.txt", "alpha")
    clock.advance(0.5)
    sim.pause(doc)
    kinds: list[str] = []

    async def resume_when_seen_paused(event: IndexingEvent) -> None:
        kinds.append(event.kind)
        if event.status is not None and event.status.is_paused:
            sim.resume(doc)  # and time goes on: it finishes

    status = await client.wait_for_indexing(
        dataset_id, batch, timeout=60, on_event=resume_when_seen_paused
    )
    assert status.is_completed and kinds[-1] == "batch_completed"


async def test_paused_counts_toward_stall(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    doc, batch = sim.add_document(dataset_id, "p.txt", "alpha")
    clock.advance(0.5)
    sim.pause(doc)
    with pytest.raises(IndexingStalledError, match="resume them from Dify's console"):
        await client.wait_for_indexing(dataset_id, batch, timeout=60, stall_timeout=5)


async def test_paused_fails_fast_when_asked(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    doc, batch = sim.add_document(dataset_id, "p.txt", "alpha")
    clock.advance(0.5)
    sim.pause(doc)
    with pytest.raises(IndexingFailedError, match="paused") as caught:
        await client.wait_for_indexing(dataset_id, batch, timeout=60, on_paused="fail")
    assert caught.value.last_status is not None and caught.value.last_status.is_paused


async def test_documents_not_found_is_tolerated_for_the_grace_period(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    events: list[IndexingEvent] = []
    with pytest.raises(DifyNotFoundError) as caught:
        await client.wait_for_indexing(
            dataset_id,
            "20991231235959000000",
            timeout=60,
            not_found_grace=5,
            on_event=events.append,
        )
    assert caught.value.resource == "documents"
    assert "still not visible" in str(caught.value)
    assert caught.value.last_status is None
    assert len(sim.requests_for(route="indexing_status")) > 1  # it kept looking
    assert events and {e.kind for e in events} == {"retrying"}


async def test_transient_errors_are_retried_and_reported(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    sim.inject(Fault.server_error(503), route="indexing_status")
    sim.inject(Fault.too_many_requests(retry_after=0), route="indexing_status")
    sim.inject(Fault.knowledge_rate_limit(), route="indexing_status")
    sim.inject(Fault.proxy_html(502), route="indexing_status")
    events: list[IndexingEvent] = []
    status = await client.wait_for_indexing(dataset_id, batch, timeout=60, on_event=events.append)
    assert status.is_completed
    kinds = [e.kind for e in events]
    assert kinds[:4] == ["retrying", "rate_limited", "rate_limited", "retrying"]
    assert events[1].retry_in is not None and events[1].retry_in > 0  # never "at once"
    assert kinds.count("batch_completed") == 1 and kinds[-1] == "batch_completed"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("bad_key", DifyAuthenticationError),
        ("api_disabled", DifyPermissionError),
        ("no_dataset", DifyNotFoundError),
    ],
)
async def test_fatal_errors_fail_at_once(
    sim: DifySimulator, base_url: str, dataset_id: str, setup: str, expected: type[Exception]
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    key, target = sim.api_key, dataset_id
    if setup == "bad_key":
        key = "dataset-wrong"
    elif setup == "api_disabled":
        sim.set_api_enabled(dataset_id, False)
    else:
        target = "00000000-0000-4000-8000-000000000000"
    async with AsyncDifyKnowledgeClient(key, base_url, **FAST) as client:
        with pytest.raises(expected) as caught:
            await client.wait_for_indexing(target, batch, timeout=60)
    assert caught.value.last_status is None  # type: ignore[attr-defined]
    assert len(sim.requests_for(route="indexing_status")) == 1


async def test_events_and_callbacks(
    sim: DifySimulator,
    clock: FakeClock,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha\n\nbeta\n\ngamma")
    sync_seen: list[IndexingEvent] = []
    async_seen: list[IndexingEvent] = []

    def broken(event: IndexingEvent) -> None:
        sync_seen.append(event)
        clock.advance(0.3)
        raise RuntimeError("callback bug")

    async def collecting(event: IndexingEvent) -> None:
        await asyncio.sleep(0)
        async_seen.append(event)

    caplog.set_level(logging.ERROR, logger="dify_ingest_tools")
    status = await client.wait_for_indexing(dataset_id, batch, timeout=60, on_event=broken)
    assert status.is_completed
    assert "callback bug" in caplog.text and "the wait goes on" in caplog.text
    kinds = [e.kind for e in sync_seen]
    assert kinds[0] == "progress" and kinds[-1] == "batch_completed"
    assert kinds.count("batch_completed") == 1 and kinds.count("document_completed") == 1
    assert all(e.status is not None and e.batch == batch for e in sync_seen)
    assert sync_seen[-1].describe().startswith("batch_completed: Batch")
    # An async callback works too, and an already-completed batch still reports once.
    await client.wait_for_indexing(dataset_id, batch, timeout=60, on_event=collecting)
    assert [e.kind for e in async_seen] == ["progress", "document_completed", "batch_completed"]


async def test_cancelling_a_wait_stops_polling_at_once(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(
        dataset_id, "a.txt", "alpha", script=DocumentScript(stall_at="parsing")
    )
    waiter = asyncio.create_task(client.wait_for_indexing(dataset_id, batch, timeout=600))
    await polls_until(sim, 3)
    assert client.monitor.active_batches == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert client.monitor.active_batches == 0
    cancelled_at = clock.monotonic()
    assert clock.next_instant() is None  # no poll loop or wait has a timer left
    clock.advance(600)
    await asyncio.sleep(0)
    # A poll already on the wire may still land (the server logs it when it finishes); none
    # may arrive after the cancel.
    arrivals = [r.at for r in sim.requests_for(route="indexing_status")]
    assert arrivals and max(arrivals) < cancelled_at + 1
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in others if "_run" in repr(t.get_coro())]


async def test_single_flight_twenty_waits_cost_one_waits_requests(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, solo = sim.add_document(dataset_id, "solo.txt", "alpha")
    await client.wait_for_indexing(dataset_id, solo, timeout=60)
    solo_requests = len([r for r in sim.requests_for(route="indexing_status") if solo in r.path])
    _, crowd = sim.add_document(dataset_id, "crowd.txt", "alpha")
    results = await asyncio.gather(
        *(client.wait_for_indexing(dataset_id, crowd, timeout=60) for _ in range(20))
    )
    assert all(r.is_completed for r in results)
    crowd_requests = len([r for r in sim.requests_for(route="indexing_status") if crowd in r.path])
    assert abs(crowd_requests - solo_requests) <= 1, (solo_requests, crowd_requests)


async def test_wait_for_batches_in_input_order(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    first = await client.create_document_by_text(dataset_id, "1.txt", "one")
    _, second = sim.add_document(dataset_id, "2.txt", "two")
    third = BatchRef(dataset_id=dataset_id, batch=sim.add_document(dataset_id, "3.txt", "x")[1])
    results = await client.wait_for_batches([third, first, (dataset_id, second)], timeout=60)
    assert [r.batch for r in results] == [third.batch, first.batch, second]
    assert all(r.is_completed for r in results)
    assert await client.wait_for_batches([], timeout=1) == []


async def test_wait_for_batches_first_failure_cancels_the_rest(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, slow = sim.add_document(
        dataset_id, "slow.txt", "x", script=DocumentScript(stall_at="parsing")
    )
    _, bad = sim.add_document(dataset_id, "bad.pdf", "x", script=DocumentScript(fail_at="parsing"))
    with pytest.raises(IndexingFailedError):
        await client.wait_for_batches([(dataset_id, slow), (dataset_id, bad)], timeout=60)
    assert client.monitor.active_batches == 0
    statuses = await client.wait_for_batches([(dataset_id, bad)], timeout=60, raise_on_error=False)
    assert statuses[0].is_failed


async def test_watch_yields_each_change_until_terminal(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "w.txt", "alpha\n\nbeta")
    seen = [s async for s in client.watch_indexing(dataset_id, batch, timeout=60)]
    assert seen[-1].is_completed and not any(s.is_completed for s in seen[:-1])
    assert len({s.fingerprint() for s in seen}) == len(seen) >= 2


async def test_watch_yields_the_failure_then_raises(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(
        dataset_id, "bad.pdf", "x", script=DocumentScript(fail_at="parsing")
    )
    seen: list[BatchIndexingStatus] = []

    async def consume() -> None:
        async for status in client.watch_indexing(dataset_id, batch, timeout=60):
            seen.append(status)

    with pytest.raises(IndexingFailedError):
        await consume()
    assert seen[-1].is_failed


async def test_progress_bars_render_and_close(
    sim: DifySimulator,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, good = sim.add_document(dataset_id, "a.txt", "alpha\n\nbeta")
    _, bad = sim.add_document(
        dataset_id, "b.pdf", "x", script=DocumentScript(fail_at="parsing", error="bad pdf")
    )
    await client.wait_for_indexing(dataset_id, good, timeout=60, progress=True)
    with pytest.raises(IndexingFailedError):
        await client.wait_for_batches([(dataset_id, bad)], timeout=60, progress=True)
    err = capsys.readouterr().err
    assert f"batch {good} ready" in err and f"batch {bad} FAILED" in err


@pytest.mark.slow  # the blocking client waits on its own loop thread, in real time
@pytest.mark.usefixtures("ticker")
def test_blocking_wait_and_watch(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "s.txt", "alpha")
    status = sync_client.wait_for_indexing(dataset_id, batch, timeout=10, **QUICK)
    assert status.is_completed
    [again] = sync_client.wait_for_batches([(dataset_id, batch)], timeout=10, **QUICK)
    assert again.is_completed
    _, other = sim.add_document(dataset_id, "t.txt", "beta")
    stream = sync_client.watch_indexing(dataset_id, other, timeout=10, **QUICK)
    seen = list(stream)
    assert seen[-1].is_completed
    _, third = sim.add_document(
        dataset_id, "u.txt", "gamma", script=DocumentScript(stall_at="parsing")
    )
    stream = sync_client.watch_indexing(dataset_id, third, timeout=10, **QUICK)
    assert not next(iter(stream)).is_completed
    stream.close()  # type: ignore[attr-defined]
    assert sync_client.async_client.monitor.active_batches == 0


def test_wait_options_are_validated(sync_client: DifyKnowledgeClient) -> None:
    ds = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
    for bad in (
        {"timeout": 0},
        {"stall_timeout": 0},
        {"not_found_grace": -1},
        {"on_paused": "ignore"},
        {"poll_interval": 0},
        {"poll_interval": 5, "max_poll_interval": 1},
    ):
        with pytest.raises(ValueError):
            sync_client.wait_for_indexing(ds, "1", **bad)
    with pytest.raises(TypeError, match="timeot"):
        sync_client.wait_for_indexing(ds, "1", timeot=3)  # type: ignore[call-arg]


async def test_many_batches_of_one_dataset_are_swept_not_polled_one_by_one(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    # 28 s of indexing: per-batch polling at 10 ms would cost thousands of requests; the
    # safety net (each loop on its own at its longest interval) comes after they are done.
    slow = DocumentScript(time_scale=20.0)
    batches = [sim.add_document(dataset_id, f"{i}.txt", "alpha", script=slow)[1] for i in range(12)]
    statuses = await client.wait_for_batches(
        [(dataset_id, batch) for batch in batches],
        timeout=120,
        poll_interval=0.01,
        max_poll_interval=60.0,
    )
    assert all(status.is_completed for status in statuses)
    sweeps = sim.requests_for(route="list_documents")
    polls = sim.requests_for(route="indexing_status")
    assert sweeps, "the dataset was never swept"
    # A first look per batch, a confirmation when the sweep saw it finish, little else.
    assert len(polls) <= 3 * len(batches), len(polls)


async def test_a_failing_list_endpoint_falls_back_to_per_batch_polling(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.inject(Fault.wrong_shape(), route="list_documents", times=-1)
    batches = [sim.add_document(dataset_id, f"{i}.txt", "alpha")[1] for i in range(10)]
    statuses = await client.wait_for_batches([(dataset_id, batch) for batch in batches], timeout=60)
    assert all(status.is_completed for status in statuses)
    assert len(sim.requests_for(route="list_documents")) == 1
    assert dataset_id in client.monitor._sweeps.no_sweep


async def test_waits_sharing_a_failed_poll_each_raise_their_own_last_status(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    stalled = DocumentScript(stall_at="indexing")
    first, batch = sim.add_document(dataset_id, "first.txt", "Alpha.", script=stalled)
    second, _ = sim.add_document(dataset_id, "second.txt", "Beta.", batch=batch, script=stalled)
    clock.advance(10)
    options = {**QUICK, "not_found_grace": 0, "timeout": 10}
    # One poll loop for the batch; each wait sees only its own document.
    waits = [
        asyncio.ensure_future(client.wait_for_documents(dataset_id, [doc], batch=batch, **options))
        for doc in (first, second)
    ]
    await polls_until(sim, 3)
    sim.delete_document(dataset_id, first)
    sim.delete_document(dataset_id, second)  # the batch's next poll: "Documents not found."
    mine, theirs = await asyncio.gather(*waits, return_exceptions=True)

    assert isinstance(mine, DifyNotFoundError) and isinstance(theirs, DifyNotFoundError)
    shared = mine.__cause__
    assert isinstance(shared, DifyNotFoundError) and theirs.__cause__ is shared
    assert mine is not theirs and type(mine) is type(shared)
    assert mine.last_status is not None and theirs.last_status is not None
    assert [doc.id for doc in mine.last_status.documents] == [first]
    assert [doc.id for doc in theirs.last_status.documents] == [second]
    assert mine.hint is not None and "still not visible 0s after" in mine.hint
    assert (mine.status, mine.message, mine.resource) == (404, "Documents not found.", "documents")
    # The poll loop's error itself is as the transport built it.
    assert shared.last_status is None and shared.hint is None
