"""Requests per second of `get_indexing_status`: ours vs a bare aiohttp loop vs the sync SDK.

The simulator runs in a separate process; every loop hits the same server in the same run.
The machine is shared and noisy, so each loop runs in many short rounds, interleaved (bare
and ours back to back, their order alternating), and the figures are medians: of each
loop's requests per second, and of the per-round ratio ours / bare (two loops measured
seconds apart see the same load). Concurrent caller i polls batch i (32 batches), so no two
in-flight calls ask for the same thing: this measures HTTP throughput, not our single-flight
sharing of identical concurrent calls. Columns:

- bare aiohttp: one shared ``aiohttp.ClientSession``, GET + ``json()``, N concurrent tasks;
- ours: ``AsyncDifyKnowledgeClient.get_indexing_status`` (validation, typed result), with
  the OpenTelemetry API installed or not, as it is here, and no provider configured (what
  its hooks cost on their own is printed below the table);
- sync SDK: Dify's official ``dify-client`` ``KnowledgeBaseClient.batch_indexing_status`` in
  N threads, if the installed ``dify-client`` has it; the release on PyPI (0.1.10, 2023)
  predates that class, so otherwise the equivalent loop it runs: a shared ``httpx.Client``,
  GET + ``json()`` (what dify-client 0.1.12's ``KnowledgeBaseClient`` does), in N threads.

Also printed: this process's CPU time per request in each loop (the server's is not in it).

Targets: ours >= 0.95x bare aiohttp at concurrency 1 and 32, and >= 3x the sync SDK at 32.

    python benchmarks/bench_client.py [--seconds 1.5] [--rounds 9] [--otel-sdk]

``--otel-sdk`` adds a loop with OpenTelemetry's SDK providers configured (every span and
measurement recorded, nothing exported): what tracing costs when it is on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

# requests per second, this process's CPU microseconds per request
Sample = tuple[float, float]


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

    async def serve() -> None:
        async with sim.serve(port=0) as base_url:
            conn.send((base_url, sim.api_key, dataset_id, batches))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(serve())


async def _measure(
    call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float
) -> Sample:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(slot: int) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await call(slot)
            done += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    cpu = time.process_time() - cpu
    return done / (time.perf_counter() - started), cpu / max(done, 1) * 1e6


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


def _measure_threads(call: Callable[[int], object], threads: int, seconds: float) -> Sample:
    stop_at = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(slot: int) -> None:
        while time.perf_counter() < stop_at:
            call(slot)
            counts[slot] += 1

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    cpu = time.process_time() - cpu
    done = sum(counts)
    return done / (time.perf_counter() - started), cpu / max(done, 1) * 1e6


def _hook_cost(base_url: str) -> float:
    """Nanoseconds one attempt spends in the OpenTelemetry hooks, as this process has them."""
    from yarl import URL

    from dify_ingest_tools._http.telemetry import Telemetry

    telemetry = Telemetry()
    url = URL(f"{base_url}/datasets/d/documents/b/indexing-status")
    calls, best = 20_000, float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            span = telemetry.start_attempt("GET", url, 0)
            if span is not None:
                telemetry.end_attempt(span, status=200)
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e9


def _otel_sdk_providers() -> dict[str, Any]:
    """SDK providers that record every span and measurement and export nothing."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Discard()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {"tracer_provider": tracer_provider, "meter_provider": meter_provider}


async def _run(
    args: argparse.Namespace, base_url: str, key: str, dataset: str, batches: list[str]
) -> None:
    from dify_ingest_tools import AsyncDifyKnowledgeClient

    urls = [f"{base_url}/datasets/{dataset}/documents/{b}/indexing-status" for b in batches]
    headers = {"Authorization": f"Bearer {key}"}
    rows: list[tuple[int, dict[str, list[Sample]], list[float]]] = []
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        ours = await stack.enter_async_context(AsyncDifyKnowledgeClient(key, base_url))

        async def bare(slot: int) -> object:
            async with session.get(urls[slot], headers=headers) as response:
                response.raise_for_status()
                return await response.json()

        async def client(slot: int) -> object:
            return await ours.get_indexing_status(dataset, batches[slot])

        loops: dict[str, Callable[[int], Awaitable[object]]] = {"bare": bare, "ours": client}
        if args.otel_sdk:
            traced_client = await stack.enter_async_context(
                AsyncDifyKnowledgeClient(key, base_url, **_otel_sdk_providers())
            )

            async def traced(slot: int) -> object:
                return await traced_client.get_indexing_status(dataset, batches[slot])

            loops["ours+OTel SDK"] = traced

        sdk_label, sdk_call = _sync_sdk(base_url, key, dataset, batches)
        loop = asyncio.get_running_loop()

        async def sdk(concurrency: int, seconds: float) -> Sample:
            return await loop.run_in_executor(
                None, _measure_threads, sdk_call, concurrency, seconds
            )

        for concurrency in (1, 32):
            for call in loops.values():  # warm up connections on all of them
                await _measure(call, concurrency, 0.5)
            await sdk(concurrency, 0.5)
            seen: dict[str, list[Sample]] = {name: [] for name in (*loops, "sdk")}
            ratios: list[float] = []
            for round_ in range(args.rounds):
                order = list(loops) if round_ % 2 == 0 else list(reversed(loops))
                for name in order:
                    seen[name].append(await _measure(loops[name], concurrency, args.seconds))
                ratios.append(seen["ours"][-1][0] / seen["bare"][-1][0])
                seen["sdk"].append(await sdk(concurrency, args.seconds))
            rows.append((concurrency, seen, ratios))
    _report(args, sdk_label, rows, _hook_cost(base_url))


def _report(
    args: argparse.Namespace,
    sdk_label: str,
    rows: list[tuple[int, dict[str, list[Sample]], list[float]]],
    hook_ns: float,
) -> None:
    median = statistics.median
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"rounds: {args.rounds} x {args.seconds:.1f}s per loop, interleaved; medians "
        "(ours/bare: the median of the per-round ratios, and their range)\n"
    )
    print(f"sync SDK column: {sdk_label}, one thread per concurrent caller\n")
    traced_head = f" | {'ours+OTel SDK':>13}" if args.otel_sdk else ""
    header = (
        f"{'concurrency':>11} | {'bare aiohttp':>12} | {'ours':>7}{traced_head} | "
        f"{'sync SDK':>8} | {'ours/bare':>9} | {'range':>9} | {'ours/SDK':>8}"
    )
    print(header + "   (requests per second)")
    print("-" * len(header))
    for concurrency, seen, ratios in rows:
        rps = {name: median([r for r, _ in samples]) for name, samples in seen.items()}
        vs_bare, vs_sdk = median(ratios), rps["ours"] / rps["sdk"]
        flags = []
        if vs_bare < 0.95:
            flags.append("below 0.95x bare")
        if concurrency == 32 and vs_sdk < 3:
            flags.append("below 3x SDK")
        note = f"  ({'; '.join(flags)})" if flags else ""
        traced_cell = f" | {rps['ours+OTel SDK']:>13.0f}" if args.otel_sdk else ""
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(
            f"{concurrency:>11} | {rps['bare']:>12.0f} | {rps['ours']:>7.0f}{traced_cell} | "
            f"{rps['sdk']:>8.0f} | {vs_bare:>9.2f} | {spread:>9} | {vs_sdk:>8.2f}{note}"
        )
    print("\nthis process's CPU per request, microseconds (medians):")
    for concurrency, seen, _ in rows:
        cells = ", ".join(
            f"{name} {median([c for _, c in samples]):.0f}" for name, samples in seen.items()
        )
        print(f"  concurrency {concurrency:>2}: {cells}")
    ours_cpu_ns = median([c for _, c in rows[0][1]["ours"]]) * 1000
    print(
        "\nOpenTelemetry hooks per attempt, as installed here, no provider configured: "
        f"{hook_ns:.0f} ns ({hook_ns / ours_cpu_ns:.2%} of ours' CPU per request)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--otel-sdk", action="store_true", help="add a loop with OpenTelemetry's SDK providers"
    )
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
