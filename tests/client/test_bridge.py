"""The blocking client: same behaviour through one bridge, also inside a running loop."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from dify_ingest_tools import DifyKnowledgeClient, DifyNotFoundError, IndexingStatus
from dify_ingest_tools.client.bridge import LoopThread, run_blocking
from dify_ingest_tools.testing import DifySimulator, ManualClock
from tests.conftest import FAST


def test_blocking_client_end_to_end(
    sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    created = sync_client.create_document_by_text(dataset_id, "sync.txt", "Alpha beta gamma.")
    assert not sync_client.get_indexing_status(dataset_id, created.batch).is_completed
    clock.advance(60)
    status = sync_client.get_indexing_status(dataset_id, created.batch)
    assert status.is_completed
    assert sync_client.get_document(dataset_id, created.document_id).name == "sync.txt"
    assert [d.id for d in sync_client.list_documents(dataset_id).data] == [created.document_id]
    assert sync_client.get_dataset(dataset_id)["indexing_technique"] == "economy"
    hits = sync_client.retrieve(dataset_id, "gamma", top_k=1)
    assert hits[0].document_id == created.document_id
    by_file = sync_client.create_document_by_file(dataset_id, b"file body", filename="f.txt")
    assert by_file.name == "f.txt"
    sync_client.delete_document(dataset_id, created.document_id)
    with pytest.raises(DifyNotFoundError) as caught:
        sync_client.get_document(dataset_id, created.document_id)
    assert caught.value.resource == "document"


async def test_blocking_client_inside_a_running_event_loop(
    sim: DifySimulator, threaded_url: str, dataset_id: str
) -> None:
    # As in a Jupyter cell: a loop is running in this thread, and the blocking call still works.
    asyncio.get_running_loop()
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    with DifyKnowledgeClient(sim.api_key, threaded_url, **FAST) as client:
        status = client.get_indexing_status(dataset_id, batch)
        again = client.get_indexing_status(dataset_id, batch)
    assert status.documents[0].indexing_status is IndexingStatus.waiting
    assert again.batch == batch
    assert "base_url=" in repr(client)


def test_close_is_idempotent_and_final(sim: DifySimulator, threaded_url: str) -> None:
    client = DifyKnowledgeClient(sim.api_key, threaded_url)
    assert client.async_client.base_url == threaded_url
    assert client.api_key.get_secret_value() == sim.api_key
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.get_indexing_status("7789611a-7d24-4b75-ab16-a005f3cbd9b4", "1")


def test_blocking_client_refuses_a_foreign_session() -> None:
    with pytest.raises(TypeError, match="session"):
        DifyKnowledgeClient("k", session=object())


def test_validation_errors_surface_unchanged(sync_client: DifyKnowledgeClient) -> None:
    with pytest.raises(ValueError, match="dataset_id"):
        sync_client.get_indexing_status("nope", "1")


def test_run_blocking_with_and_without_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_blocking(answer()) == 42

    async def inside() -> int:
        return run_blocking(answer())

    assert asyncio.run(inside()) == 42


def test_ctrl_c_while_blocked_cancels_the_work() -> None:
    worker = LoopThread()
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            worker.run(forever())
        assert cancelled.wait(5)
    finally:
        timer.cancel()
        worker.stop()
    worker.stop()
    with pytest.raises(RuntimeError, match="closed"):
        worker.run(asyncio.sleep(0))


def test_calling_back_into_the_worker_loop_is_refused() -> None:
    worker = LoopThread()

    async def reenter() -> None:
        worker.run(asyncio.sleep(0))

    try:
        with pytest.raises(RuntimeError, match="own worker loop"):
            worker.run(reenter())
    finally:
        worker.stop()


async def test_bridge_runs_async_work_on_the_blocking_clients_loop(
    sim: DifySimulator, threaded_url: str, dataset_id: str
) -> None:
    from dify_ingest_tools import AsyncDifyKnowledgeClient
    from dify_ingest_tools.client.bridge import ClientBridge

    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    with DifyKnowledgeClient(sim.api_key, threaded_url, **FAST) as client:
        bridge = ClientBridge(client)
        assert bridge.async_client is client.async_client
        status = await bridge.acall(lambda c: c.get_indexing_status(dataset_id, batch))
        assert status.batch == batch
        assert bridge.call(lambda c: c.get_indexing_status(dataset_id, batch)).batch == batch
    async with AsyncDifyKnowledgeClient(sim.api_key, threaded_url, **FAST) as native:
        bridge = ClientBridge(native)
        assert (await bridge.acall(lambda c: c.get_indexing_status(dataset_id, batch))).documents
        with pytest.raises(TypeError, match="blocking code"):
            bridge.call(lambda c: c.get_indexing_status(dataset_id, batch))


async def test_cancelling_bridged_async_work_cancels_it_on_the_worker() -> None:
    worker = LoopThread()
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.ensure_future(worker.run_async(forever()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.wait(5)
    worker.stop()
