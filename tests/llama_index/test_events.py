"""Instrumentation events: a handler on the root dispatcher sees every wait's progress."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.instrumentation.dispatcher import instrument_tags

from dify_ingest_tools import DifyKnowledgeClient, IndexingEvent
from dify_ingest_tools.llama_index import (
    DifyBatchIndexingEvent,
    DifyDocumentIndexingEvent,
    DifyDocumentUploader,
    DifyIndexingEvent,
    DifyIndexingProgressEvent,
    DifyIndexingRetryEvent,
    DifyIndexingStalledEvent,
    DifyIndexingWaiter,
)
from dify_ingest_tools.llama_index.events import to_llama_event
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault

from .conftest import QUICK
from .helpers import Recorder


def ingest(client: DifyKnowledgeClient, dataset_id: str) -> IngestionPipeline:
    return IngestionPipeline(
        transformations=[
            DifyDocumentUploader(dataset_id, client=client),
            DifyIndexingWaiter(client=client, on_failure="mark", **QUICK),
        ]
    )


DOCS = [
    Document(text="alpha\n\nbeta", metadata={"file_name": "a.md"}),
    Document(text="gamma", metadata={"file_name": "bad.pdf"}),
]


@pytest.mark.usefixtures("ticker")
def test_a_blocking_run_reports_progress_in_the_callers_span_and_tags(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str, recorder: Recorder
) -> None:
    sim.script("bad.pdf", DocumentScript(fail_at="splitting", error="boom"))
    sim.inject(Fault.server_error(503), route="indexing_status", times=1)
    with instrument_tags({"run": "nightly"}):
        nodes = ingest(sync_client, dataset_id).run(documents=DOCS)

    kinds = recorder.kinds()
    assert {"progress", "document_completed", "document_failed", "retrying"} <= set(kinds)
    assert sorted(k for k in kinds if k.startswith("batch_")) == ["batch_completed", "batch_failed"]
    for event in recorder.events:
        assert type(event) is not DifyIndexingEvent  # always the specific subclass
        assert event.dataset_id == dataset_id
        assert event.batch in {node.metadata["dify_batch"] for node in nodes}
        # Built in the caller's context, although the wait polls from the client's thread.
        assert event.tags == {"run": "nightly"}
        assert event.span_id is not None and event.span_id.startswith("DifyIndexingWaiter.")
    failed = next(
        e
        for e in recorder.events
        if isinstance(e, DifyDocumentIndexingEvent) and e.kind == "document_failed"
    )
    assert failed.error == "boom" and failed.document_id == nodes[1].metadata["dify_document_id"]
    done = next(e for e in recorder.events if e.kind == "batch_completed")
    assert isinstance(done, DifyBatchIndexingEvent) and done.verdict == "ready"
    assert done.completed_segments == done.total_segments == 2
    assert done.status_counts == {"completed": 1} and "ready" in done.summary
    retry = next(e for e in recorder.events if e.kind == "retrying")
    assert isinstance(retry, DifyIndexingRetryEvent) and retry.retry_in is not None


@pytest.mark.usefixtures("advancing")
async def test_an_async_run_hands_events_back_to_the_callers_thread(
    sync_client: DifyKnowledgeClient, dataset_id: str, recorder: Recorder
) -> None:
    await ingest(sync_client, dataset_id).arun(documents=DOCS[:1])
    # The wait ran on the blocking client's worker loop; handlers ran on the test's loop.
    assert recorder.threads == {threading.get_ident()}
    assert "batch_completed" in recorder.kinds()
    assert all(e.span_id and e.span_id.startswith("DifyIndexingWaiter.") for e in recorder.events)


async def test_a_stall_is_reported_before_the_wait_raises(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str, recorder: Recorder
) -> None:
    sim.script("stuck.md", DocumentScript(stall_at="waiting"))
    nodes = DifyDocumentUploader(dataset_id, client=sync_client)(
        [Document(text="x", metadata={"file_name": "stuck.md"})]
    )
    waiter = DifyIndexingWaiter(client=sync_client, stall_timeout=0.05, **QUICK)
    with pytest.raises(Exception, match="Nothing changed"):
        await waiter.acall(nodes)
    assert isinstance(recorder.events[-1], DifyIndexingStalledEvent)


def test_every_kind_maps_to_its_event_class() -> None:
    status = BatchIndexingStatus.model_validate(
        {"dataset_id": "d", "batch": "b", "documents": [{"id": "x", "indexing_status": "indexing"}]}
    )
    expected = {
        "progress": DifyIndexingProgressEvent,
        "document_completed": DifyDocumentIndexingEvent,
        "document_failed": DifyDocumentIndexingEvent,
        "batch_completed": DifyBatchIndexingEvent,
        "batch_failed": DifyBatchIndexingEvent,
        "rate_limited": DifyIndexingRetryEvent,
        "retrying": DifyIndexingRetryEvent,
        "stalled": DifyIndexingStalledEvent,
    }
    for kind, cls in expected.items():
        event = to_llama_event(IndexingEvent(kind=kind, dataset_id="d", batch="b", status=status))  # type: ignore[arg-type]
        assert type(event) is cls and event.class_name() == cls.__name__
        assert event.verdict == "working" and event.model_dump()["class_name"] == cls.__name__
    bare = to_llama_event(IndexingEvent(kind="retrying", dataset_id="d", batch="b", error="503"))
    assert bare.verdict is None and bare.total_segments == 0 and bare.error == "503"
