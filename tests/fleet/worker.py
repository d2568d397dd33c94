"""What the fleet tests run in child processes: ``python -m tests.fleet.worker JSON``.

The JSON says what to do; the result is printed as one JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyRateLimitError, DifyTimeoutError
from dify_ingest_tools.backends.redis_budget import RedisBudget


def _budget(spec: dict[str, Any]) -> RedisBudget:
    return RedisBudget(
        spec["redis"],
        workspace=spec["workspace"],
        limit=spec["limit"],
        window=spec.get("window", 60.0),
        latency_allowance=spec.get("latency_allowance", 0.5),
        burst=spec.get("burst"),
        fallback=spec.get("fallback"),
        retry_redis_after=spec.get("retry_redis_after", 5.0),
    )


async def acquire(spec: dict[str, Any]) -> dict[str, Any]:
    """Take ``n`` slots at once, each bounded by ``deadline`` seconds."""
    budget = _budget(spec)
    deadline = time.monotonic() + spec["deadline"]
    results = await asyncio.gather(
        *(budget.acquire(deadline) for _ in range(spec["n"])), return_exceptions=True
    )
    await budget.aclose()
    timeouts = sum(isinstance(result, DifyTimeoutError) for result in results)
    granted = sum(result is None for result in results)
    return {"granted": granted, "timeouts": timeouts}


async def cooldown(spec: dict[str, Any]) -> dict[str, Any]:
    budget = _budget(spec)
    await budget.report_rate_limited(spec["seconds"])
    await budget.aclose()
    return {"ok": True}


async def upload(spec: dict[str, Any]) -> dict[str, Any]:
    """Create ``n`` documents, ``concurrency`` at a time; count successes and 403s."""
    options: dict[str, Any] = {"backoff_base": 0.01, "backoff_max": 0.05}
    if "redis" in spec:
        options["budget"] = _budget(spec)
    elif "requests_per_minute" in spec:
        options["requests_per_minute"] = spec["requests_per_minute"]
    if "ledger" in spec:
        options["ledger"] = spec["ledger"]
    created = rate_limited = 0
    budget = options.get("budget")
    semaphore = asyncio.Semaphore(spec.get("concurrency", 4))
    async with AsyncDifyKnowledgeClient(spec["key"], spec["base_url"], **options) as client:

        async def one(i: int) -> None:
            nonlocal created, rate_limited
            async with semaphore:
                try:
                    await client.create_document_by_text(
                        spec["dataset"], f"{spec['prefix']}-{i}.txt", "alpha beta"
                    )
                except DifyRateLimitError:
                    rate_limited += 1
                else:
                    created += 1

        await asyncio.gather(*(one(i) for i in range(spec["n"])))
    fell_back = isinstance(budget, RedisBudget) and budget.in_fallback
    return {"created": created, "rate_limited": rate_limited, "fell_back": fell_back}


async def resume(spec: dict[str, Any]) -> dict[str, Any]:
    """``wait_for_pending()`` on a fresh client: what a restarted worker does."""
    async with AsyncDifyKnowledgeClient(
        spec["key"], spec["base_url"], ledger=spec["ledger"]
    ) as client:
        statuses = await client.wait_for_pending(timeout=60, poll_interval=0.05)
    return {
        "completed": sum(status.is_completed for status in statuses),
        "failed": sum(status.is_failed for status in statuses),
    }


async def wait(spec: dict[str, Any]) -> dict[str, Any]:
    """Wait on the given batches, polling every ``interval``; say "waiting" when started."""
    from dify_ingest_tools.backends.shared_polls import RedisStatusCache

    cache = RedisStatusCache(spec["redis"], ttl=spec["ttl"]) if "redis" in spec else None
    async with AsyncDifyKnowledgeClient(
        spec["key"], spec["base_url"], ledger=False, status_cache=cache
    ) as client:
        print("waiting", flush=True)
        statuses = await client.wait_for_batches(
            [(spec["dataset"], batch) for batch in spec["batches"]],
            timeout=60,
            poll_interval=spec["interval"],
            max_poll_interval=spec["interval"],
        )
    hits = cache.hits if cache is not None else 0
    return {"completed": sum(s.is_completed for s in statuses), "hits": hits}


COMMANDS = {
    "acquire": acquire,
    "cooldown": cooldown,
    "resume": resume,
    "upload": upload,
    "wait": wait,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = asyncio.run(COMMANDS[spec["command"]](spec))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
