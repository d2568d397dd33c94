"""``dify-ingest``: status | demo | simulate, for operators, scripts and CI jobs.

Exit codes: 0 ready / success, 1 indexing failed, 2 usage error, 3 API, auth or connection
error, 4 not ready (still indexing or paused), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from . import _cli_job
from ._version import __version__
from .client import AsyncDifyKnowledgeClient
from .errors import DifyError, IndexingFailedError, IndexingStalledError, IndexingTimeoutError
from .events import IndexingEvent
from .models import BatchIndexingStatus, BatchRef, CreatedDocument
from .progress import ProgressBars

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_NOT_READY = 4
EXIT_INTERRUPTED = 130

DEMO_DOCUMENTS = {
    "dify-indexing.txt": (
        "Dify indexes a new document asynchronously. The document moves from waiting to "
        "parsing, splitting and indexing, and is retrievable once it is completed.\n\n"
        "The indexing-status endpoint reports every document of a creation batch."
    ),
    "readiness.txt": (
        "Retrieving before indexing has completed gives empty or partial answers. "
        "Wait for readiness first: poll the batch until every document is completed.\n\n"
        "A document in error carries Dify's error text; fail loudly with it."
    ),
    "operators.txt": (
        "Operators use the dify-ingest command line: status checks a batch once, demo "
        "runs this walkthrough, and simulate serves a local Dify stand-in for tests."
    ),
}
DEMO_QUERY = "when is a document retrievable after indexing"
BROKEN_NAME = "broken-scan.pdf"
BROKEN_BYTES = b"this is not really a PDF file"
BROKEN_ERROR = "Failed to load document (PDFium: Data format error)."


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api-key", help="Dify Knowledge API key (default: $DIFY_API_KEY); never printed"
    )
    common.add_argument(
        "--base-url", help="API root with /v1 (default: $DIFY_API_BASE_URL or Dify Cloud)"
    )
    parser = argparse.ArgumentParser(
        prog="dify-ingest",
        description="Check and wait for Dify knowledge-base indexing.",
        epilog="Exit codes: 0 ready, 1 indexing failed, 2 usage error, "
        "3 API/auth/connection error, 4 not ready, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser(
        "status", parents=[common], help="show a batch's indexing status once"
    )
    status.add_argument("dataset_id", help="knowledge base (dataset) UUID")
    status.add_argument("batch", help="the batch string document creation returned")
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    wait = commands.add_parser(
        "wait",
        parents=[common],
        help="wait until batches are indexed (progress bars on stderr, statuses on stdout)",
    )
    wait.add_argument("dataset_id", help="knowledge base (dataset) UUID")
    wait.add_argument("batches", nargs="+", metavar="BATCH", help="one or more batches")
    wait.add_argument(
        "--timeout", type=float, default=600.0, help="seconds for the whole wait (600)"
    )
    wait.add_argument(
        "--stall-timeout",
        type=float,
        default=None,
        help="fail when nothing changes for this many seconds (default: off)",
    )
    wait.add_argument(
        "--poll-interval", type=float, default=1.0, help="first gap between polls (1 s)"
    )
    wait.add_argument("--json", action="store_true", help="print the final statuses as JSON")
    wait.add_argument("--no-progress", action="store_true", help="do not draw progress bars")

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="upload, wait, retrieve: on the built-in simulator unless --dataset-id is given",
    )
    demo.add_argument(
        "--dataset-id", help="run against this real knowledge base instead of the simulator"
    )

    simulate = commands.add_parser("simulate", help="serve the Dify simulator on a port")
    simulate.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    simulate.add_argument("--port", type=int, default=5001, help="port (default 5001)")
    simulate.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply the simulated indexing durations (default 1.0)",
    )
    _cli_job.register(commands, common)  # upload | search | documents | mcp
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "job"):  # the commands of _cli_job
            return int(asyncio.run(args.job(args, sys.stdout)))
        if args.command == "status":
            return asyncio.run(_status(args, sys.stdout))
        if args.command == "wait":
            return asyncio.run(_wait(args, sys.stdout))
        if args.command == "demo":
            return asyncio.run(_demo(args, sys.stdout))
        return asyncio.run(_simulate(args, sys.stdout))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as error:
        print(f"dify-ingest: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (IndexingTimeoutError, IndexingStalledError) as error:
        print(f"dify-ingest: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_NOT_READY
    except IndexingFailedError as error:
        print(f"dify-ingest: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except DifyError as error:
        print(f"dify-ingest: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_API


def _exit_code(status: BatchIndexingStatus) -> int:
    if status.is_completed:
        return EXIT_OK
    if status.is_failed:
        return EXIT_FAILED
    return EXIT_NOT_READY


def _print_status(status: BatchIndexingStatus, out: TextIO) -> None:
    print(status.summary(), file=out)
    for doc in status.documents:
        line = (
            f"  {doc.id}  {doc.indexing_status!s:<10} "
            f"{doc.completed_segments}/{doc.total_segments} segments"
        )
        if doc.is_failed:
            line += f"  error: {doc.error or '-'}"
        print(line, file=out)


async def _status(args: argparse.Namespace, out: TextIO) -> int:
    async with AsyncDifyKnowledgeClient(args.api_key, args.base_url) as client:
        status = await client.get_indexing_status(args.dataset_id, args.batch)
    if args.json:
        print(status.model_dump_json(indent=2), file=out)
    else:
        _print_status(status, out)
    return _exit_code(status)


async def _wait(args: argparse.Namespace, out: TextIO) -> int:
    if args.poll_interval <= 0:
        raise ValueError("--poll-interval must be > 0")
    refs = [BatchRef(dataset_id=args.dataset_id, batch=batch) for batch in args.batches]
    async with AsyncDifyKnowledgeClient(args.api_key, args.base_url) as client:
        statuses = await client.wait_for_batches(
            refs,
            timeout=args.timeout,
            stall_timeout=args.stall_timeout,
            poll_interval=args.poll_interval,
            max_poll_interval=max(10.0, args.poll_interval),
            raise_on_error=False,
            progress=not args.no_progress,
        )
    if args.json:
        payload = [status.model_dump(mode="json") for status in statuses]
        print(json.dumps(payload, indent=2), file=out)
    else:
        for status in statuses:
            _print_status(status, out)
    if all(status.is_completed for status in statuses):
        return EXIT_OK
    return EXIT_FAILED


async def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import DifySimulator
    from .testing.simulator import describe, serve_forever

    simulator = DifySimulator(time_scale=args.time_scale)

    def ready(base_url: str) -> None:
        print(describe(simulator), file=out, flush=True)
        print("Press Ctrl-C to stop.", file=out, flush=True)

    serving = asyncio.ensure_future(serve_forever(simulator, args.host, args.port, on_ready=ready))
    loop = asyncio.get_running_loop()
    # Ctrl-C cancels the server task, so it shuts down cleanly on every Python version
    # (before 3.11, asyncio.run let KeyboardInterrupt land anywhere in the loop).
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGINT, serving.cancel)
    try:
        await serving
    except asyncio.CancelledError:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK  # pragma: no cover - serve_forever only ends by cancellation


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.dataset_id:
        async with AsyncDifyKnowledgeClient(args.api_key, args.base_url) as client:
            return await _walkthrough(client, args.dataset_id, out)
    from .testing import DifySimulator, DocumentScript

    simulator = DifySimulator(time_scale=0.5)
    dataset_id = simulator.create_dataset("demo knowledge base")
    # A real Dify fails a corrupt PDF this way (recording 02a); the simulator is told to.
    simulator.script(BROKEN_NAME, DocumentScript(fail_at="parsing", error=BROKEN_ERROR))
    async with simulator.serve() as base_url:
        print(f"Dify simulator listening on {base_url} (no API key needed)", file=out)
        async with AsyncDifyKnowledgeClient(simulator.api_key, base_url) as client:
            return await _walkthrough(client, dataset_id, out)


async def _walkthrough(client: AsyncDifyKnowledgeClient, dataset_id: str, out: TextIO) -> int:
    started = time.monotonic()
    created: list[CreatedDocument] = []
    for name, text in DEMO_DOCUMENTS.items():
        created.append(await client.create_document_by_text(dataset_id, name, text))
    broken = await client.create_document_by_file(dataset_id, BROKEN_BYTES, filename=BROKEN_NAME)
    for document in [*created, broken]:
        print(
            f"uploaded {document.name!r}: batch {document.batch} ({document.indexing_status})",
            file=out,
        )
    names = {doc.document_id: doc.name for doc in [*created, broken]}

    bars = ProgressBars()

    def report(event: IndexingEvent) -> None:
        if event.kind in ("document_completed", "document_failed") and event.document:
            name = names.get(event.document.id, event.document.id)
            state = "indexed" if event.kind == "document_completed" else "FAILED"
            detail = f": {event.document.error}" if event.kind == "document_failed" else ""
            line = f"  {time.monotonic() - started:5.1f}s  {name} {state}{detail}"
        elif event.kind in ("retrying", "rate_limited", "stalled"):
            line = f"  {event.describe()}"
        else:
            line = ""
        if line:
            bars.write(line, file=out)
        bars(event)

    print("waiting for indexing (progress bars on stderr):", file=out)
    try:
        statuses = await client.wait_for_batches(
            [*created, broken], timeout=120, raise_on_error=False, on_event=report
        )
    finally:
        bars.close()
    ready = [s for s in statuses if s.is_completed]
    failed = [s for s in statuses if s.is_failed]
    print(
        f"{len(ready)} of {len(statuses)} batches ready, {len(failed)} failed, "
        f"in {time.monotonic() - started:.1f}s",
        file=out,
    )
    for status in failed:
        print(f"  expected failure — {status.summary()}", file=out)
    hits = await client.retrieve(dataset_id, DEMO_QUERY, top_k=3)
    print(f"retrieve {DEMO_QUERY!r}: {len(hits)} hit(s)", file=out)
    for hit in hits:
        score = "   -" if hit.score is None else f"{hit.score:.2f}"
        name = hit.document_name or names.get(hit.document_id or "", "?")
        print(f"  {score}  {name:<20} {hit.content[:70]!r}", file=out)
    # The broken document is meant to fail; anything else going wrong is a real failure.
    unexpected = [s for s in failed if s.batch != broken.batch]
    return EXIT_FAILED if unexpected or len(ready) != len(created) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
