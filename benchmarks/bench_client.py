"""Requests per second of `get_indexing_status`: ours vs a bare aiohttp loop vs the sync SDK.

The simulator runs in a separate process; every loop hits the same server in the same run,
interleaved round by round, and the best round of each is kept. Concurrent caller i polls
batch i (32 batches), so no two in-flight calls ask for the same thing: this measures HTTP
throughput, not our single-flight sharing of identical concurrent calls. Columns:

- bare aiohttp: one shared ``aiohttp.ClientSession``, GET + ``json()``, N concurrent tasks;
- ours: ``AsyncDifyKnowledgeClient.get_indexing_status`` (validation, typed result);
- sync SDK: Dify's official ``dify-client`` ``KnowledgeBaseClient.batch_indexing_status`` in
  N threads, if the installed ``dify-client`` has it; the release on PyPI (0.1.10, 2023)
  predates that class, so otherwise the equivalent loop it runs: a shared ``httpx.Client``,
  GET + ``json()`` (what dify-client 0.1.12's ``KnowledgeBaseClient`` does), in N threads.

Targets: ours >= 0.8x bare aiohttp at concurrency 1 and 32, and >= 3x the sync SDK at 32.

    python benchmarks/bench_client.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

import aiohttp


def _serve(conn: Connection) -> None:
    from dify_ingest_tools.testing import DifySimulator, ManualClock

    clock = ManualClock()
    sim = DifySimulator(clock=clock)
    dataset_id = sim.create_dataset("bench")
    batches = [
        sim.add_document(dataset_id, f"bench-{i}.txt", "alpha beta gamma " * 50)[1]
        for i in range(32)
    ]
    clock.advance(3600)  # completed: a steady, realistic answer body

    async def main() -> None:
        async with sim.serve(port=0) as base_url:
            conn.send((base_url, sim.api_key, dataset_id, batches))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


async def _measure(
    call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float
) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(slot: int) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await call(slot)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    return done / (time.perf_counter() - started)


def _sync_sdk(
    base_url: str, key: str, dataset: str, batches: list[str]
) -> tuple[str, Callable[[int], object]]:
    """A blocking status call as Dify's Python SDK makes it, and a label saying which one."""
    try:
        from dify_client import KnowledgeBaseClient  # type: ignore[import-not-found, unused-ignore]

        sdk = KnowledgeBaseClient(key, base_url=base_url, dataset_id=dataset)

        def call(slot: int) -> object:
            return sdk.batch_indexing_status(batches[slot]).json()

        return "dify-client KnowledgeBaseClient", call
    except ImportError:
        import httpx

        client = httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60)
        urls = [f"{base_url}/datasets/{dataset}/documents/{b}/indexing-status" for b in batches]

        def fallback(slot: int) -> object:
            response = client.get(urls[slot])
            response.raise_for_status()
            return response.json()

        return "httpx.Client loop (SDK-equivalent)", fallback


def _measure_threads(call: Callable[[int], object], threads: int, seconds: float) -> float:
    stop_at = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(slot: int) -> None:
        while time.perf_counter() < stop_at:
            call(slot)
            counts[slot] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return sum(counts) / (time.perf_counter() - started)


async def _run(
    args: argparse.Namespace, base_url: str, key: str, dataset: str, batches: list[str]
) -> None:
    from dify_ingest_tools import AsyncDifyKnowledgeClient

    urls = [f"{base_url}/datasets/{dataset}/documents/{b}/indexing-status" for b in batches]
    headers = {"Authorization": f"Bearer {key}"}
    rows = []
    async with aiohttp.ClientSession() as session, AsyncDifyKnowledgeClient(key, base_url) as ours:

        async def bare(slot: int) -> object:
            async with session.get(urls[slot], headers=headers) as response:
                response.raise_for_status()
                return await response.json()

        async def client(slot: int) -> object:
            return await ours.get_indexing_status(dataset, batches[slot])

        sdk_label, sdk_call = _sync_sdk(base_url, key, dataset, batches)
        loop = asyncio.get_running_loop()

        async def sdk(concurrency: int, seconds: float) -> float:
            return await loop.run_in_executor(
                None, _measure_threads, sdk_call, concurrency, seconds
            )

        for concurrency in (1, 32):
            await _measure(bare, concurrency, 0.5)  # warm up connections on all three
            await _measure(client, concurrency, 0.5)
            await sdk(concurrency, 0.5)
            best_bare = best_ours = best_sdk = 0.0
            for _ in range(args.rounds):
                best_bare = max(best_bare, await _measure(bare, concurrency, args.seconds))
                best_ours = max(best_ours, await _measure(client, concurrency, args.seconds))
                best_sdk = max(best_sdk, await sdk(concurrency, args.seconds))
            rows.append((concurrency, best_bare, best_ours, best_sdk))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"rounds: {args.rounds} x {args.seconds:.1f}s per loop, best round kept\n")
    print(f"sync SDK column: {sdk_label}, one thread per concurrent caller\n")
    header = (
        f"{'concurrency':>11} | {'bare aiohttp':>12} | {'ours':>7} | {'sync SDK':>8} | "
        f"{'ours/bare':>9} | {'ours/SDK':>8}"
    )
    print(header + "   (requests per second)")
    print("-" * len(header))
    for concurrency, bare_rps, ours_rps, sdk_rps in rows:
        vs_bare, vs_sdk = ours_rps / bare_rps, ours_rps / sdk_rps
        flags = []
        if vs_bare < 0.8:
            flags.append("below 0.8x bare")
        if concurrency == 32 and vs_sdk < 3:
            flags.append("below 3x SDK")
        note = f"  ({'; '.join(flags)})" if flags else ""
        print(
            f"{concurrency:>11} | {bare_rps:>12.0f} | {ours_rps:>7.0f} | {sdk_rps:>8.0f} | "
            f"{vs_bare:>9.2f} | {vs_sdk:>8.2f}{note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ours_end, server_end = context.Pipe()
    server = context.Process(target=_serve, args=(server_end,), daemon=True)
    server.start()
    try:
        base_url, key, dataset, batches = ours_end.recv()
        asyncio.run(_run(args, base_url, key, dataset, batches))
    finally:
        ours_end.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()
