"""A wait does not blame Dify for the client's own queue (`readiness.contact`).

Time a poll waits for its turn (the request budget, the concurrency cap, a cool-down) is not
time Dify failed to answer: only requests that left and failed, or stayed unanswered, count
toward ``contact_timeout``. A misconfiguration still ends every wait within that budget.
All against real sockets: the simulator, a port nothing listens on, a silent server.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchRef,
    CreatedDocument,
    DifyAuthenticationError,
    DifyConnectionError,
    DifyTimeoutError,
    IndexingError,
    IndexingTimeoutError,
)
from dify_ingest_tools.testing import DifySimulator, ManualClock
from tests.conftest import FAST
from tests.hostile import DS, HostileServers, free_port, servers

__all__ = ["servers"]

BATCHES = 30
# 1,200 requests a minute: a slot every 55 ms, so the 30th first poll leaves ~1.6 s after
# the waits began, five times the contact budget below.
RPM = 1200
CONTACT = 0.3
QUEUE = BATCHES * 60 / RPM * 1.1  # the budget's own spacing margin
# A hang guard only: every wait here ends well before it.
GUARD = 60


def _refs(count: int = BATCHES) -> list[BatchRef]:
    return [BatchRef(dataset_id=DS, batch=f"2026120710{i:010d}") for i in range(count)]


async def test_waits_queued_behind_the_clients_own_budget_all_become_ready(
    sim: DifySimulator, clock: ManualClock, base_url: str, dataset_id: str
) -> None:
    assert QUEUE > 5 * CONTACT  # the queue really outlasts the contact budget
    batches = [sim.add_document(dataset_id, f"{i}.txt", f"text {i}")[1] for i in range(BATCHES)]
    clock.advance(60)  # all indexed: one answered poll each settles its wait
    async with AsyncDifyKnowledgeClient(
        sim.api_key, base_url, requests_per_minute=RPM, max_concurrency=4, **FAST
    ) as client:
        statuses = await asyncio.wait_for(
            client.wait_for_batches(
                [(dataset_id, batch) for batch in batches], timeout=GUARD, contact_timeout=CONTACT
            ),
            GUARD,
        )
    assert [status.batch for status in statuses] == batches
    assert all(status.is_completed for status in statuses)
    assert len(sim.requests_for(route="indexing_status")) == BATCHES


async def test_created_documents_queued_behind_the_budget_all_become_ready(
    sim: DifySimulator, clock: ManualClock, base_url: str, dataset_id: str
) -> None:
    # The run: uploads, then one wait for all (the dataset sweep takes part too).
    async with AsyncDifyKnowledgeClient(
        sim.api_key, base_url, requests_per_minute=RPM, **FAST
    ) as client:
        created = [
            await client.create_document_by_text(dataset_id, f"{i}.txt", f"text {i}")
            for i in range(BATCHES)
        ]
        clock.advance(60)
        statuses = await asyncio.wait_for(
            client.wait_for_batches(created, timeout=GUARD, contact_timeout=CONTACT), GUARD
        )
    assert all(status.is_completed for status in statuses)


async def test_a_wait_whose_polls_never_left_the_queue_says_so() -> None:
    # Its deadline passes while every poll still waits for a slot of the client's budget:
    # an indexing timeout naming the client's limits, not "Dify does not answer".
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with AsyncDifyKnowledgeClient("dataset-k", url, requests_per_minute=1, **FAST) as c:
        first = asyncio.ensure_future(c.wait_for_batches(_refs(1), timeout=GUARD))
        await asyncio.sleep(0.05)  # its poll takes the one slot of this minute (and fails)
        with pytest.raises(IndexingTimeoutError) as caught:
            await c.wait_for_batches(_refs(2)[1:], timeout=0.5)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
    assert "queued behind this client's own limits" in str(caught.value)
    assert "does not answer" not in str(caught.value)


async def test_a_dead_port_still_fails_every_queued_wait_fast() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: every request is refused
    # 120 a minute: a turn every 0.55 s, so three refusals per batch would take 90 turns;
    # separate waits, so each must end on its own, most with their first poll still queued.
    async with AsyncDifyKnowledgeClient(
        "dataset-k", url, requests_per_minute=120, **FAST
    ) as client:
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(
                    client.wait_for_indexing(
                        ref.dataset_id, ref.batch, timeout=GUARD, contact_timeout=CONTACT
                    )
                    for ref in _refs()
                ),
                return_exceptions=True,
            ),
            GUARD,
        )
    for outcome in outcomes:
        # The refusal, whether the wait's own poll left or not: never "still indexing",
        # "queued" or "does not answer".
        assert isinstance(outcome, DifyConnectionError), repr(outcome)
        assert not isinstance(outcome, DifyTimeoutError)
        assert outcome.hint is not None and "Nothing accepted the connection" in outcome.hint
        # Refusals of any batches are the evidence (three, over the 2 s a blip is given),
        # not three per batch: a handful of turns in all.
        given_up = re.search(r"gave up after (\d+) failed request\(s\)", str(outcome))
        assert given_up is not None and 3 <= int(given_up[1]) <= 6, str(outcome)


async def test_a_wrong_key_still_ends_every_queued_wait_at_the_first_answer(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    async with AsyncDifyKnowledgeClient(
        "dataset-wrong", base_url, requests_per_minute=RPM, **FAST
    ) as client:
        with pytest.raises(DifyAuthenticationError):
            await asyncio.wait_for(
                client.wait_for_batches(
                    [(dataset_id, ref.batch) for ref in _refs()], timeout=GUARD
                ),
                GUARD,
            )
    assert len(sim.requests_for(route="indexing_status")) <= 2  # not one per batch


async def test_a_silent_server_still_times_out_queued_waits_on_contact(
    servers: HostileServers,
) -> None:
    base_url = await servers.silent()
    async with AsyncDifyKnowledgeClient(
        "dataset-k", base_url, requests_per_minute=RPM, timeout=30, **FAST
    ) as client:
        with pytest.raises(DifyTimeoutError) as silent:
            await asyncio.wait_for(
                client.wait_for_batches(_refs(), timeout=GUARD, contact_timeout=CONTACT), GUARD
            )
    assert not isinstance(silent.value, IndexingError)
    assert "does not answer" in str(silent.value)
    assert len(servers.seen) < BATCHES  # ended by the first polls out, not the last


async def test_a_silent_server_times_out_waits_that_leave_their_first_look_to_the_sweep(
    servers: HostileServers,
) -> None:
    # Waits that know their documents send no first poll of their own while the dataset's
    # sweep looks for them (up to max_poll_interval): the sweep's unanswered list request
    # is their attempt, so contact_timeout still ends them, long before that first poll.
    base_url = await servers.silent()
    created = [
        CreatedDocument(dataset_id=DS, document_id=f"doc-{ref.batch}", batch=ref.batch, name="x")
        for ref in _refs(12)
    ]
    async with AsyncDifyKnowledgeClient("dataset-k", base_url, timeout=30, **FAST) as client:
        with pytest.raises(DifyTimeoutError) as silent:
            await asyncio.wait_for(
                client.wait_for_batches(
                    created, timeout=GUARD, contact_timeout=CONTACT, max_poll_interval=GUARD
                ),
                GUARD,
            )
    assert "does not answer" in str(silent.value)
    assert len(servers.seen) == 1  # the sweep's list: no batch had polled on its own yet
