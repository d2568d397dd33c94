"""Waits that heal, when asked: this client's stalled upload is sent again once, by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyKnowledgeClient,
    IndexingEvent,
    IndexingStalledError,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript

HEAL = {
    "on_stall": "resubmit",
    "stall_timeout": 0.4,
    "poll_interval": 0.02,
    "max_poll_interval": 0.05,
    "timeout": 30,
}


async def test_a_stall_is_healed_by_one_resubmit_and_the_wait_ends_on_the_new_batch(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    sim.script("stuck.md", DocumentScript(stall_at="indexing"))
    created = await client.create_document_by_text(dataset_id, "stuck.md", "Refunds: 30 days.")
    sim.script("stuck.md", None)  # the worker is back: a new upload indexes
    events: list[IndexingEvent] = []
    status = await client.wait_for_indexing(
        dataset_id, created.batch, on_event=events.append, **HEAL
    )
    assert status.is_completed and status.batch != created.batch
    assert status.documents[0].id == created.document_id  # the same document, re-indexed
    [resubmitted] = [e for e in events if e.kind == "resubmitted"]
    assert resubmitted.batch == created.batch and status.batch in (resubmitted.error or "")
    assert "'stuck.md' again by name" in str(resubmitted)
    creates = sim.requests_for("create_by_text")
    assert len(creates) == 2  # the upload and exactly one resubmit


async def test_a_second_stall_fails_after_the_one_resubmit(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    sim.script("dead.md", DocumentScript(stall_at="waiting"))
    created = await client.create_document_by_text(dataset_id, "dead.md", "never indexed")
    with pytest.raises(IndexingStalledError) as caught:
        await client.wait_for_indexing(dataset_id, created.batch, **HEAL)
    assert caught.value.last_status is not None
    assert caught.value.last_status.batch != created.batch  # it stalled again, on the new one
    assert len(sim.requests_for("create_by_text")) == 2


async def test_a_document_this_client_did_not_upload_is_never_sent(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    sim.script("theirs.md", DocumentScript(stall_at="indexing"))
    _, batch = sim.add_document(dataset_id, "theirs.md", "a colleague's upload")
    with pytest.raises(IndexingStalledError):
        await client.wait_for_indexing(dataset_id, batch, **HEAL)
    assert sim.requests_for("create_by_text") == [] and sim.requests_for("create_by_file") == []


async def test_without_on_stall_a_stall_is_raised_as_before(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    sim.script("stuck.md", DocumentScript(stall_at="indexing"))
    created = await client.create_document_by_text(dataset_id, "stuck.md", "text")
    sim.script("stuck.md", None)
    plain = {k: v for k, v in HEAL.items() if k != "on_stall"}
    with pytest.raises(IndexingStalledError):
        await client.wait_for_indexing(dataset_id, created.batch, **plain)
    assert len(sim.requests_for("create_by_text")) == 1


async def test_a_file_path_is_sent_again_and_wait_for_batches_heals_each_batch(
    sim: DifySimulator,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    advancing: None,
    tmp_path: Path,
) -> None:
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nShipping takes two days.")
    sim.script("guide.md", DocumentScript(stall_at="splitting"))
    stuck = await client.create_document_by_file(dataset_id, path)
    fine = await client.create_document_by_text(dataset_id, "fine.md", "fine")
    sim.script("guide.md", None)
    statuses = await client.wait_for_batches([stuck, fine], **HEAL)
    assert [s.is_completed for s in statuses] == [True, True]
    assert statuses[0].batch != stuck.batch and statuses[1].batch == fine.batch
    assert len(sim.requests_for("create_by_file")) == 2


async def test_confused_heal_options_are_refused_before_any_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(ValueError, match="on_stall"):
        await client.wait_for_indexing(dataset_id, "1", on_stall="retry")  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="max_resubmits"):
        await client.wait_for_indexing(dataset_id, "1", on_stall="resubmit", max_resubmits=-1)
    with pytest.raises(TypeError, match="max_resubmits"):
        await client.wait_for_indexing(dataset_id, "1", max_resubmits=True)
    with pytest.raises(ValueError, match="on_stall='resubmit' heals wait_for_indexing"):
        await client.wait_for_documents(dataset_id, [dataset_id], on_stall="resubmit")
    assert sim.requests == []


def test_the_blocking_client_heals_too(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, dataset_id: str, ticker: None
) -> None:
    sim.script("stuck.md", DocumentScript(stall_at="indexing"))
    created = sync_client.create_document_by_text(dataset_id, "stuck.md", "text")
    sim.script("stuck.md", None)
    status = sync_client.wait_for_indexing(dataset_id, created.batch, **HEAL)  # type: ignore[arg-type]
    assert status.is_completed and status.batch != created.batch


async def test_the_agent_tools_heal_their_own_upload_and_say_so(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    from dify_ingest_tools.agent.toolkit import DifyToolset

    tools = DifyToolset(
        dataset_id=dataset_id,
        on_stall="resubmit",
        stall_timeout=0.4,
        poll_interval=0.02,
        max_poll_interval=0.05,
    )
    sim.script("notes.md", DocumentScript(stall_at="indexing"))
    upload = await tools.run(client, "upload_text", {"name": "notes.md", "text": "Holidays."})
    sim.script("notes.md", None)
    batch = upload.data["batch"]
    wait = await tools.run(client, "wait_for_indexing", {"batch": batch, "timeout_seconds": 20})
    assert f"Batch {batch} stalled in Dify's queue" in wait.text and "READY" in wait.text
    assert wait.data["outcome"] == "ready"
