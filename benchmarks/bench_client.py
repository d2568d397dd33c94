"""Requests per second of `get_indexing_status` vs a bare aiohttp GET-and-parse loop.

The simulator runs in a separate process; both loops hit the same server, the same batch, in
the same run, interleaved (bare, ours, bare, ours ...), and the best round of each is kept.
Prints a table with the ratio ours / bare at concurrency 1 and 32. Target: ratio >= 0.8.

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
from multiprocessing.connection import Connection

import aiohttp


def _serve(conn: Connection) -> None:
    from dify_ingest_tools.testing import DifySimulator, ManualClock

    clock = ManualClock()
    sim = DifySimulator(clock=clock)
    dataset_id = sim.create_dataset("bench")
    _, batch = sim.add_document(dataset_id, "bench.txt", "alpha beta gamma " * 50)
    clock.advance(3600)  # completed: a steady, realistic answer body

    async def main() -> None:
        async with sim.serve(port=0) as base_url:
            conn.send((base_url, sim.api_key, dataset_id, batch))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


async def _measure(
    call: Callable[[], Awaitable[object]], concurrency: int, seconds: float
) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def _run(args: argparse.Namespace, base_url: str, key: str, dataset: str, batch: str) -> None:
    from dify_ingest_tools import AsyncDifyKnowledgeClient

    url = f"{base_url}/datasets/{dataset}/documents/{batch}/indexing-status"
    headers = {"Authorization": f"Bearer {key}"}
    rows = []
    async with aiohttp.ClientSession() as session, AsyncDifyKnowledgeClient(key, base_url) as ours:

        async def bare() -> object:
            async with session.get(url, headers=headers) as response:
                response.raise_for_status()
                return await response.json()

        async def client() -> object:
            return await ours.get_indexing_status(dataset, batch)

        for concurrency in (1, 32):
            await _measure(bare, concurrency, 0.5)  # warm up connections on both
            await _measure(client, concurrency, 0.5)
            best_bare = best_ours = 0.0
            for _ in range(args.rounds):
                best_bare = max(best_bare, await _measure(bare, concurrency, args.seconds))
                best_ours = max(best_ours, await _measure(client, concurrency, args.seconds))
            rows.append((concurrency, best_bare, best_ours, best_ours / best_bare))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"rounds: {args.rounds} x {args.seconds:.1f}s per loop, best round kept\n")
    print(f"{'concurrency':>11} | {'bare aiohttp req/s':>18} | {'ours req/s':>10} | {'ratio':>5}")
    print(f"{'-' * 11}-+-{'-' * 18}-+-{'-' * 10}-+-{'-' * 5}")
    for concurrency, bare_rps, ours_rps, ratio in rows:
        flag = "" if ratio >= 0.8 else "  (below 0.8 target)"
        print(f"{concurrency:>11} | {bare_rps:>18.0f} | {ours_rps:>10.0f} | {ratio:>5.2f}{flag}")


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
        base_url, key, dataset, batch = ours_end.recv()
        asyncio.run(_run(args, base_url, key, dataset, batch))
    finally:
        ours_end.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()
