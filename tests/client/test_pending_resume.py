"""`wait_for_pending(dataset_id)` after a restart resumes what the ledger holds for it."""

from __future__ import annotations

from pathlib import Path

from dify_ingest_tools import AsyncDifyKnowledgeClient
from dify_ingest_tools.testing import DifySimulator, ManualClock


async def test_a_restarted_process_resumes_one_datasets_pending_uploads(
    sim: DifySimulator, clock: ManualClock, base_url: str, dataset_id: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    other = sim.create_dataset("other")
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, ledger=ledger) as crashed:
        created = await crashed.create_document_by_text(dataset_id, "a.txt", "alpha")
        await crashed.create_document_by_text(other, "o.txt", "omega")
    clock.advance(60)
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, ledger=ledger) as restarted:
        assert restarted.pending_batches(dataset_id) == []  # nothing in memory
        statuses = await restarted.wait_for_pending(dataset_id, timeout=10)
        assert [s.batch for s in statuses] == [created.batch]  # was: [] (the ledger unread)
        assert statuses[0].is_completed
        own_only = await restarted.wait_for_pending(dataset_id, timeout=10, durable=False)
    assert own_only == []
