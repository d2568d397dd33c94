"""Hostile servers: what a gzip bomb, a huge status, ``Retry-After: 0`` and a hang cost us.

Setup. A hostile aiohttp server runs in its own process (multiprocessing spawn) and serves
one scenario per path prefix (``/bomb/v1``, ``/large/v1``, ``/throttle/v1``, ``/hang/v1``).
Each measurement runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own;
"growth" is that peak minus the RSS the child had after a warm-up request, so imports and
the session are not counted.

Scenarios:

* gzip bomb: 600 MB of JSON-ish filler, gzip-compressed to ~0.6 MB and sent with a
  ``Content-Length`` (the compressed size). Baseline: the same client fetching a normal
  status. Ours must refuse it (``response_too_large``) after decoding at most
  ``max_response_bytes`` (32 MiB), without retrying it.
* large status: one ``indexing-status`` answer of ~33 MB with 740,000 documents (the size
  in issue 9; ``--quick`` uses a tenth). Baseline: a bare aiohttp GET + ``json.loads`` of the
  same body. Ours: ``get_indexing_status`` (``max_response_bytes`` raised to let it in) and a
  ``wait_for_indexing(timeout=8)`` over it, whose deadline overshoot is measured.
* ``Retry-After: 0``: one status, then 429 with ``Retry-After: 0`` for ever. Ours: a 5 s
  ``wait_for_indexing``; baseline: a loop that honours ``Retry-After`` literally (what the
  client did before its delays had a floor). Requests per second as the server counted them.
* hang: one status, then connections that are accepted and never answered. Ours: a 3 s
  wait; its deadline overshoot. And a one-shot ``get_indexing_status`` with the default
  ``timeout=30`` against a server that never answers: how long until it raises
  (``call_timeout`` = 2 x timeout bounds it; the old path took 30 s x 4 attempts).

    python benchmarks/bench_hostile.py            # ~2 min on 2 cores, needs ~2 GB free
    python benchmarks/bench_hostile.py --quick    # a tenth of the large status, no 60 s hang
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import resource
import subprocess
import sys
import time
import zlib
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
from aiohttp import web

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
BATCH = "20261128154005508280"
MB = 1024 * 1024
SMALL_STATUS = (
    b'{"data": [{"id": "5c2a1d6e-0a6b-4f57-9c57-1c1e4a9e4f11", "indexing_status": "indexing",'
    b' "completed_segments": 1, "total_segments": 3}]}'
)


# -- the hostile server (its own process) -----------------------------------------------------


def _bomb(decoded: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * MB
    parts = [packer.compress(b'{"data": [')]
    parts += [packer.compress(block) for _ in range(decoded // MB)]
    parts.append(packer.compress(b"]}") + packer.flush())
    return b"".join(parts)


def _large_status(documents: int) -> bytes:
    # About 45 bytes a document, as in issue 9 (33 MB for 740,000): id and status only.
    doc = '{{"id":"{:06x}","indexing_status":"indexing"}}'
    body = ",".join(doc.format(i) for i in range(documents))
    return ('{"data":[' + body + "]}").encode()


def _serve(pipe: Connection, documents: int) -> None:
    bomb = _bomb(600 * MB)
    large = _large_status(documents)
    counts: dict[str, int] = {}
    first: set[str] = set()

    async def handle(request: web.Request) -> web.StreamResponse:
        scenario = request.path.split("/")[1]
        counts[scenario] = counts.get(scenario, 0) + 1
        if scenario == "bomb":
            if request.path.endswith("warmup"):
                return web.Response(body=SMALL_STATUS, content_type="application/json")
            return web.Response(
                body=bomb,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        if scenario == "large":
            if request.path.endswith("warmup"):
                return web.Response(body=SMALL_STATUS, content_type="application/json")
            return web.Response(body=large, content_type="application/json")
        if scenario in ("throttle", "hang", "naive") and scenario not in first:
            first.add(scenario)
            return web.Response(body=SMALL_STATUS, content_type="application/json")
        if scenario in ("throttle", "naive"):
            return web.Response(
                status=429,
                headers={"Retry-After": "0"},
                text='{"code": "too_many_requests", "message": "slow down"}',
                content_type="application/json",
            )
        if scenario == "count":
            return web.json_response(counts)
        if scenario == "reset":
            counts.clear()
            first.clear()
            return web.json_response({})
        await asyncio.sleep(3600)  # hang, silent: accepted, never answered
        return web.Response()

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        pipe.send((runner.addresses[0][1], len(bomb), len(large)))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await runner.cleanup()

    asyncio.run(main())


# -- measurements (each in a fresh child process) ---------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def _measure(kind: str, port: int) -> dict[str, Any]:
    from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyError

    root = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {}
    if kind == "bare-large":
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{root}/large/v1/warmup") as response:
                await response.read()
            base = _rss_mb()
            started = time.perf_counter()
            async with session.get(f"{root}/large/v1/x") as response:
                data = json.loads(await response.read())
            out["seconds"] = time.perf_counter() - started
            out["documents"] = len(data["data"])
        out["growth_mb"] = _peak_mb() - base
        return out
    if kind in ("ours-large", "ours-large-wait"):
        async with AsyncDifyKnowledgeClient(
            "k", f"{root}/large/v1", max_response_bytes=256 * MB
        ) as client:
            await client._transport.request("GET", client._url("warmup"), idempotent=True)
            base = _rss_mb()
            started = time.perf_counter()
            if kind == "ours-large":
                try:
                    status = await client.get_indexing_status(DS, BATCH)
                    out["documents"] = len(status.documents)
                except DifyError as error:  # more documents than a batch holds: refused
                    out["error"] = getattr(error, "code", type(error).__name__)
            else:
                try:
                    await client.wait_for_indexing(DS, BATCH, timeout=8)
                except DifyError as error:
                    out["error"] = getattr(error, "code", None) or type(error).__name__
                out["overshoot"] = time.perf_counter() - started - 8
            out["seconds"] = time.perf_counter() - started
        out["growth_mb"] = _peak_mb() - base
        return out
    if kind in ("bomb", "bomb-baseline"):
        async with AsyncDifyKnowledgeClient("k", f"{root}/bomb/v1") as client:
            await client._transport.request("GET", client._url("warmup"), idempotent=True)
            base = _rss_mb()
            started = time.perf_counter()
            path = "warmup" if kind == "bomb-baseline" else "x"
            try:
                await client._transport.json("GET", client._url(path), idempotent=True)
            except DifyError as error:
                out["error"] = getattr(error, "code", type(error).__name__)
            out["seconds"] = time.perf_counter() - started
        out["growth_mb"] = _peak_mb() - base
        return out
    if kind == "throttle":
        async with AsyncDifyKnowledgeClient("k", f"{root}/throttle/v1") as client:
            started = time.perf_counter()
            try:
                await client.wait_for_indexing(DS, BATCH, timeout=5, poll_interval=0.05)
            except DifyError as error:
                out["error"] = type(error).__name__
            out["seconds"] = time.perf_counter() - started
        return out
    if kind == "naive":
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            while time.perf_counter() - started < 5:
                async with session.get(f"{root}/naive/v1/x") as response:
                    await response.read()
                    if response.status == 429:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    else:
                        await asyncio.sleep(0.05)
            out["seconds"] = time.perf_counter() - started
        return out
    if kind == "hang-wait":
        async with AsyncDifyKnowledgeClient("k", f"{root}/hang/v1") as client:
            started = time.perf_counter()
            try:
                await client.wait_for_indexing(DS, BATCH, timeout=3, poll_interval=0.05)
            except DifyError as error:
                out["error"] = type(error).__name__
            out["overshoot"] = time.perf_counter() - started - 3
        return out
    if kind == "hang-status":
        async with AsyncDifyKnowledgeClient("k", f"{root}/silent/v1") as client:
            started = time.perf_counter()
            try:
                await client.get_indexing_status(DS, BATCH)
            except DifyError as error:
                out["error"] = type(error).__name__
            out["seconds"] = time.perf_counter() - started
        return out
    raise SystemExit(f"unknown measurement {kind}")


def _child(kind: str, port: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--port", str(port)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _count(port: int, scenario: str) -> int:
    async def get() -> dict[str, int]:
        url = f"http://127.0.0.1:{port}/count/"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            counts: dict[str, int] = await response.json()
            return counts

    return asyncio.run(get()).get(scenario, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.child, args.port))))
        return

    documents = 74_000 if args.quick else 740_000
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child, documents), daemon=True)
    server.start()
    port, bomb_size, large_size = parent.recv()
    print(
        f"python {platform.python_version()}, aiohttp {aiohttp.__version__}, {platform.machine()}"
    )
    try:
        base = _child("bomb-baseline", port)
        bomb = _child("bomb", port)
        before = _count(port, "bomb")
        print(f"\ngzip bomb: {bomb_size / MB:.2f} MB on the wire (Content-Length), 600 MB decoded")
        print("| | peak RSS growth | seconds | outcome |\n|---|---|---|---|")
        print(
            f"| baseline (normal status) | {base['growth_mb']:.1f} MB | "
            f"{base['seconds']:.3f} | ok |"
        )
        print(
            f"| ours | {bomb['growth_mb']:.1f} MB | {bomb['seconds']:.3f} | "
            f"{bomb.get('error', 'accepted!')} |"
        )
        print(f"(the server saw {before - 3} bomb request(s): not retried)")

        bare = _child("bare-large", port)
        ours = _child("ours-large", port)
        waited = _child("ours-large-wait", port)
        print(f"\nlarge status: {large_size / MB:.1f} MB, {documents:,} documents")
        print("| | peak RSS growth | seconds | RSS ratio to bare | outcome |")
        print("|---|---|---|---|---|")
        print(
            f"| bare aiohttp + json.loads | {bare['growth_mb']:.0f} MB | "
            f"{bare['seconds']:.2f} | 1 | {bare['documents']:,} documents |"
        )
        print(
            f"| ours: get_indexing_status | {ours['growth_mb']:.0f} MB | {ours['seconds']:.2f} | "
            f"{ours['growth_mb'] / max(bare['growth_mb'], 1):.2f} | "
            f"{ours.get('error') or str(ours.get('documents')) + ' documents'} |"
        )
        print(
            f"| ours: wait_for_indexing(timeout=8) | {waited['growth_mb']:.0f} MB | "
            f"{waited['seconds']:.2f} | "
            f"{waited['growth_mb'] / max(bare['growth_mb'], 1):.2f} | "
            f"{waited.get('error', '-')}, overshoot {waited['overshoot']:+.2f} s |"
        )

        naive = _child("naive", port)
        naive_requests = _count(port, "naive")
        throttled = _child("throttle", port)
        ours_requests = _count(port, "throttle")
        print("\n429 with Retry-After: 0 for 5 s")
        print("| | requests | per second |\n|---|---|---|")
        print(
            f"| baseline: honour Retry-After literally | {naive_requests} | "
            f"{naive_requests / naive['seconds']:.0f} |"
        )
        print(
            f"| ours: wait_for_indexing(timeout=5) | {ours_requests} | "
            f"{ours_requests / throttled['seconds']:.1f} | ({throttled.get('error', '-')})"
        )

        hang = _child("hang-wait", port)
        print(
            f"\nhang after one answer: wait_for_indexing(timeout=3) overshoot "
            f"{hang['overshoot']:+.3f} s ({hang.get('error', '-')})"
        )
        if not args.quick:
            status = _child("hang-status", port)
            print(
                f"silent server: get_indexing_status (timeout=30) raised "
                f"{status.get('error', '-')} after {status['seconds']:.1f} s "
                "(call_timeout = 60 s; before: 30 s x 4 attempts = 124 s)"
            )
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
