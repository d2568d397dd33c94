"""The ingestion runnables: uploader | waiter as an LCEL chain, and progress as custom events."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("langchain_core")

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchRef,
    CreatedDocument,
    DifyKnowledgeClient,
    IndexingEvent,
    IndexingFailedError,
)
from dify_ingest_tools.langchain import (
    CUSTOM_EVENT_NAMES,
    DifyDocumentUploader,
    DifyIndexingWaiter,
)
from dify_ingest_tools.langchain.events import (
    adispatch_indexing_event,
    dispatch_indexing_event,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from .conftest import QUICK

DOCS = [
    Document(page_content="Refunds within 30 days.", metadata={"source": "faq/refunds.md"}),
    Document(page_content="Orders ship in two days.", metadata={"name": "shipping"}),
    Document(page_content="No name at all."),
]


class Recorder(BaseCallbackHandler):
    """Records custom events (with the thread they arrive on) and the runs they belong to."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], UUID, int]] = []
        self.runs: dict[str, UUID] = {}

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id, threading.get_ident()))

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs[kwargs.get("name") or ""] = run_id

    @property
    def names(self) -> list[str]:
        return [name for name, *_ in self.events]


@pytest.fixture(params=["sync client", "async client"])
async def any_client(
    request: pytest.FixtureRequest, sim: DifySimulator
) -> AsyncIterator[DifyKnowledgeClient | AsyncDifyKnowledgeClient]:
    """Both kinds of client (async tests only: an async client cannot block)."""
    if request.param == "sync client":
        url = request.getfixturevalue("threaded_url")
        with DifyKnowledgeClient(sim.api_key, url) as sync_client:
            yield sync_client
    else:
        async with sim.serve() as url, AsyncDifyKnowledgeClient(sim.api_key, url) as c:
            yield c


def chain_on(client: DifyKnowledgeClient | AsyncDifyKnowledgeClient, dataset_id: str) -> Any:
    uploader = DifyDocumentUploader(client=client, dataset_id=dataset_id)
    return uploader | DifyIndexingWaiter(client=client, timeout=10, **QUICK)


# -- the chain ------------------------------------------------------------------------------


@pytest.mark.usefixtures("ticker")
def test_uploader_then_waiter_chain_indexes_every_document(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    uploader = DifyDocumentUploader(client=sync_client, dataset_id=dataset_id)
    created = uploader.invoke(DOCS)
    statuses = DifyIndexingWaiter(client=sync_client, **QUICK).invoke(created)

    assert [doc.name for doc in created] == [
        "faq/refunds.md",
        "shipping",
        uploader.names([DOCS[2]])[0],
    ]
    assert created[2].name.startswith("doc-") and created[2].name.endswith(".txt")
    assert [status.batch for status in statuses] == [doc.batch for doc in created]
    assert all(status.is_completed for status in statuses)
    assert len(sim.requests_for(route="create_by_text")) == 3

    chained = chain_on(sync_client, dataset_id).invoke(DOCS[0])
    assert len(chained) == 1 and chained[0].is_completed


@pytest.mark.usefixtures("advancing")
async def test_the_chain_runs_natively_async_on_both_clients(
    dataset_id: str, any_client: DifyKnowledgeClient | AsyncDifyKnowledgeClient
) -> None:
    statuses = await chain_on(any_client, dataset_id).ainvoke(DOCS)

    assert len(statuses) == 3 and all(status.is_completed for status in statuses)


def test_uploader_names_from_metadata_or_content_and_keeps_them_unique(
    sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    pages = [Document(page_content=f"page {n}", metadata={"source": "report.pdf"}) for n in (1, 2)]
    same_text = [Document(page_content="same"), Document(page_content="same")]
    uploader = DifyDocumentUploader(client=sync_client, dataset_id=dataset_id, name_keys="title")
    titled = Document(page_content="x", metadata={"title": " Guide ", "source": "ignored"})

    default = DifyDocumentUploader(client=sync_client, dataset_id=dataset_id)
    assert default.names(pages) == ["report.pdf", "report.pdf #2"]
    digest = hashlib.sha1(b"same", usedforsecurity=False).hexdigest()
    assert default.names(same_text) == [f"doc-{digest[:12]}.txt", f"doc-{digest[:12]}.txt #2"]
    assert uploader.names([titled]) == ["Guide"]


def test_uploader_passes_indexing_settings_through(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    uploader = DifyDocumentUploader(
        client=sync_client,
        dataset_id=dataset_id,
        indexing_technique="economy",
        process_rule={"mode": "automatic"},
        max_concurrency=1,
    )
    created = uploader.invoke(DOCS)

    assert len(created) == 3 and all(isinstance(doc, CreatedDocument) for doc in created)
    # The technique was given: the dataset's own setting was not looked up.
    assert not sim.requests_for(route="get_dataset")


def test_uploader_rejects_what_is_not_a_document(
    sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    uploader = DifyDocumentUploader(client=sync_client, dataset_id=dataset_id)
    with pytest.raises(TypeError, match="a Document or a list of Documents, got str"):
        uploader.invoke(["just text"])  # type: ignore[list-item]


@pytest.mark.usefixtures("ticker")
def test_waiter_accepts_batch_refs_and_pairs(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, first = sim.add_document(dataset_id, "a.txt", "a")
    _, second = sim.add_document(dataset_id, "b.txt", "b")
    waiter = DifyIndexingWaiter(client=sync_client, **QUICK)

    single = waiter.invoke(BatchRef(dataset_id=dataset_id, batch=first))
    pair = waiter.invoke((dataset_id, second))
    mixed = waiter.invoke([(dataset_id, second), BatchRef(dataset_id=dataset_id, batch=first)])

    assert [s.batch for s in single] == [first] and [s.batch for s in pair] == [second]
    assert [s.batch for s in mixed] == [second, first]
    with pytest.raises(TypeError, match="not a string"):
        waiter.invoke("20250612093011123456")  # type: ignore[arg-type]


@pytest.mark.usefixtures("ticker")
def test_waiter_raises_a_failure_after_reporting_it(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    sim.script("broken.pdf", DocumentScript(fail_at="parsing", error="bad pdf"))
    docs = [Document(page_content="x", metadata={"source": "broken.pdf"})]
    recorder = Recorder()

    with pytest.raises(IndexingFailedError, match="bad pdf"):
        chain_on(sync_client, dataset_id).invoke(docs, config={"callbacks": [recorder]})

    assert "dify_indexing_document_failed" in recorder.names
    assert recorder.names[-1] == "dify_indexing_batch_failed"


# -- custom events --------------------------------------------------------------------------


@pytest.mark.usefixtures("ticker")
def test_callback_handler_sees_progress_in_the_calling_thread(
    dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    recorder = Recorder()

    statuses = chain_on(sync_client, dataset_id).invoke(DOCS[:2], config={"callbacks": [recorder]})

    names = recorder.names
    assert set(names) <= CUSTOM_EVENT_NAMES
    assert names[0] == "dify_indexing_progress"
    assert names.count("dify_indexing_document_completed") == 2
    assert names.count("dify_indexing_batch_completed") == 2
    waiter_run = recorder.runs["DifyIndexingWaiter"]
    for name, data, run_id, thread in recorder.events:
        # Dispatched from the caller's thread, inside the waiter's own run.
        assert thread == threading.get_ident() and run_id == waiter_run
        assert name == f"dify_indexing_{data['kind']}"
        assert data["batch"] in {status.batch for status in statuses}
        assert data["message"] == IndexingEvent.model_validate(data).describe()
    final = [data for name, data, *_ in recorder.events if name.endswith("batch_completed")]
    assert all(data["status"]["is_completed"] for data in final)


@pytest.mark.usefixtures("advancing")
async def test_astream_events_sees_progress(
    dataset_id: str, any_client: DifyKnowledgeClient | AsyncDifyKnowledgeClient
) -> None:
    chain = chain_on(any_client, dataset_id)
    seen: list[dict[str, Any]] = []
    waiter_run = ""

    async for event in chain.astream_events(DOCS[:2], version="v2"):
        if event["event"] == "on_chain_start" and event["name"] == "DifyIndexingWaiter":
            waiter_run = event["run_id"]
        if event["event"] == "on_custom_event":
            seen.append(event)

    names = [event["name"] for event in seen]
    assert names[0] == "dify_indexing_progress"
    assert names.count("dify_indexing_batch_completed") == 2
    assert set(names) <= CUSTOM_EVENT_NAMES
    assert all(event["run_id"] == waiter_run for event in seen)
    assert all(event["data"]["dataset_id"] == dataset_id for event in seen)


@pytest.mark.usefixtures("advancing")
async def test_async_callback_handler_sees_progress_on_the_callers_loop(
    dataset_id: str, any_client: DifyKnowledgeClient | AsyncDifyKnowledgeClient
) -> None:
    class LoopRecorder(AsyncCallbackHandler):
        def __init__(self) -> None:
            self.seen: list[tuple[str, asyncio.AbstractEventLoop]] = []

        async def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            self.seen.append((name, asyncio.get_running_loop()))

    recorder = LoopRecorder()

    await chain_on(any_client, dataset_id).ainvoke(DOCS[:1], config={"callbacks": [recorder]})

    assert recorder.seen[-1][0] == "dify_indexing_batch_completed"
    # Even with a blocking client, whose waits run on its worker thread's loop.
    assert {loop for _, loop in recorder.seen} == {asyncio.get_running_loop()}


@pytest.mark.usefixtures("ticker")
def test_waiter_outside_a_run_or_without_handlers_just_waits(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "a")
    event = IndexingEvent(kind="progress", dataset_id=dataset_id, batch=batch)

    # No run at all: LangChain itself would raise RuntimeError here; ours does nothing.
    dispatch_indexing_event(event)
    dispatch_indexing_event(event, {"callbacks": [Recorder()]})
    asyncio.run(adispatch_indexing_event(event))

    statuses = DifyIndexingWaiter(client=sync_client, **QUICK).invoke([(dataset_id, batch)])
    assert statuses[0].is_completed


def test_events_reach_a_handler_of_an_enclosing_run(
    dataset_id: str, sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "a")
    clock.advance(5)
    recorder = Recorder()
    waiter = DifyIndexingWaiter(client=sync_client, **QUICK)

    outer: RunnableLambda[Any, Any] = RunnableLambda(lambda pair: waiter.invoke(pair))
    outer.invoke((dataset_id, batch), config={"callbacks": [recorder]})

    assert recorder.names[-1] == "dify_indexing_batch_completed"


def test_a_handler_that_raises_stops_the_wait(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "slow.txt", "a")  # the clock stands still

    class Stop(BaseCallbackHandler):
        raise_error = True

        def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            raise RuntimeError("stop waiting")

    waiter = DifyIndexingWaiter(client=sync_client, **QUICK)
    with pytest.raises(RuntimeError, match="stop waiting"):
        waiter.invoke((dataset_id, batch), config={"callbacks": [Stop()]})

    # The wait was cancelled on the client's loop: nothing keeps polling.
    assert sync_client.async_client.monitor.active_batches == 0


async def test_a_cancelled_ainvoke_stops_the_wait(
    sim: DifySimulator, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "slow.txt", "a")  # the clock stands still
    waiter = DifyIndexingWaiter(client=client, **QUICK)
    task = asyncio.ensure_future(waiter.ainvoke((dataset_id, batch)))
    await asyncio.sleep(0.05)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.monitor.active_batches == 0


def test_a_blocking_call_from_the_clients_own_loop_is_refused(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    waiter = DifyIndexingWaiter(client=sync_client, **QUICK)

    async def inside_the_worker_loop() -> None:
        waiter.invoke((dataset_id, "20250612093011123456"))

    with pytest.raises(RuntimeError, match="use its async method"):
        sync_client._worker.run(inside_the_worker_loop())
