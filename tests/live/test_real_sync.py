"""``sync`` against a real Dify: the knowledge base is the manifest, deletes are owner-scoped.

Runs only when DIFY_API_KEY and DIFY_API_BASE_URL are set (see test_real_dify.py). Every run
uses owner tags and document names unique to it, and deletes what it created.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient
from dify_ingest_tools.folder_sync.sync import sync_folder
from dify_ingest_tools.models.ownership import Mark

from .test_real_dify import TECHNIQUE, client, dataset_id  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (os.environ.get("DIFY_API_KEY") and os.environ.get("DIFY_API_BASE_URL")),
        reason="set DIFY_API_KEY and DIFY_API_BASE_URL to run against a real Dify",
    ),
]


@pytest.fixture
async def fresh_machine() -> AsyncIterator[AsyncDifyKnowledgeClient]:
    """A client with no ledger at all: what a new laptop or CI runner knows."""
    async with AsyncDifyKnowledgeClient(ledger=False) as value:
        yield value


async def _cleanup(kb: AsyncDifyKnowledgeClient, dataset: str, prefix: str) -> None:
    listing = await kb.list_documents(dataset, keyword=prefix, limit=100)
    for document in listing.data:
        if document.name.startswith(prefix):
            await kb.delete_document(dataset, document.id)


async def test_a_second_sync_from_a_fresh_machine_uploads_nothing(
    fresh_machine: AsyncDifyKnowledgeClient,
    dataset_id: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    folder = tmp_path / f"live-{run}"
    (folder / "guides").mkdir(parents=True)
    (folder / "a.md").write_text(f"Alpha page {run}.")
    (folder / "guides" / "b.md").write_text(f"Beta guide {run}.")
    options = {"owner": f"live-{run}", "timeout": 300.0, "indexing_technique": TECHNIQUE}
    try:
        first = await sync_folder(fresh_machine, folder, dataset_id, **options)  # type: ignore[arg-type]
        assert first.ok, first.as_dict()
        async with AsyncDifyKnowledgeClient(ledger=False) as other_machine:
            second = await sync_folder(other_machine, folder, dataset_id, **options)  # type: ignore[arg-type]
        assert second.ok and second.uploaded == [] and second.updated == []
        assert sorted(second.skipped) == ["a.md", "guides__b.md"]
        listing = await fresh_machine.list_documents(dataset_id, limit=100)
        marks = {d.name: Mark.of(d) for d in listing.data if Mark.of(d).owner == f"live-{run}"}
        assert marks["guides__b.md"].source == "guides/b.md"
    finally:
        listing = await fresh_machine.list_documents(dataset_id, limit=100)
        for document in listing.data:
            if Mark.of(document).owner == f"live-{run}":
                await fresh_machine.delete_document(dataset_id, document.id)


async def test_delete_is_scoped_to_the_owner_and_guarded(
    fresh_machine: AsyncDifyKnowledgeClient,
    dataset_id: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    mine, theirs = tmp_path / f"mine-{run}", tmp_path / f"theirs-{run}"
    mine.mkdir()
    theirs.mkdir()
    for i in range(3):
        (mine / f"m{run}-{i}.md").write_text(f"Mine {i} {run}.")
    (theirs / f"t{run}.md").write_text(f"Theirs {run}.")
    await fresh_machine.create_document_by_text(
        dataset_id, f"p{run}.md", f"A person's upload {run}.", indexing_technique=TECHNIQUE
    )
    options = {"timeout": 300.0, "indexing_technique": TECHNIQUE}
    try:
        assert (await sync_folder(fresh_machine, mine, dataset_id, **options)).ok  # type: ignore[arg-type]
        assert (await sync_folder(fresh_machine, theirs, dataset_id, **options)).ok  # type: ignore[arg-type]
        for path in mine.iterdir():
            path.unlink()
        with pytest.raises(ValueError, match="refusing to delete all 3 documents"):
            await sync_folder(fresh_machine, mine, dataset_id, delete=True, **options)  # type: ignore[arg-type]
        (mine / f"m{run}-0.md").write_text(f"Mine 0 {run}.")
        (mine / f"m{run}-1.md").write_text(f"Mine 1 {run}.")
        report = await sync_folder(fresh_machine, mine, dataset_id, delete=True, **options)  # type: ignore[arg-type]
        assert report.deleted == [f"m{run}-2.md"]
        names = {d.name for d in (await fresh_machine.list_documents(dataset_id, limit=100)).data}
        assert {f"t{run}.md", f"p{run}.md"} <= names  # another owner's and a person's: kept
    finally:
        for prefix in (f"m{run}", f"t{run}", f"p{run}"):
            await _cleanup(fresh_machine, dataset_id, prefix)
