"""A fleet of processes against one rate-limited workspace: per-process vs shared budgets.

Setup. A `DifySimulator` runs in its own process (multiprocessing spawn, real clock) with
Dify Cloud's per-workspace knowledge rate limit switched on (``--limit`` counted requests per
``--window`` seconds; Dify's window is 60 s, scaled down here so a phase takes about a minute).
A throwaway ``redis-server`` is started on a free loopback port (or ``--redis-url``). Workers
are real processes (this script with ``--worker``), ``--processes`` of them (default 8).

Phases:

1. **per-process budgets**: each worker creates ``--uploads`` documents (default 250; 4 in
   flight) and waits for them, with its own in-process budget set to the workspace's limit —
   what each process of a fleet configures when it knows the plan but not the fleet.
   Creates are retried on the 403 (``retry_creates=True``, 3 retries).
2. **Redis budget**: the same, every worker on one `RedisBudget` (same URL and workspace).
   Then again on a Redis of its own that is killed (SIGKILL) when half of the uploads were
   sent: each worker goes on with its default fallback (``"share"``: one window's pause, then
   the limit divided by the 8 processes it saw in Redis).
3. **shared polls**: ``--poll-batches`` documents (default 200) are seeded stalled in
   ``indexing``; every worker waits on all of them (polling every 0.5 s, at most every 2 s)
   for ``--poll-seconds`` (8), then they are released; without, then with a shared
   `RedisStatusCache` (ttl 2 s, the longest poll interval). With the cache, the Redis
   commands per second during the wait are counted (``INFO commandstats``).
4. **killed and resumed**: every worker runs ``dify-ingest sync`` on its own folder of
   ``--uploads`` files (one shared SQLite ledger, the Redis budget); all are interrupted when
   half of the files were sent, then the same commands run again to the end. Once with
   Ctrl-C (SIGINT) and once with SIGKILL (a crash).

Measured: 403s the simulator sent; uploads that failed; the achieved rate of admitted counted
requests (creates) between the first and the last one, as a fraction of the limit; status
requests (``indexing-status``) and document-list requests per batch; and after phase 4 the
documents in the dataset against the files (lost = missing names, doubled = names present
twice, re-sent = creates beyond one per file).

Targets: with the Redis budget, 0 403s and a rate >= 0.9 of the limit; 0 403s too when
Redis is killed mid-run; shared polls cut status requests per batch by about the number of
processes, at a few Redis commands per waiter per poll round; 0 documents lost or doubled.

    python benchmarks/bench_fleet.py             # 8 x 250, about 6 minutes on 2 cores
    python benchmarks/bench_fleet.py --quick     # 8 x 60, about 2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _sim_process import SimulatorProcess

ROOT = Path(__file__).resolve().parents[1]

# -- the simulator process -----------------------------------------------------------------


def _serve(conn: Connection, time_scale: float) -> None:
    from dify_ingest_tools.testing import DifySimulator, DocumentScript

    sim = DifySimulator(time_scale=time_scale)
    with sim.serve_in_thread() as base_url:
        conn.send((base_url, sim.api_key))
        while True:
            command, *args = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "dataset":
                conn.send(sim.create_dataset(args[0]))
            elif command == "rate_limit":
                sim.set_rate_limit(args[0], window=args[1])
                conn.send(None)
            elif command == "reset":
                sim.clear_requests()
                conn.send(None)
            elif command == "seed":
                dataset_id, count = args
                stalled = DocumentScript(stall_at="indexing")
                added = [
                    sim.add_document(dataset_id, f"seed-{i}.txt", "alpha", script=stalled)
                    for i in range(count)
                ]
                conn.send(added)
            elif command == "slow_status":
                from dify_ingest_tools.testing import Fault

                sim.clear_faults()
                if args[0]:
                    sim.inject(Fault.latency(args[0]), route="indexing_status", times=100_000)
                conn.send(None)
            elif command == "release":
                for document_id in args[0]:
                    sim.release(document_id)
                conn.send(None)
            elif command == "creates":
                conn.send(sum(1 for r in sim.requests if r.route == "create_by_file"))
            elif command == "stats":
                conn.send(_stats(sim, args[0]))


def _stats(sim: Any, dataset_id: str | None) -> dict[str, Any]:
    records = sim.requests
    counted = ("create_by_text", "create_by_file", "delete_document", "retrieve")
    admitted = sorted(r.at for r in records if r.route in counted and r.status < 400)
    names: Counter[str] = Counter()
    if dataset_id is not None:
        with sim._lock:
            dataset = sim._core.store.datasets[dataset_id]
            names.update(doc.name for doc in dataset.documents.values())
    return {
        "routes": Counter((r.route, r.status) for r in records),
        "admitted": admitted,
        "refused": sum(1 for r in records if r.status == 403),
        "names": names,
    }


# -- Redis ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis() -> tuple[str, subprocess.Popen[bytes]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return f"redis://127.0.0.1:{port}/0", process
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise SystemExit("redis-server did not start")


# -- workers ----------------------------------------------------------------------------------


async def _upload_worker(spec: dict[str, Any]) -> dict[str, Any]:
    from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyError, RedisBudget

    options: dict[str, Any] = {"ledger": False, "retry_creates": True}
    if spec.get("redis"):
        options["budget"] = RedisBudget(
            spec["redis"],
            workspace=spec["workspace"],
            limit=spec["limit"],
            window=spec["window"],
            latency_allowance=spec["allowance"],
        )
    else:
        options["requests_per_minute"] = spec["limit"] * 60.0 / spec["window"]
    semaphore = asyncio.Semaphore(4)
    failed = 0
    created = []
    async with AsyncDifyKnowledgeClient(spec["key"], spec["base_url"], **options) as client:

        async def one(i: int) -> None:
            nonlocal failed
            async with semaphore:
                try:
                    created.append(
                        await client.create_document_by_file(
                            spec["dataset"], f"{spec['prefix']}".encode() + b" %d" % i,
                            filename=f"{spec['prefix']}-{i}.txt",
                        )
                    )  # fmt: skip
                except DifyError:
                    failed += 1

        await asyncio.gather(*(one(i) for i in range(spec["uploads"])))
        statuses = await client.wait_for_batches(
            created, timeout=300, poll_interval=0.5, max_poll_interval=2.0, raise_on_error=False
        )
    return {
        "created": len(created),
        "failed": failed,
        "ready": sum(s.is_completed for s in statuses),
    }


async def _wait_worker(spec: dict[str, Any]) -> dict[str, Any]:
    from dify_ingest_tools import AsyncDifyKnowledgeClient
    from dify_ingest_tools.backends.shared_polls import RedisStatusCache

    cache = (
        RedisStatusCache(spec["redis"], ttl=2.0, namespace=spec["namespace"])
        if spec.get("redis")
        else None
    )
    async with AsyncDifyKnowledgeClient(
        spec["key"], spec["base_url"], ledger=False, status_cache=cache
    ) as client:
        print("waiting", flush=True)
        statuses = await client.wait_for_batches(
            [(spec["dataset"], batch) for batch in spec["batches"]],
            timeout=300,
            poll_interval=0.5,
            max_poll_interval=2.0,
        )
    return {"ready": sum(s.is_completed for s in statuses)}


async def _slow_wait_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """``waiters`` clients with a cache each (as many processes would have), one batch."""
    from dify_ingest_tools import AsyncDifyKnowledgeClient
    from dify_ingest_tools.backends.shared_polls import RedisStatusCache

    caches = [
        RedisStatusCache(spec["redis"], ttl=0.25, namespace=spec["namespace"])
        for _ in range(spec["waiters"])
    ]
    clients = [
        AsyncDifyKnowledgeClient(spec["key"], spec["base_url"], ledger=False, status_cache=cache)
        for cache in caches
    ]
    print("waiting", flush=True)
    try:
        await asyncio.gather(
            *(
                client.wait_for_batches(
                    [(spec["dataset"], spec["batch"])],
                    timeout=300,
                    poll_interval=0.5,
                    max_poll_interval=0.5,
                )
                for client in clients
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    return {
        "fetches": sum(cache.fetches for cache in caches),
        "hits": sum(cache.hits for cache in caches),
    }


def _worker_main(raw: str) -> None:
    spec = json.loads(raw)
    job = {"upload": _upload_worker, "wait": _wait_worker, "slow-wait": _slow_wait_worker}[
        spec["job"]
    ]
    print(json.dumps(asyncio.run(job(spec))), flush=True)


def _start_worker(spec: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _collect(processes: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=900)
        if process.returncode != 0:
            raise SystemExit(f"worker failed ({process.returncode}):\n{err[-2000:]}")
        answers.append(json.loads(out.strip().splitlines()[-1]))
    return answers


# -- phases ------------------------------------------------------------------------------------


def budget_phase(
    server: SimulatorProcess,
    args: argparse.Namespace,
    redis: str | None,
    kill: subprocess.Popen[bytes] | None = None,
) -> dict[str, Any]:
    name = ("redis, killed mid-run" if kill else "redis") if redis else "per-process"
    dataset = server.call("dataset", f"fleet-{name}")
    server.call("rate_limit", args.limit, args.window)  # a fresh window: no earlier calls
    server.call("reset")
    spec = {"job": "upload", "base_url": server.base_url, "key": server.api_key,
            "dataset": dataset, "uploads": args.uploads, "limit": args.limit,
            "window": args.window, "allowance": args.allowance, "redis": redis,
            "workspace": f"bench-{os.getpid()}-{name.replace(' ', '')}"}  # fmt: skip
    started = time.monotonic()
    workers = [_start_worker({**spec, "prefix": f"p{i}"}) for i in range(args.processes)]
    if kill is not None:
        while server.call("creates") < args.processes * args.uploads // 2:
            time.sleep(0.05)
        kill.kill()
        kill.wait(10)
    answers = _collect(workers)
    wall = time.monotonic() - started
    stats = server.call("stats", None)
    admitted = stats["admitted"]
    span = admitted[-1] - admitted[0] if len(admitted) > 1 else float("nan")
    limit_rate = args.limit / args.window
    created = sum(a["created"] for a in answers)
    routes = stats["routes"]
    status_requests = sum(n for (route, _), n in routes.items() if route == "indexing_status")
    list_requests = sum(n for (route, _), n in routes.items() if route == "list_documents")
    return {
        "phase": name,
        "refused": stats["refused"],
        "created": created,
        "failed": sum(a["failed"] for a in answers),
        "rate": (len(admitted) - 1) / span / limit_rate if len(admitted) > 1 else 0.0,
        "status_per_batch": status_requests / max(created, 1),
        "list_per_batch": list_requests / max(created, 1),
        "wall": wall,
    }


def polls_phase(
    server: SimulatorProcess, args: argparse.Namespace, redis: str | None
) -> dict[str, Any]:
    dataset = server.call("dataset", f"polls-{'shared' if redis else 'alone'}")
    added = server.call("seed", dataset, args.poll_batches)
    spec = {"job": "wait", "base_url": server.base_url, "key": server.api_key,
            "dataset": dataset, "batches": [batch for _, batch in added], "redis": redis,
            "namespace": f"bench-{os.getpid()}-{dataset[:8]}"}  # fmt: skip
    processes = [_start_worker(spec) for _ in range(args.processes)]
    for process in processes:
        assert process.stdout is not None
        process.stdout.readline()
    server.call("reset")
    before = _redis_commands(redis) if redis else 0
    started = time.monotonic()
    time.sleep(args.poll_seconds)
    commands = (_redis_commands(redis) - before) if redis else 0
    elapsed = time.monotonic() - started
    server.call("release", [document_id for document_id, _ in added])
    answers = _collect(processes)
    routes = server.call("stats", None)["routes"]
    status_requests = sum(n for (route, _), n in routes.items() if route == "indexing_status")
    list_requests = sum(n for (route, _), n in routes.items() if route == "list_documents")
    return {
        "phase": "shared polls" if redis else "own polls",
        "ready": sum(a["ready"] for a in answers),
        "status_per_batch": status_requests / args.poll_batches,
        "list_per_batch": list_requests / args.poll_batches,
        "redis_per_second": commands / elapsed,
    }


def slow_polls_phase(
    server: SimulatorProcess,
    args: argparse.Namespace,
    redis: str,
    waiters: int = 20,
    latency: float = 2.0,
) -> dict[str, Any]:
    """``waiters`` waiting on one batch while each status answer takes ``latency`` s."""
    dataset = server.call("dataset", "polls-slow")
    ((document_id, batch),) = server.call("seed", dataset, 1)
    server.call("slow_status", latency)
    spec = {"job": "slow-wait", "base_url": server.base_url, "key": server.api_key,
            "dataset": dataset, "batch": batch, "redis": redis, "waiters": waiters,
            "namespace": f"bench-{os.getpid()}-slow"}  # fmt: skip
    worker = _start_worker(spec)
    assert worker.stdout is not None
    worker.stdout.readline()
    time.sleep(2 * latency)  # past the first round
    server.call("reset")
    before, started = _redis_commands(redis), time.monotonic()
    time.sleep(args.poll_seconds)
    commands, elapsed = _redis_commands(redis) - before, time.monotonic() - started
    routes = server.call("stats", None)["routes"]
    status_requests = sum(n for (route, _), n in routes.items() if route == "indexing_status")
    server.call("slow_status", 0)
    server.call("release", [document_id])
    (answer,) = _collect([worker])
    return {
        "waiters": waiters,
        "latency": latency,
        "redis_per_second": commands / elapsed,
        "dify_per_second": status_requests / elapsed,
        "polls_per_dify_request": (answer["hits"] + answer["fetches"]) / max(answer["fetches"], 1),
    }


def _redis_commands(url: str) -> int:
    """Commands the server ran so far (scripts' inner calls included, INFO left out)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def resume_phase(
    server: SimulatorProcess, args: argparse.Namespace, redis: str, how: str, workdir: Path
) -> dict[str, Any]:
    dataset = server.call("dataset", f"resume-{how}")
    ledger = workdir / f"ledger-{how}.db"
    folders = []
    for i in range(args.processes):
        folder = workdir / f"{how}-{i}"
        folder.mkdir()
        for j in range(args.uploads):
            (folder / f"w{i}-{j:04}.txt").write_text(f"worker {i} document {j}")
        folders.append(folder)
    env = {**os.environ, "DIFY_API_KEY": server.api_key, "DIFY_API_BASE_URL": server.base_url}

    def run_all() -> list[subprocess.Popen[str]]:
        return [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dify_ingest_tools.cli",
                    "sync",
                    str(folder),
                    "--dataset",
                    dataset,
                    "--ledger",
                    str(ledger),
                    "--json",
                    "--no-progress",
                    "--concurrency",
                    "4",
                    "--redis-url",
                    redis,
                    "--workspace",
                    f"bench-{os.getpid()}-{how}",
                    "--requests-per-minute",
                    str(args.limit),
                    "--budget-window",
                    str(args.window),
                    "--latency-allowance",
                    str(args.allowance),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for folder in folders
        ]

    total = args.processes * args.uploads
    server.call("rate_limit", args.limit, args.window)
    server.call("reset")
    first = run_all()
    while server.call("creates") < total // 2:
        time.sleep(0.1)
    for process in first:
        process.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    codes = [process.wait(60) for process in first]
    for process in first:
        process.communicate()
    sent_first = server.call("creates")
    second = run_all()
    reports = []
    for process in second:
        out, err = process.communicate(timeout=900)
        if process.returncode != 0:
            raise SystemExit(f"resumed sync failed ({process.returncode}):\n{err[-2000:]}")
        reports.append(json.loads(out))
    stats = server.call("stats", dataset)
    names: Counter[str] = stats["names"]
    expected = {f"w{i}-{j:04}.txt" for i in range(args.processes) for j in range(args.uploads)}
    return {
        "phase": f"killed ({how}) + resumed",
        "first_exit": sorted(set(codes)),
        "sent_before_kill": sent_first,
        "creates": server.call("creates"),
        "files": total,
        "lost": len(expected - set(names)),
        "doubled": sum(1 for count in names.values() if count > 1),
        "resent": server.call("creates") - total,
        "uploaded_on_resume": sum(len(r["uploaded"]) for r in reports),
    }


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--uploads", type=int, default=250, help="per process")
    parser.add_argument("--limit", type=int, default=330, help="requests per window")
    parser.add_argument("--window", type=float, default=10.0, help="seconds (Dify: 60)")
    parser.add_argument("--allowance", type=float, default=0.3, help="latency allowance, s")
    parser.add_argument("--poll-batches", type=int, default=200)
    parser.add_argument("--poll-seconds", type=float, default=8.0)
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--quick", action="store_true", help="60 uploads per process")
    parser.add_argument("--skip", action="append", default=[], help="phase: budget polls resume")
    args = parser.parse_args()
    if args.worker:
        _worker_main(args.worker)
        return
    if args.quick:
        args.uploads, args.poll_batches, args.poll_seconds = 60, 100, 5.0
    redis_process = None
    redis = args.redis_url
    if redis is None:
        redis, redis_process = start_redis()
    server = SimulatorProcess(_serve, time_scale=0.2)
    print(
        f"{args.processes} processes x {args.uploads} uploads; workspace limit {args.limit} "
        f"per {args.window:g} s ({args.limit / args.window:.1f}/s); Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    try:
        server.call("rate_limit", args.limit, args.window)
        if "budget" not in args.skip:
            print("\n| budget | 403s | uploads ok | failed | rate / limit | status req/batch "
                  "| list req/batch | wall s |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
            doomed_url, doomed = start_redis()  # a Redis of its own, killed mid-run
            try:
                for redis_url, kill in ((None, None), (redis, None), (doomed_url, doomed)):
                    r = budget_phase(server, args, redis_url, kill)
                    print(f"| {r['phase']} | {r['refused']} | {r['created']} | {r['failed']} | "
                          f"{r['rate']:.2f} | {r['status_per_batch']:.2f} | "
                          f"{r['list_per_batch']:.2f} | {r['wall']:.0f} |", flush=True)  # fmt: skip
            finally:
                if doomed.poll() is None:
                    doomed.kill()
                doomed.wait(10)
        if "polls" not in args.skip:
            print(f"\n{args.processes} processes waiting on the same {args.poll_batches} batches "
                  f"for {args.poll_seconds:g} s\n\n| polls | batches ready (all workers) "
                  "| status req/batch | list req/batch | Redis commands/s |"
                  "\n|---|---|---|---|---|")  # fmt: skip
            for redis_url in (None, redis):
                r = polls_phase(server, args, redis_url)
                rate = f"{r['redis_per_second']:.0f}" if redis_url else "-"
                print(f"| {r['phase']} | {r['ready']} | {r['status_per_batch']:.1f} | "
                      f"{r['list_per_batch']:.2f} | {rate} |", flush=True)  # fmt: skip
            r = slow_polls_phase(server, args, redis)
            print(f"\n{r['waiters']} waiters (a shared-polls cache each) on one batch whose "
                  f"status answer takes {r['latency']:g} s: {r['redis_per_second']:.0f} Redis "
                  f"commands/s, {r['dify_per_second']:.2f} status requests/s to Dify, "
                  f"{r['polls_per_dify_request']:.1f} waiter polls per Dify request",
                  flush=True)  # fmt: skip
        if "resume" not in args.skip:
            print("\n| run | exit codes when killed | sent before kill | files | creates | "
                  "lost | doubled | re-sent | uploaded on resume |\n"
                  "|---|---|---|---|---|---|---|---|---|")  # fmt: skip
            with tempfile.TemporaryDirectory() as workdir:
                for how in ("ctrl-c", "crash"):
                    r = resume_phase(server, args, redis, how, Path(workdir))
                    print(f"| {r['phase']} | {r['first_exit']} | {r['sent_before_kill']} | "
                          f"{r['files']} | {r['creates']} | {r['lost']} | {r['doubled']} | "
                          f"{r['resent']} | {r['uploaded_on_resume']} |", flush=True)  # fmt: skip
    finally:
        server.stop()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(10)


if __name__ == "__main__":
    main()
