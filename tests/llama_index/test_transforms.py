"""DifyDocumentUploader and DifyIndexingWaiter in an IngestionPipeline (run and arun)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, SimpleDirectoryReader
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.ingestion.pipeline import get_transformation_hash
from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import BaseNode, MetadataMode, TextNode

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyKnowledgeClient,
    DifyServerError,
    IndexingFailedError,
    IndexingTimeoutError,
)
from dify_ingest_tools.llama_index import DifyDocumentUploader, DifyIndexingWaiter
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault

from .conftest import QUICK

DIFY_KEYS = (
    "dify_dataset_id",
    "dify_document_id",
    "dify_batch",
    "dify_indexing_status",
    "dify_indexing_verdict",
)


def documents() -> list[Document]:
    return [
        Document(text="Refunds are possible within 30 days.", metadata={"file_name": "refunds.md"}),
        Document(text="Orders ship within two business days."),  # named by content hash
    ]


def pipeline(
    client: DifyKnowledgeClient | AsyncDifyKnowledgeClient,
    dataset_id: str,
    **waiter_options: object,
) -> IngestionPipeline:
    return IngestionPipeline(
        transformations=[
            DifyDocumentUploader(dataset_id, client=client),
            DifyIndexingWaiter(client=client, **{**QUICK, **waiter_options}),  # type: ignore[arg-type]
        ]
    )


def assert_uploaded(sim: DifySimulator, dataset_id: str, nodes: list[BaseNode]) -> None:
    assert len(nodes) == 2
    for node in nodes:
        assert node.metadata["dify_dataset_id"] == dataset_id
        # Dify's value under Dify's field name; the verdict under its own key.
        assert node.metadata["dify_indexing_status"] == "completed"
        assert node.metadata["dify_indexing_verdict"] == "ready"
        assert node.metadata["dify_batch"] and node.metadata["dify_document_id"]
        # Bookkeeping, not content: kept out of embeddings and prompts.
        for mode in (MetadataMode.EMBED, MetadataMode.LLM):
            assert "dify_" not in node.get_content(metadata_mode=mode)
    assert len({node.metadata["dify_document_id"] for node in nodes}) == 2
    assert len(sim.requests_for(route="create_by_text")) == 2


@pytest.mark.usefixtures("ticker")
def test_run_uploads_waits_and_records_the_metadata(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    nodes = list(pipeline(sync_client, dataset_id).run(documents=documents()))
    assert_uploaded(sim, dataset_id, nodes)
    assert nodes[0].metadata["file_name"] == "refunds.md"
    names = {
        sync_client.get_document(dataset_id, n.metadata["dify_document_id"]).name for n in nodes
    }
    assert "refunds.md" in names and any(name.endswith(".txt") for name in names)


@pytest.mark.usefixtures("advancing")
async def test_arun_uploads_and_waits_natively_async(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    nodes = list(await pipeline(client, dataset_id).arun(documents=documents()))
    assert_uploaded(sim, dataset_id, nodes)


@pytest.mark.usefixtures("advancing")
async def test_arun_with_a_blocking_client_runs_on_its_loop(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    nodes = list(await pipeline(sync_client, dataset_id).arun(documents=documents()))
    assert_uploaded(sim, dataset_id, nodes)


@pytest.mark.usefixtures("advancing")
@pytest.mark.parametrize("on_failure", ["raise", "drop", "mark"])
async def test_a_failing_document_under_each_on_failure_mode(
    on_failure: str,
    sim: DifySimulator,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.script("bad.pdf", DocumentScript(fail_at="splitting", error="PDFium: Data format error"))
    docs = [
        Document(text="fine", metadata={"file_name": "good.md"}),
        Document(text="broken", metadata={"file_name": "bad.pdf"}),
    ]
    run = pipeline(client, dataset_id, on_failure=on_failure).arun(documents=docs)
    if on_failure == "raise":
        with pytest.raises(IndexingFailedError, match="PDFium: Data format error"):
            await run
        return
    with caplog.at_level(logging.WARNING, logger="dify_ingest_tools"):
        nodes = list(await run)
    good = next(node for node in nodes if node.metadata["file_name"] == "good.md")
    assert good.metadata["dify_indexing_status"] == "completed"
    assert good.metadata["dify_indexing_verdict"] == "ready"
    assert "dify_indexing_error" not in good.metadata
    if on_failure == "drop":
        assert nodes == [good]
        assert docs[1].node_id in caplog.text and "PDFium" in caplog.text
    else:
        assert len(nodes) == 2
        bad = nodes[1]
        assert bad.metadata["dify_indexing_status"] == "error"
        assert bad.metadata["dify_indexing_verdict"] == "failed"
        assert bad.metadata["dify_indexing_error"] == "PDFium: Data format error"
        assert "PDFium" not in bad.get_content(metadata_mode=MetadataMode.LLM)


async def test_a_timeout_raises_whatever_on_failure_says(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    nodes = await DifyDocumentUploader(dataset_id, client=client).acall(documents()[:1])
    waiter = DifyIndexingWaiter(client=client, on_failure="mark", timeout=0.05, **QUICK)
    with pytest.raises(IndexingTimeoutError):
        await waiter.acall(nodes)  # the manual clock never moves: still waiting


@pytest.mark.usefixtures("ticker")
def test_the_pipeline_cache_never_skips_an_upload(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    runs = pipeline(sync_client, dataset_id)  # the default in-memory cache is on
    first = runs.run(documents=documents())
    second = runs.run(documents=documents())
    # Same input, same component: every upload happened again (an upsert: same document ids,
    # new batches), none was replayed from the cache.
    assert len(sim.requests_for(route="create_by_text")) == 4
    ids = [[node.metadata["dify_document_id"] for node in nodes] for nodes in (first, second)]
    assert ids[0] == ids[1]
    batches = [{node.metadata["dify_batch"] for node in nodes} for nodes in (first, second)]
    assert batches[0].isdisjoint(batches[1])
    uploader = runs.transformations[0]
    nodes = [TextNode(text="same input")]
    assert get_transformation_hash(nodes, uploader) != get_transformation_hash(nodes, uploader)


def test_settings_round_trip_without_the_key(
    sim: DifySimulator, threaded_url: str, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    uploader = DifyDocumentUploader(
        dataset_id, api_key=sim.api_key, base_url=threaded_url, indexing_technique="economy"
    )
    waiter = DifyIndexingWaiter(api_key=sim.api_key, base_url=threaded_url, on_failure="mark")
    try:
        for component in (uploader, waiter):
            shown = [
                repr(component),
                str(component),
                str(component.to_dict()),
                component.to_json(),
                component.model_dump_json(),
                str(component.__dict__),
            ]
            assert all(sim.api_key not in text for text in shown), shown
            rebuilt = type(component).from_dict(component.to_dict(), client=sync_client)
            assert rebuilt.model_dump() == component.model_dump()
            assert rebuilt.client is sync_client
    finally:
        uploader.close()
        waiter.close()
    assert uploader.client.async_client.closed  # type: ignore[union-attr]


def test_components_refuse_to_pickle_with_a_clear_message(
    sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    uploader = DifyDocumentUploader(dataset_id, client=sync_client)
    for component in (uploader, DifyIndexingWaiter(client=sync_client)):
        with pytest.raises(TypeError, match=r"cannot be pickled.*num_workers"):
            pickle.dumps(component)
    # What IngestionPipeline(num_workers > 1) runs into (its pool pickles the transformations).
    with pytest.raises(TypeError, match="run the pipeline without num_workers"):
        IngestionPipeline(transformations=[uploader]).run(documents=documents(), num_workers=2)


def test_bad_input_is_refused_before_any_upload(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    uploader = DifyDocumentUploader(dataset_id, client=sync_client)
    blank = [
        TextNode(text="  ", metadata={"file_name": "x.md"}),
        TextNode(text="\n", metadata={"file_name": "x.md"}),
    ]
    with pytest.raises(ValueError, match=r"have no text to upload .* as 'x.md'"):
        uploader([TextNode(text="fine", metadata={"file_name": "y.md"}), *blank])
    with pytest.raises(ValueError, match="no text"):
        uploader([TextNode(text="  ")])
    assert sim.requests_for(route="create_by_text") == []
    assert uploader([]) == [] and DifyIndexingWaiter(client=sync_client)([]) == []
    with pytest.raises(ValueError, match="put DifyDocumentUploader before"):
        DifyIndexingWaiter(client=sync_client)([TextNode(text="never uploaded")])
    with pytest.raises(ValueError, match="dataset_id must be a UUID"):
        DifyDocumentUploader("nope", client=sync_client)


class PagesReader(BaseReader):
    """Reads a file as one Document per page (pages end in a form feed), like a PDF reader."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        pages = Path(file).read_text().split("\f")
        return [
            Document(text=page, metadata={**(extra_info or {}), "page_label": str(number)})
            for number, page in enumerate(pages, start=1)
        ]


@pytest.mark.usefixtures("ticker")
def test_the_pages_of_one_file_become_one_dify_document(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str, tmp_path: Path
) -> None:
    (tmp_path / "manual.pdf").write_text("Page one.\fPage two.\f\fPage four.")
    (tmp_path / "notes.txt").write_text("Just notes.")
    reader = SimpleDirectoryReader(str(tmp_path), file_extractor={".pdf": PagesReader()})
    documents = reader.load_data()
    assert [d.metadata["file_name"] for d in documents] == ["manual.pdf"] * 4 + ["notes.txt"]

    nodes = list(pipeline(sync_client, dataset_id).run(documents=documents))

    # One upload per file ...
    assert len(sim.requests_for(route="create_by_text")) == 2
    names = {doc.name for doc in sync_client.list_documents(dataset_id).data}
    assert names == {"manual.pdf", "notes.txt"}
    # ... every page carrying its file's document, batch and verdict ...
    pages = [node for node in nodes if node.metadata["file_name"] == "manual.pdf"]
    assert len(pages) == 4 and len(nodes) == 5
    assert len({(n.metadata["dify_document_id"], n.metadata["dify_batch"]) for n in pages}) == 1
    # ... and the pages' text in order, the blank page adding nothing (Dify's segments).
    chunks = sync_client.retrieve(dataset_id, "page", top_k=10)
    manual = sorted(
        (chunk for chunk in chunks if chunk.document_id == pages[0].metadata["dify_document_id"]),
        key=lambda chunk: chunk.position or 0,
    )
    assert [chunk.content for chunk in manual] == ["Page one.", "Page two.", "Page four."]
    assert {n.metadata["dify_indexing_verdict"] for n in nodes} == {"ready"}
    assert pages[0].metadata["dify_document_id"] != nodes[-1].metadata["dify_document_id"]
    # Without names, every distinct text is its own document (the same text, one document).
    twins = [TextNode(text="same"), TextNode(text="same"), TextNode(text="other")]
    uploaded = DifyDocumentUploader(dataset_id, client=sync_client, name_key=None)(twins)
    assert len({node.metadata["dify_document_id"] for node in uploaded}) == 2


async def test_a_failed_upload_raises_after_the_others_settle(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.inject(Fault.server_error(500), route="create_by_text", times=1)
    nodes = [TextNode(text=f"text {n}", metadata={"file_name": f"{n}.md"}) for n in range(3)]
    uploader = DifyDocumentUploader(dataset_id, client=client, max_concurrency=1)
    with pytest.raises(DifyServerError):
        await uploader.acall(nodes)
    assert len(sim.requests_for(route="create_by_text")) == 3
    assert [("dify_batch" in node.metadata) for node in nodes] == [False, True, True]


def test_a_blocking_run_needs_a_blocking_client(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(TypeError, match="arun"):
        pipeline(client, dataset_id).run(documents=documents())
