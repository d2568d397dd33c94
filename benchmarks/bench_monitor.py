"""Many concurrent waits: our `IndexingMonitor` vs the naive polling loop users write today.

Setup. A `DifySimulator` runs in its own process (multiprocessing spawn, real clock) and the
measuring process talks to it over HTTP. For each phase the server creates one fresh dataset
with N documents (default 1000), each in its own batch, all at the same instant, each taking a
seeded random total indexing time uniform in [0.5, --max-duration] seconds (the default
waiting/parsing/splitting/indexing timeline scaled by ``duration / 1.4`` per document, so the
status turns ``completed`` at exactly creation + duration). Both phases use the same seed, so
they see the same durations. Every batch then gets ``--waiters`` (default 5) concurrent waiters:

* naive: 5 x N asyncio tasks, each ``GET .../indexing-status`` on one shared bare
  ``aiohttp.ClientSession`` (connector limit 100), parsing the JSON, sleeping 1 s, until
  every document of its batch is ``completed``;
* ours: one ``AsyncDifyKnowledgeClient`` with default settings and 5 x N concurrent
  ``client.wait_for_batches([created], timeout=120)`` calls, ``created`` being the
  `CreatedDocument` the batch's create call returned (a pipeline holds those), so the waits
  know their documents; ``--batch-refs`` waits with ``wait_for_indexing(dataset_id, batch)``
  instead (batch ids only: each batch gets a first poll of its own).

Measured per phase:

* requests: every request the server received during the phase (all routes), from its
  request log, and per batch; the server's achieved request rate is printed too, because a
  single-process simulator cannot keep up with thousands of requests per second and a slow
  server inflates the naive loop's lag (which is also what happens to real users);
* detection lag per waiter: the wall time the wait returned minus the server-side completion
  instant of its batch (both on ``time.time()``: the server sends its clock-to-wall offset);
* peak RSS of the measuring process: on Linux the high-water mark (VmHWM) is reset before
  each phase (``/proc/self/clear_refs``), so it is the phase's own peak; elsewhere it is
  ``ru_maxrss``, a lifetime peak, so the second phase shows at least the first one's.
  Either way the second phase starts with what the first left in the heap (the RSS at phase
  start is printed); ``--ours-first`` swaps the order to see our footprint from a clean start;
* CPU seconds of the measuring process (``time.process_time()`` delta) and wall seconds.

Targets for ours: requests <= 1/20 of naive, lag p95 <= 1.0 s, peak RSS <= 200 MB (400 MB
beyond 1,000 batches). Above 1,000 batches (``--batches 10000``, or ``--growth``) the script
runs ours alone (two waiters per batch unless told) at 1,000, 3,000 and the given number of
batches, each in a fresh process (imports done before CPU is counted), and prints the growth
table: requests and CPU per batch must not be higher than at 1,000, and peak RSS stays
<= 400 MB. (The naive loop is not run there: 20,000 waiters polling every second are more
than the single-process simulator can answer.)

    python benchmarks/bench_monitor.py            # 1000 batches, about 30 s on 2 cores
    python benchmarks/bench_monitor.py --quick    # 200 batches
    python benchmarks/bench_monitor.py --ours-first   # measure ours in a fresh heap
    python benchmarks/bench_monitor.py --batches 10000   # growth table: ours at 1k, 3k, 10k
    python benchmarks/bench_monitor.py --batch-refs   # waits that know only their batch ids
    python benchmarks/bench_monitor.py --batches 500 --waiters 5 --seed 1 --max-duration 10

With ``BENCH_PROFILE=1`` in the environment, each of our growth-table runs also prints its
cProfile top 25 (by own time) to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import multiprocessing
import os
import platform
import random
import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

# About 850 characters: two segments, a small realistic indexing-status body.
TEXT = "alpha beta gamma delta " * 37
MIN_DURATION = 0.5
NAIVE_INTERVAL = 1.0
NAIVE_CONNECTIONS = 100
OURS_TIMEOUT = 120.0
TARGET_REQUEST_RATIO = 1 / 20
TARGET_LAG_P95 = 1.0
TARGET_RSS_MB = 200.0  # up to 1,000 batches
TARGET_RSS_LARGE_MB = 400.0  # beyond
GROWTH_SIZES = (1000, 3000, 10000)


# -- data exchanged between the processes ---------------------------------------------------


@dataclass(frozen=True)
class PhaseSetup:
    """What the server created for one phase."""

    dataset_id: str
    batches: list[str]
    documents: list[str]  # the document of each batch, as its create call returned it
    durations: list[float]
    completed_wall: list[float]  # per batch: creation + duration, as time.time()
    creation_seconds: float  # how long creating the documents took (clock frozen meanwhile)
    plan_error: float  # max |sum of the scaled stage durations - duration|


@dataclass(frozen=True)
class ServerReport:
    """The server's view of one phase, from its request log."""

    by_route: dict[str, int]
    total: int
    span: float  # first to last request arrival, seconds
    peak_per_second: int  # most requests arriving within one 1-second bucket
    non_2xx: int
    polls_per_batch: list[int]  # indexing-status requests per batch, in batch order
    polls_before_completion: int  # indexing-status requests that arrived before completion
    schedule_error: float | None  # max |observed completion - (creation + duration)|


@dataclass(frozen=True)
class PhaseResult:
    """The measuring process's view of one phase."""

    name: str
    returned: list[tuple[int, float]]  # (batch index, time.time() when the wait returned)
    failures: int
    client_errors: int
    wall: float
    cpu: float
    peak_rss_mb: float
    peak_is_phase: bool  # VmHWM reset at phase start (else ru_maxrss, a lifetime peak)
    rss_start_mb: float
    maxrss_mb: float


# -- the server process ---------------------------------------------------------------------


class _ShiftingClock:
    """``time.monotonic`` that can stand still while documents are created.

    Freezing while the N documents are created makes them all start at the same instant;
    thawing continues from that instant (the clock then runs behind ``time.monotonic`` by
    the time creation took), so no document has aged before the waiters start.
    """

    def __init__(self) -> None:
        self._shift = 0.0
        self._frozen: float | None = None

    def __call__(self) -> float:
        if self._frozen is not None:
            return self._frozen
        return time.monotonic() - self._shift

    def freeze(self) -> float:
        self._frozen = self()
        return self._frozen

    def thaw(self) -> None:
        assert self._frozen is not None
        self._shift = time.monotonic() - self._frozen
        self._frozen = None


class _Server:
    def __init__(self, seed: int) -> None:
        from dify_ingest_tools.testing import DifySimulator

        self.clock = _ShiftingClock()
        self.sim = DifySimulator(seed=seed, clock=self.clock)
        self.dataset_id = ""
        self.batch_index: dict[str, int] = {}
        self.documents: list[str] = []
        self.created = 0.0
        self.durations: list[float] = []

    def start(self, name: str, batches: int, seed: int, max_duration: float) -> PhaseSetup:
        from dify_ingest_tools.testing import DocumentScript
        from dify_ingest_tools.testing._script import DEFAULT_STAGES

        base = sum(seconds for _, seconds in DEFAULT_STAGES)  # 1.4 s at time_scale 1
        rng = random.Random(seed)
        self.durations = [rng.uniform(MIN_DURATION, max_duration) for _ in range(batches)]
        self.sim.clear_requests()
        self.dataset_id = self.sim.create_dataset(f"bench-{name}")
        began = time.perf_counter()
        self.created = self.clock.freeze()
        plan_error = 0.0
        batch_ids: list[str] = []
        self.documents = []
        for index, duration in enumerate(self.durations):
            script = DocumentScript(time_scale=duration / base)
            plan = script.stage_plan(1.0)
            plan_error = max(plan_error, abs(sum(seconds for _, seconds in plan) - duration))
            document_id, batch = self.sim.add_document(
                self.dataset_id, f"{name}-{index:05d}.txt", TEXT, script=script
            )
            batch_ids.append(batch)
            self.documents.append(document_id)
        self.clock.thaw()
        creation_seconds = time.perf_counter() - began
        offset = _wall_offset(self.clock)
        self.batch_index = {batch: index for index, batch in enumerate(batch_ids)}
        return PhaseSetup(
            dataset_id=self.dataset_id,
            batches=batch_ids,
            documents=list(self.documents),
            durations=list(self.durations),
            completed_wall=[self.created + d + offset for d in self.durations],
            creation_seconds=creation_seconds,
            plan_error=plan_error,
        )

    def finish(self) -> ServerReport:
        records = self.sim.requests
        arrivals = [record.at for record in records]
        span = max(arrivals) - min(arrivals) if arrivals else 0.0
        buckets = Counter(int(at - arrivals[0]) for at in arrivals) if arrivals else Counter()
        polls = [0] * len(self.durations)
        before = 0
        for record in records:
            if record.route != "indexing_status":
                continue
            index = self.batch_index.get(record.path.rsplit("/", 2)[-2])
            if index is None:
                continue
            polls[index] += 1
            if record.at < self.created + self.durations[index]:
                before += 1
        return ServerReport(
            by_route=dict(Counter(record.route or "unmatched" for record in records)),
            total=len(records),
            span=span,
            peak_per_second=max(buckets.values(), default=0),
            non_2xx=sum(1 for record in records if not 200 <= record.status < 300),
            polls_per_batch=polls,
            polls_before_completion=before,
            schedule_error=self._schedule_error(),
        )

    def _schedule_error(self) -> float | None:
        """Max |observed completion - (creation + duration)| over the phase's documents.

        Reads the simulator's internals (there is no public accessor): a check that the
        per-document ``time_scale`` really gives the intended total, not part of the results.
        """
        try:
            store = self.sim._core.store
            dataset = store.require_dataset(self.dataset_id)
            now = self.clock()
            worst = 0.0
            for document_id, duration in zip(self.documents, self.durations, strict=True):
                timeline = dataset.documents[document_id].timeline
                timeline.advance(now)
                if timeline.finished_at is None:
                    return math.inf
                worst = max(worst, abs(timeline.finished_at - (self.created + duration)))
            return worst
        except (AttributeError, KeyError):
            return None


def _wall_offset(clock: Callable[[], float]) -> float:
    """``time.time() - clock()``, from the tightest of a few paired readings."""
    best: tuple[float, float] | None = None
    for _ in range(5):
        before = clock()
        wall = time.time()
        after = clock()
        if best is None or after - before < best[0]:
            best = (after - before, wall - (before + after) / 2)
    assert best is not None
    return best[1]


def _serve(conn: Connection, seed: int) -> None:
    server = _Server(seed)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with server.sim.serve(port=0) as base_url:
            conn.send((base_url, server.sim.api_key))
            while True:
                command, payload = await loop.run_in_executor(None, conn.recv)
                if command == "start":
                    conn.send(server.start(*payload))
                elif command == "finish":
                    conn.send(server.finish())
                else:
                    return

    asyncio.run(main())


# -- measuring ------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            found = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def _maxrss_mb() -> float:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


WaitAll = Callable[[PhaseSetup], Coroutine[Any, Any, tuple[list[tuple[int, float]], int, int]]]


def _measure(name: str, setup: PhaseSetup, wait_all: WaitAll) -> PhaseResult:
    gc.collect()
    per_phase_peak = _reset_peak_rss()
    rss_start = (_status_kb("VmRSS") or 0) / 1024
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    returned, failures, client_errors = asyncio.run(wait_all(setup))
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    hwm = _status_kb("VmHWM") if per_phase_peak else None
    return PhaseResult(
        name=name,
        returned=returned,
        failures=failures,
        client_errors=client_errors,
        wall=wall,
        cpu=cpu,
        peak_rss_mb=hwm / 1024 if hwm is not None else _maxrss_mb(),
        peak_is_phase=hwm is not None,
        rss_start_mb=rss_start,
        maxrss_mb=_maxrss_mb(),
    )


def _naive(base_url: str, key: str, waiters: int) -> WaitAll:
    async def wait_all(setup: PhaseSetup) -> tuple[list[tuple[int, float]], int, int]:
        headers = {"Authorization": f"Bearer {key}"}
        errors = 0
        give_up = time.monotonic() + max(setup.durations) + OURS_TIMEOUT
        connector = aiohttp.TCPConnector(limit=NAIVE_CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def wait(index: int) -> tuple[int, float]:
                nonlocal errors
                url = (
                    f"{base_url}/datasets/{setup.dataset_id}/documents/"
                    f"{setup.batches[index]}/indexing-status"
                )
                while True:
                    try:
                        async with session.get(url, headers=headers) as response:
                            if response.status == 200:
                                payload: dict[str, Any] = await response.json()
                                if all(
                                    doc["indexing_status"] == "completed" for doc in payload["data"]
                                ):
                                    return index, time.time()
                            else:
                                await response.read()
                                errors += 1
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        errors += 1
                    if time.monotonic() > give_up:
                        raise TimeoutError(f"batch {setup.batches[index]} never completed")
                    await asyncio.sleep(NAIVE_INTERVAL)

            return await _gather(wait, len(setup.batches), waiters, lambda: errors)

    return wait_all


def _ours(base_url: str, key: str, waiters: int, knows_documents: bool = True) -> WaitAll:
    async def wait_all(setup: PhaseSetup) -> tuple[list[tuple[int, float]], int, int]:
        from dify_ingest_tools import AsyncDifyKnowledgeClient, CreatedDocument

        created = [
            CreatedDocument(
                dataset_id=setup.dataset_id, document_id=document, batch=batch, name=document
            )
            for document, batch in zip(setup.documents, setup.batches, strict=True)
        ]
        async with AsyncDifyKnowledgeClient(key, base_url) as client:

            async def wait(index: int) -> tuple[int, float]:
                if knows_documents:  # as a pipeline holding its create calls' answers
                    await client.wait_for_batches([created[index]], timeout=OURS_TIMEOUT)
                else:
                    await client.wait_for_indexing(
                        setup.dataset_id, setup.batches[index], timeout=OURS_TIMEOUT
                    )
                return index, time.time()

            return await _gather(wait, len(setup.batches), waiters, lambda: 0)

    return wait_all


async def _gather(
    wait: Callable[[int], Awaitable[tuple[int, float]]],
    batches: int,
    waiters: int,
    errors: Callable[[], int],
) -> tuple[list[tuple[int, float]], int, int]:
    outcomes = await asyncio.gather(
        *(wait(index) for index in range(batches) for _ in range(waiters)),
        return_exceptions=True,
    )
    returned = [outcome for outcome in outcomes if isinstance(outcome, tuple)]
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failed:
        print(f"  {len(failed)} waits failed, first: {failed[0]!r}", file=sys.stderr)
    return returned, len(failed), errors()


# -- reporting ------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class _Row:
    result: PhaseResult
    report: ServerReport
    lag_p50: float
    lag_p95: float
    lag_max: float


def _row(result: PhaseResult, report: ServerReport, setup: PhaseSetup) -> _Row:
    lags = [wall - setup.completed_wall[index] for index, wall in result.returned]
    return _Row(
        result, report, _percentile(lags, 50), _percentile(lags, 95), max(lags, default=math.nan)
    )


def _print_results(args: argparse.Namespace, setups: list[PhaseSetup], rows: list[_Row]) -> None:
    durations = setups[0].durations
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}"
    )
    print(
        f"{args.batches} batches x 1 document, {args.waiters} waiters per batch "
        f"({args.batches * args.waiters} waits), seed {args.seed}; indexing durations uniform "
        f"[{MIN_DURATION}, {args.max_duration}] s (mean {sum(durations) / len(durations):.2f} s)"
    )
    order = "ours, then naive" if args.ours_first else "naive, then ours"
    print(f"phase order: {order}; each phase gets its own fresh dataset of documents")
    for name, setup in zip(("naive", "ours"), setups, strict=True):
        print(
            f"  {name}: {len(setup.batches)} documents created in "
            f"{setup.creation_seconds:.2f} s at one frozen instant; "
            f"max |stage plan - duration| {setup.plan_error:.1e} s"
        )
    print()
    header = (
        f"{'phase':<6} | {'requests':>8} | {'req/batch':>9} | {'lag p50 s':>9} | "
        f"{'lag p95 s':>9} | {'peak RSS MB':>11} | {'CPU s':>6} | {'wall s':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        result, report = row.result, row.report
        print(
            f"{result.name:<6} | {report.total:>8} | {report.total / args.batches:>9.1f} | "
            f"{row.lag_p50:>9.2f} | {row.lag_p95:>9.2f} | {result.peak_rss_mb:>11.1f} | "
            f"{result.cpu:>6.1f} | {result.wall:>6.1f}"
        )
    print()
    for row in rows:
        result, report = row.result, row.report
        routes = ", ".join(f"{route} {count}" for route, count in sorted(report.by_route.items()))
        rate = report.total / report.span if report.span > 0 else math.nan
        polls = report.polls_per_batch
        schedule = "n/a" if report.schedule_error is None else f"{report.schedule_error:.1e} s"
        peak_kind = "phase peak (VmHWM)" if result.peak_is_phase else "lifetime peak"
        print(f"{result.name}:")
        print(
            f"  server: {rate:.0f} req/s achieved over {report.span:.1f} s "
            f"(busiest 1-s bucket {report.peak_per_second}); routes: {routes}; "
            f"non-2xx {report.non_2xx}"
        )
        print(
            f"  status polls per batch: p50 {_percentile([float(p) for p in polls], 50):.0f}, "
            f"p95 {_percentile([float(p) for p in polls], 95):.0f}, max {max(polls, default=0)}; "
            f"{report.polls_before_completion} of {sum(polls)} arrived before the batch "
            "completed"
        )
        print(
            f"  waits: {len(result.returned)} returned, {result.failures} failed, "
            f"{result.client_errors} request errors seen by the loop; lag max "
            f"{row.lag_max:.2f} s; completion schedule check {schedule}"
        )
        print(
            f"  RSS: {result.rss_start_mb:.1f} MB at phase start, {peak_kind} "
            f"{result.peak_rss_mb:.1f} MB (+{result.peak_rss_mb - result.rss_start_mb:.1f} MB), "
            f"ru_maxrss (lifetime) {result.maxrss_mb:.1f} MB"
        )
    print()
    naive, ours = rows
    ratio = ours.report.total / naive.report.total if naive.report.total else math.nan
    fewer = naive.report.total / max(1, ours.report.total)
    print(f"requests ours/naive: {ratio:.3f} ({fewer:.1f}x fewer)")
    rss_target = TARGET_RSS_MB if args.batches <= 1000 else TARGET_RSS_LARGE_MB
    checks = [
        (f"requests <= 1/20 of naive (ratio {ratio:.3f})", ratio <= TARGET_REQUEST_RATIO),
        (f"lag p95 <= {TARGET_LAG_P95} s ({ours.lag_p95:.2f} s)", ours.lag_p95 <= TARGET_LAG_P95),
        (
            f"peak RSS <= {rss_target:.0f} MB ({ours.result.peak_rss_mb:.1f} MB)",
            ours.result.peak_rss_mb <= rss_target,
        ),
        ("every wait returned", ours.result.failures == 0),
    ]
    for label, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  ours: {label}")


# -- main -----------------------------------------------------------------------------------


def _child_phase(
    conn: Connection, base_url: str, key: str, setup: PhaseSetup, waiters: int, knows: bool
) -> None:
    import dify_ingest_tools.client.async_client  # noqa: F401  (imported before CPU is counted)

    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(_measure, "ours", setup, _ours(base_url, key, waiters, knows))
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        conn.send(result)
        return
    conn.send(_measure("ours", setup, _ours(base_url, key, waiters, knows)))


def _measure_in_child(
    base_url: str, key: str, setup: PhaseSetup, waiters: int, knows: bool
) -> PhaseResult:
    """Our phase in a fresh process: its CPU, RSS and heap are its own alone."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_child_phase, args=(child, base_url, key, setup, waiters, knows), daemon=True
    )
    process.start()
    try:
        result: PhaseResult = parent.recv()
    finally:
        process.join(timeout=30)
    return result


def _growth(args: argparse.Namespace, base_url: str, key: str, conn: Connection) -> None:
    sizes = sorted({size for size in GROWTH_SIZES if size < args.batches} | {args.batches})
    runs: dict[int, list[_Row]] = {size: [] for size in sizes}
    # Rounds of every size in turn: a load change on the machine touches them all alike.
    for round_number in range(1, args.repeat + 1):
        for size in sizes:
            print(
                f"round {round_number}/{args.repeat}: ours with {size} batches ...",
                file=sys.stderr,
                flush=True,
            )
            conn.send(
                ("start", (f"growth{size}-{round_number}", size, args.seed, args.max_duration))
            )
            setup: PhaseSetup = conn.recv()
            result = _measure_in_child(base_url, key, setup, args.waiters, not args.batch_refs)
            conn.send(("finish", None))
            report: ServerReport = conn.recv()
            runs[size].append(_row(result, report, setup))
    # Per size, the run with the median CPU per batch (CPU is the noisy figure on a shared
    # machine); the other runs' CPU is shown as a range.
    rows: list[tuple[int, _Row]] = []
    cpu_ranges: dict[int, tuple[float, float]] = {}
    for size in sizes:
        ordered = sorted(runs[size], key=lambda row: row.result.cpu)
        rows.append((size, ordered[len(ordered) // 2]))
        cpu_ranges[size] = (
            ordered[0].result.cpu / size * 1000,
            ordered[-1].result.cpu / size * 1000,
        )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}"
    )
    print(
        f"ours only, {args.waiters} waiters per batch, "
        f"{'batch ids only' if args.batch_refs else 'documents known'}, seed {args.seed}, "
        f"durations uniform [{MIN_DURATION}, {args.max_duration}] s; each size in a fresh "
        f"process (its own CPU, heap and peak RSS); {args.repeat} rounds, each row the run "
        "with the median CPU\n"
    )
    header = (
        f"{'batches':>7} | {'waits':>6} | {'requests':>8} | {'req/batch':>9} | "
        f"{'lists':>5} | {'CPU s':>6} | {'CPU ms/batch (range)':>20} | {'peak RSS MB':>11} | "
        f"{'lag p50 s':>9} | {'lag p95 s':>9} | {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    for size, row in rows:
        result, report = row.result, row.report
        print(
            f"{size:>7} | {size * args.waiters:>6} | {report.total:>8} | "
            f"{report.total / size:>9.2f} | {report.by_route.get('list_documents', 0):>5} | "
            f"{result.cpu:>6.1f} | {result.cpu / size * 1000:>7.2f} "
            f"({cpu_ranges[size][0]:.2f}-{cpu_ranges[size][1]:.2f}) | "
            f"{result.peak_rss_mb:>11.1f} | {row.lag_p50:>9.2f} | {row.lag_p95:>9.2f} | "
            f"{result.failures:>6}"
        )
    (small, first), (large, last) = rows[0], rows[-1]
    peak_rss = max(row.result.peak_rss_mb for row in runs[large])  # the worst run
    per_batch = (first.report.total / small, last.report.total / large)
    cpu_ms = (first.result.cpu / small * 1000, last.result.cpu / large * 1000)
    print()
    checks = [
        (
            f"requests per batch at {large} <= at {small} "
            f"({per_batch[1]:.2f} vs {per_batch[0]:.2f})",
            per_batch[1] <= per_batch[0],
        ),
        (
            f"CPU per batch at {large} <= at {small} ({cpu_ms[1]:.2f} vs {cpu_ms[0]:.2f} ms)",
            cpu_ms[1] <= cpu_ms[0],
        ),
        (
            f"peak RSS at {large} <= {TARGET_RSS_LARGE_MB:.0f} MB "
            f"({peak_rss:.1f} MB, the highest of its runs)",
            peak_rss <= TARGET_RSS_LARGE_MB,
        ),
        (
            "every wait of every run returned",
            all(row.result.failures == 0 for size in sizes for row in runs[size]),
        ),
    ]
    for label, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  ours: {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches",
        type=int,
        default=None,
        help="default 1000 (200 --quick); above 1000, ours alone at 1000, 3000 and this many",
    )
    parser.add_argument(
        "--waiters",
        type=int,
        default=None,
        help="concurrent waits per batch (5; 2 above 1000 batches or with --growth)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--quick", action="store_true", help="200 batches")
    parser.add_argument(
        "--ours-first", action="store_true", help="run our phase first (clean-heap RSS)"
    )
    parser.add_argument(
        "--batch-refs",
        action="store_true",
        help="our waiters know only (dataset_id, batch), not their documents",
    )
    parser.add_argument(
        "--growth",
        action="store_true",
        help="ours alone at 1000, 3000 and --batches (default 10000): the growth table",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="growth table: rounds of every size (3)"
    )
    args = parser.parse_args()
    if args.batches is None:
        args.batches = GROWTH_SIZES[-1] if args.growth else 200 if args.quick else 1000
    args.growth = args.growth or args.batches > GROWTH_SIZES[0]
    if args.waiters is None:
        args.waiters = 2 if args.growth else 5
    if args.batches < 1 or args.waiters < 1 or args.repeat < 1 or args.max_duration < MIN_DURATION:
        parser.error(
            f"need --batches, --waiters, --repeat >= 1 and --max-duration >= {MIN_DURATION}"
        )

    context = multiprocessing.get_context("spawn")
    ours_end, server_end = context.Pipe()
    server = context.Process(target=_serve, args=(server_end, args.seed), daemon=True)
    server.start()
    try:
        base_url, key = ours_end.recv()
        if args.growth:
            _growth(args, base_url, key, ours_end)
            return
        knows = not args.batch_refs

        def ours(url: str, k: str, waiters: int) -> WaitAll:
            return _ours(url, k, waiters, knows)

        phases: list[tuple[str, Callable[[str, str, int], WaitAll]]] = [
            ("naive", _naive),
            ("ours", ours),
        ]
        if args.ours_first:
            phases.reverse()
        setups: dict[str, PhaseSetup] = {}
        rows: dict[str, _Row] = {}
        for name, make in phases:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            ours_end.send(("start", (name, args.batches, args.seed, args.max_duration)))
            setup: PhaseSetup = ours_end.recv()
            result = _measure(name, setup, make(base_url, key, args.waiters))
            ours_end.send(("finish", None))
            report: ServerReport = ours_end.recv()
            setups[name] = setup
            rows[name] = _row(result, report, setup)
        _print_results(args, [setups["naive"], setups["ours"]], [rows["naive"], rows["ours"]])
    finally:
        ours_end.send(("stop", None))
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()


if __name__ == "__main__":
    main()
