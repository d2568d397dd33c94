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
* hostile strings: every name, passage and error holds an ANSI clear-screen, a BEL, CR/LF
  and the client's key; names and passages are 1 MB. Each tool answer of a `DifyToolset`
  (``answer_chars=4000``): the text's and the structured content's size, raw control
  characters and the key found in either. Each CLI command's output: its size, raw
  control bytes (anything below 0x20 but LF and TAB, and DEL) and the key found. And
  ``dify-ingest documents`` against a list whose ``has_more`` never turns false: pages read,
  seconds, and the child's peak RSS.

    python benchmarks/bench_hostile.py            # ~2 min on 2 cores, needs ~2 GB free
    python benchmarks/bench_hostile.py --quick    # a tenth of the large status, no 60 s hang
    python benchmarks/bench_hostile.py --strings  # only the hostile-strings tables
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
import tempfile
import time
import zlib
from multiprocessing.connection import Connection
from pathlib import Path
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


KEY = "bench-hostile-key-7f3a9c2e41d0"
NASTY = f"\x1b[2J\x1b[31m\x07\rforged\nline {KEY} "
BIG_NAME = NASTY + "N" * 1_000_000
BIG_TEXT = NASTY + "passage " * 130_000
DOC = "5c2a1d6e-0a6b-4f57-9c57-1c1e4a9e4f11"
RAW_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])


def _hostile_names(request: web.Request) -> web.Response:
    """``/names/v1/...``: 1 MB names and passages with ANSI, BEL, CR/LF and the key; its
    document list says ``has_more`` for ever (``/names-forever/``: fresh ids, no total)."""
    path = request.path
    page = int(request.query.get("page", "1"))
    error = f"Authorization: Bearer {KEY} {NASTY}" + "E" * 5000

    def document(number: int, name: str) -> dict[str, Any]:
        return {
            "id": f"{page:08x}-0000-4000-8000-{number:012x}",
            "name": name,
            "indexing_status": "error",
            "display_status": "error",
            "error": error,
        }

    body: Any
    if path.endswith("/retrieve"):
        segment = {"id": DOC, "position": 1, "content": BIG_TEXT, "document_id": DOC}
        record = {"score": 0.9, "segment": {**segment, "document": {"id": DOC, "name": BIG_NAME}}}
        body = {"query": {"content": "q"}, "records": [record] * 4}
    elif "/document/create" in path:
        body = {"document": {**document(0, BIG_NAME), "id": DOC}, "batch": BATCH}
    elif path.endswith("/indexing-status"):
        body = {"data": [{**document(n, ""), "completed_segments": 0} for n in range(30)]}
    elif path.endswith("/documents"):
        forever = path.startswith("/names-forever/")
        names = [BIG_NAME] + [NASTY + "n" * 50_000] * 24 if not forever else [NASTY]
        data = [document(n, name) for n, name in enumerate(names)]
        body = {"data": data, "has_more": True, "limit": 100, "total": 0 if forever else 250}
    elif "/documents/" in path:
        body = document(0, BIG_NAME)
    else:
        body = {"id": DS, "name": NASTY, "indexing_technique": "high_quality"}
    return web.Response(text=json.dumps(body), content_type="application/json")


def _serve(pipe: Connection, documents: int) -> None:
    bomb = _bomb(600 * MB)
    large = _large_status(documents)
    counts: dict[str, int] = {}
    first: set[str] = set()

    async def handle(request: web.Request) -> web.StreamResponse:
        scenario = request.path.split("/")[1]
        counts[scenario] = counts.get(scenario, 0) + 1
        if scenario == "names-forever":
            return _hostile_names(request)
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
        if scenario == "names":
            return _hostile_names(request)
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
    if kind == "answers":
        from dify_ingest_tools.agent.toolkit import DifyToolset

        calls = {
            "search": {"query": "refunds"},
            "list_documents": {},
            "indexing_status": {"batch": BATCH},
            "upload_text": {"name": "a.md", "text": "alpha", "wait_seconds": 0},
        }
        tools = DifyToolset(dataset_id=DS, not_found_grace=0)
        async with AsyncDifyKnowledgeClient(KEY, f"{root}/names/v1", ledger="off") as client:
            for name, arguments in calls.items():
                result = await tools.run(client, name, arguments)
                structured = json.dumps(result.data, ensure_ascii=False)
                out[name] = {
                    "text": len(result.text),
                    "structured": len(structured),
                    # In the text, LF is the line break; in a field, any control is raw.
                    "controls": sum(result.text.count(c) for c in "\x1b\x07\r")
                    + _raw_controls({k: v for k, v in result.data.items() if k != "answer"}),
                    "key": KEY in result.text or KEY in structured,
                }
        return out
    raise SystemExit(f"unknown measurement {kind}")


def _raw_controls(value: Any) -> int:
    """Control characters (C0, DEL, C1) in every string of a JSON value."""
    if isinstance(value, str):
        return sum(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)
    if isinstance(value, dict):
        return sum(_raw_controls(k) + _raw_controls(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_raw_controls(item) for item in value)
    return 0


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


# The CLI, with its own peak RSS written to a file (RUSAGE_CHILDREN would report the largest
# child so far, e.g. the large-status one).
_CLI_WITH_PEAK = """
import resource, sys
from pathlib import Path
from dify_ingest_tools.cli import main
try:
    code = main(sys.argv[2:])
finally:
    Path(sys.argv[1]).write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(code)
"""


def _cli(port: int, scenario: str, *args: str) -> dict[str, Any]:
    """One ``dify-ingest`` command against the hostile server: its output and peak RSS."""
    env = {
        "DIFY_API_KEY": KEY,
        "DIFY_API_BASE_URL": f"http://127.0.0.1:{port}/{scenario}/v1",
        "DIFY_INGEST_LEDGER": "off",
        "PATH": "/usr/bin:/bin",
    }
    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _CLI_WITH_PEAK, str(peak_file), *args],
            capture_output=True,
            env=env,
            timeout=600,
        )
        seconds = time.perf_counter() - started
        peak_kib = int(peak_file.read_text() or 0)
    output = done.stdout + done.stderr
    return {
        "seconds": seconds,
        "bytes": len(output),
        "controls": sum(output.count(bytes([b])) for b in RAW_CONTROL_BYTES),
        "key": KEY.encode() in output,
        "code": done.returncode,
        "peak_mb": peak_kib / 1024,
    }


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
    parser.add_argument(
        "--strings", action="store_true", help="only the hostile-strings tables (~30 s)"
    )
    parser.add_argument("--child")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.child, args.port))))
        return

    documents = 1_000 if args.strings else 74_000 if args.quick else 740_000
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child, documents), daemon=True)
    server.start()
    port, bomb_size, large_size = parent.recv()
    print(
        f"python {platform.python_version()}, aiohttp {aiohttp.__version__}, {platform.machine()}"
    )
    try:
        if args.strings:
            _strings(port)
            return
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
        _strings(port)
    finally:
        parent.send("stop")
        server.join(10)


def _strings(port: int) -> None:
    answers = _child("answers", port)
    print("\ntool answers (answer_chars=4000): 1 MB names and passages, ANSI, BEL, CR/LF, key")
    print("| tool | text chars | structured chars | raw controls | key found |")
    print("|---|---|---|---|---|")
    for name, row in answers.items():
        print(
            f"| {name} | {row['text']:,} | {row['structured']:,} | {row['controls']} | "
            f"{'yes' if row['key'] else 'no'} |"
        )
    print("(before: search and list_documents answers of 1,000,000+ characters, key and ANSI kept)")
    print("\nCLI output, same server")
    print("| command | output bytes | raw control bytes | key found | exit |")
    print("|---|---|---|---|---|")
    commands = {
        "search": ("search", "--dataset", DS, "refunds"),
        "documents": ("documents", "--dataset", DS),
        "status": ("status", DS, BATCH),
        "wait": ("wait", DS, BATCH, "--timeout", "5", "--no-progress"),
    }
    for label, args in commands.items():
        row = _cli(port, "names", *args)
        print(
            f"| {label} | {row['bytes']:,} | {row['controls']} | "
            f"{'yes' if row['key'] else 'no'} | {row['code']} |"
        )
    before = _count(port, "names-forever")
    row = _cli(port, "names-forever", "documents", "--dataset", DS)
    pages = _count(port, "names-forever") - before
    print(
        f"\n`documents` against has_more: true for ever (fresh ids, no total): {pages:,} pages "
        f"in {row['seconds']:.1f} s, peak RSS {row['peak_mb']:.0f} MB, exit {row['code']} "
        "(before: 5,232 pages and 855 MB, stopped by hand)"
    )


if __name__ == "__main__":
    main()
