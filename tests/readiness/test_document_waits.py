"""Document waits whose batch is unknown poll the documents' details through the monitor."""

from __future__ import annotations

import asyncio

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyClientClosedError, IndexingTimeoutError
from dify_ingest_tools.testing import DifySimulator, DocumentScript

STALL = DocumentScript(stall_at="parsing")


async def test_waits_on_the_same_documents_share_one_detail_poll_loop(
    sim: DifySimulator, fake_client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    document, _ = sim.add_document(dataset_id, "one.txt", "alpha", script=STALL)
    slow = {"timeout": 30, "poll_interval": 10, "max_poll_interval": 10}
    waits = [fake_client.wait_for_documents(dataset_id, document, **slow) for _ in range(3)]
    results = await asyncio.gather(*waits, return_exceptions=True)
    assert all(isinstance(result, IndexingTimeoutError) for result in results), results
    # One loop polls every ~10 s (+-20 %) for 30 s: at most 4 details, not 4 per wait.
    assert 2 <= len(sim.requests_for(route="get_document")) <= 4
    assert fake_client.monitor.active_batches == 0


async def test_a_detail_poll_of_a_closed_client_is_refused(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    document, _ = sim.add_document(dataset_id, "one.txt", "alpha")
    client = AsyncDifyKnowledgeClient(sim.api_key, base_url)
    await client.aclose()
    with pytest.raises(DifyClientClosedError):
        await client.wait_for_documents(dataset_id, document, timeout=5)
    assert sim.requests_for(route="get_document") == []
