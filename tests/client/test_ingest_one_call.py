"""One call to ingest: create and wait (text, file, many files), async and blocking, over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAPIError,
    DifyKnowledgeClient,
    IndexingFailedError,
    IngestResult,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript
from tests.conftest import FAST, QUICK


def _files(tmp_path: Path, count: int) -> list[Path]:
    paths = []
    for number in range(count):
        path = tmp_path / f"note-{number}.md"
        path.write_text(f"Note {number} is about the number {number}.\n\nA second paragraph.")
        paths.append(path)
    return paths


async def test_create_by_text_and_wait_returns_the_document_and_its_ready_status(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, dataset_id: str, advancing: None
) -> None:
    result = await client.create_document_by_text_and_wait(
        dataset_id, "kiwi.txt", "The kiwi is a flightless bird.", doc_language="Japanese", **QUICK
    )
    document, status = result  # a named tuple: unpacks
    assert isinstance(result, IngestResult)
    assert document.name == "kiwi.txt" and status.batch == document.batch
    assert status.is_completed and result.document_status is not None
    assert result.document_status.id == document.document_id
    # A body field reached Dify (the wait options stayed with the wait: Dify took the body).
    detail = await client.get_document(dataset_id, document.document_id)
    assert detail.model_dump().get("doc_language") == "Japanese"


async def test_create_by_file_and_wait_uploads_then_waits(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None, tmp_path: Path
) -> None:
    (path,) = _files(tmp_path, 1)
    document, status = await client.create_document_by_file_and_wait(
        dataset_id, path, process_rule={"mode": "automatic"}, **QUICK
    )
    assert document.name == "note-0.md"
    assert status.is_completed and status.documents[0].id == document.document_id


async def test_a_failed_document_raises_with_dify_text(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, dataset_id: str, advancing: None
) -> None:
    sim.script("bad.txt", DocumentScript(fail_at="splitting", error="splitter exploded"))
    with pytest.raises(IndexingFailedError, match="splitter exploded") as caught:
        await client.create_document_by_text_and_wait(dataset_id, "bad.txt", "text", **QUICK)
    assert caught.value.last_status is not None and caught.value.last_status.is_failed
    # With raise_on_error=False the failed status is the answer.
    _, status = await client.create_document_by_text_and_wait(
        dataset_id, "bad.txt", "text", raise_on_error=False, **QUICK
    )
    assert status.is_failed


async def test_a_bad_wait_option_is_refused_before_anything_is_created(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, dataset_id: str
) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await client.create_document_by_text_and_wait(dataset_id, "a.txt", "x", timeout=-1)
    with pytest.raises(ValueError, match="on_paused"):
        await client.create_document_by_text_and_wait(dataset_id, "a.txt", "x", on_paused="no")
    assert sim.requests_for(route="create_by_text") == []


async def test_upload_files_and_wait_returns_results_in_input_order_with_one_bar(
    client: AsyncDifyKnowledgeClient,
    sim: DifySimulator,
    dataset_id: str,
    advancing: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = _files(tmp_path, 5)
    events: list[str] = []
    results = await client.upload_files_and_wait(
        dataset_id,
        paths,
        concurrency=2,
        progress=True,
        on_event=lambda event: events.append(event.kind),
        **QUICK,
    )
    assert [r.document.name for r in results] == [p.name for p in paths]
    assert all(r.status.is_completed for r in results)
    assert len({r.document.batch for r in results}) == 5
    assert events.count("batch_completed") == 5  # the caller's callback saw every batch
    err = capsys.readouterr().err
    # One bar for all files (not one per batch), ending with all five ready.
    assert "files ready" in err and "5/5" in err
    assert "batch " not in err


async def test_upload_files_and_wait_refuses_bad_paths_before_any_upload(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, dataset_id: str, tmp_path: Path
) -> None:
    first = _files(tmp_path, 1)[0]
    twin = tmp_path / "sub" / first.name
    twin.parent.mkdir()
    twin.write_text("same name, other folder")
    with pytest.raises(ValueError, match="would be one document"):
        await client.upload_files_and_wait(dataset_id, [first, twin])
    with pytest.raises(ValueError, match="not a regular file"):
        await client.upload_files_and_wait(dataset_id, [first, tmp_path])
    with pytest.raises(FileNotFoundError):
        await client.upload_files_and_wait(dataset_id, [first, tmp_path / "missing.md"])
    hostile = tmp_path / "a\x1bb.md"
    hostile.write_text("escape")
    with pytest.raises(ValueError):
        await client.upload_files_and_wait(dataset_id, [first, hostile])
    with pytest.raises(TypeError, match="list of paths"):
        await client.upload_files_and_wait(dataset_id, str(first))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        await client.upload_files_and_wait(dataset_id, [first], concurrency=0)
    assert sim.requests_for(route="create_by_file") == []


async def test_an_upload_dify_refuses_stops_further_uploads_and_is_raised(
    sim: DifySimulator, base_url: str, dataset_id: str, tmp_path: Path
) -> None:
    paths = _files(tmp_path, 2)
    big = tmp_path / "big.md"
    big.write_text("x" * 5000)
    sim.max_file_size = 1000  # the server's limit is lower than the client believes
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, max_file_size=None, **FAST) as c:
        with pytest.raises(DifyAPIError) as caught:
            await c.upload_files_and_wait(dataset_id, [paths[0], big, paths[1]], concurrency=1)
        assert caught.value.status == 413
        sent = [r.status for r in sim.requests_for(route="create_by_file")]
        assert sent == [200, 413]  # the third was never sent
        # What was uploaded keeps indexing, and the client still knows it.
        assert len(c.pending_batches(dataset_id)) == 1


def test_blocking_twins_ingest_in_one_call(
    sync_client: DifyKnowledgeClient, dataset_id: str, ticker: None, tmp_path: Path
) -> None:
    text = sync_client.create_document_by_text_and_wait(dataset_id, "t.txt", "Blocking.", **QUICK)
    assert text.status.is_completed
    (path,) = _files(tmp_path, 1)
    document, status = sync_client.create_document_by_file_and_wait(dataset_id, path, **QUICK)
    assert status.is_completed and document.name == path.name
    assert sync_client.upload_files_and_wait(dataset_id, [], **QUICK) == []
    paths = _files(tmp_path, 3)
    results = sync_client.upload_files_and_wait(dataset_id, iter(paths), **QUICK)
    assert [r.document.name for r in results] == [p.name for p in paths]
    assert all(r.status.is_completed for r in results)


async def test_the_blocking_twin_works_inside_a_running_loop(
    sync_client: DifyKnowledgeClient, dataset_id: str, ticker: None
) -> None:
    await asyncio.sleep(0)
    result = sync_client.create_document_by_text_and_wait(dataset_id, "in-loop.txt", "x y", **QUICK)
    assert result.status.is_completed
