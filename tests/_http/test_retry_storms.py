"""Retries can never storm, overflow or keep a workspace locked, whatever the server says.

Real HTTP against hostile servers on 127.0.0.1; bounds are generous (rates are measured
precisely in benchmarks/bench_hostile.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from aiohttp import web

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyRateLimitError,
    IndexingTimeoutError,
)
from dify_ingest_tools.errors import RATE_LIMIT_MESSAGE
from tests.hostile import BATCH, DS, HostileServers, servers, status_response

__all__ = ["servers"]

PAST = format_datetime(datetime.now(timezone.utc) - timedelta(days=1), usegmt=True)
RATE_LIMITED = json.dumps({"code": "forbidden", "message": RATE_LIMIT_MESSAGE, "status": 403})
RECORDS = json.dumps({"query": {"content": "q"}, "records": []})


@pytest.mark.parametrize("retry_after", ["0", "-5", PAST, "nan"])
async def test_retry_after_zero_or_garbage_during_a_wait_does_not_storm(
    servers: HostileServers, retry_after: str
) -> None:
    answered = [False]

    async def throttle(request: web.Request) -> web.Response:
        if not answered[0]:  # one good answer, so the wait is past its contact budget
            answered[0] = True
            return status_response()
        return web.Response(
            status=429,
            headers={"Retry-After": retry_after},
            text=json.dumps({"code": "too_many_requests", "message": "slow down"}),
            content_type="application/json",
        )

    base_url = await servers.serve(throttle)
    async with AsyncDifyKnowledgeClient("k", base_url) as client:  # default backoff
        started = time.monotonic()
        with pytest.raises(IndexingTimeoutError):
            await client.wait_for_indexing(DS, BATCH, timeout=1.0, poll_interval=0.05)
        assert time.monotonic() - started < 2.5
    # 1 s of 0.25-0.5 and 0.5-1 s floors: a handful, where the unbounded loop sent ~4,400.
    assert len(servers.seen) <= 8


async def test_a_huge_retry_after_is_capped_and_bounded_by_the_deadline(
    servers: HostileServers,
) -> None:
    async def forever(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "86400"}, text="slow down")

    base_url = await servers.serve(forever)
    async with AsyncDifyKnowledgeClient("k", base_url, call_timeout=1.0) as client:
        started = time.monotonic()
        with pytest.raises(DifyRateLimitError) as caught:
            await client.get_indexing_status(DS, BATCH)
        assert time.monotonic() - started < 1.0  # the capped wait does not fit: raised at once
    assert caught.value.retry_after == 86400
    assert len(servers.seen) == 1


async def test_knowledge_rate_limit_pauses_every_counted_request_of_the_client(
    servers: HostileServers,
) -> None:
    refused = asyncio.Event()

    async def cloud(request: web.Request) -> web.Response:
        if request.path.endswith("/retrieve"):
            if not refused.is_set():
                refused.set()
                return web.Response(status=403, text=RATE_LIMITED, content_type="application/json")
            return web.Response(text=RECORDS, content_type="application/json")
        if request.path.endswith("/indexing-status"):
            return status_response()
        return web.Response(status=204)

    base_url = await servers.serve(cloud)
    async with AsyncDifyKnowledgeClient(
        "k", base_url, rate_limit_cooldown=1.0, call_timeout=5.0
    ) as client:
        first = asyncio.ensure_future(client.retrieve(DS, "first"))
        await asyncio.wait_for(refused.wait(), 5)
        refused_at = next(seen.at for seen in servers.seen if seen.method == "POST")
        await asyncio.sleep(0.1)
        # During the cool-down: a retrieve and a delete wait; a status poll does not.
        second = asyncio.ensure_future(client.retrieve(DS, "second"))
        delete = asyncio.ensure_future(client.delete_document(DS, DS))
        status = await client.get_indexing_status(DS, BATCH)
        assert status.documents[0].completed_segments == 1
        assert (await first) == [] and (await second) == []
        await delete
    # Reads (the dataset's settings a retrieve starts from, status polls) are not counted.
    counted = [seen for seen in servers.seen if seen.method != "GET"][1:]
    assert len(counted) == 3  # the first retrieve's retry, the second retrieve, the delete
    for seen in counted:
        assert seen.at - refused_at >= 0.95  # nothing counted before the window reopened
    polls = [seen for seen in servers.seen if seen.path.endswith("indexing-status")]
    assert polls and polls[0].at - refused_at < 0.9  # the poll was not held back


async def test_a_cool_down_past_the_deadline_refuses_at_once_without_a_request(
    servers: HostileServers,
) -> None:
    async def cloud(request: web.Request) -> web.Response:
        return web.Response(status=403, text=RATE_LIMITED, content_type="application/json")

    base_url = await servers.serve(cloud)
    async with AsyncDifyKnowledgeClient("k", base_url, call_timeout=5.0) as client:  # 60 s window
        started = time.monotonic()
        with pytest.raises(DifyRateLimitError) as caught:
            await client.retrieve(DS, "q")
        assert caught.value.is_knowledge_rate_limit
        assert caught.value.retry_after is not None and caught.value.retry_after >= 60
        assert caught.value.hint is not None and "requests_per_minute" in caught.value.hint
        with pytest.raises(DifyRateLimitError) as again:
            await client.create_document_by_text(DS, "a.txt", "alpha", indexing_technique="economy")
        assert time.monotonic() - started < 1.0
    assert again.value.message == RATE_LIMIT_MESSAGE
    assert again.value.retry_after is not None and 55 <= again.value.retry_after <= 66
    assert len(servers.seen) == 1  # the create never reached the locked workspace


def test_the_default_cool_down_is_difys_60_second_window() -> None:
    client = AsyncDifyKnowledgeClient("k")
    assert client.retry_policy.rate_limit_cooldown == 60.0
