"""``dify-ingest``: status | wait | demo | simulate, for operators, scripts and CI jobs.

Every failure is one line on stderr and a documented exit code (``dify-ingest --help``):
0 ready / success, 1 indexing failed, 2 usage error, 3 API, auth, connection or configuration
error, 4 not ready (still indexing, stalled or paused), 70 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from dify_ingest_tools._base.config import ENV_API_KEY
from dify_ingest_tools._base.shown import (
    ID_LIMIT,
    NAME_LIMIT,
    error_text,
    scrubbed_status,
    shown,
    shown_error,
)
from dify_ingest_tools._version import __version__
from dify_ingest_tools.cli import fleet as _cli_fleet
from dify_ingest_tools.cli import job as _cli_job
from dify_ingest_tools.cli import simulate as _cli_simulate
from dify_ingest_tools.cli import sync as _cli_sync
from dify_ingest_tools.cli.common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_NOT_READY,
    EXIT_OK,
    CLIError,
    OneLineParser,
    check_client_args,
    describe_error,
    exit_code_for,
    one_line,
    redacted,
    run_command,
    seconds,
    stop_reason,
    wrapped,
)
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.events import IndexingEvent
from dify_ingest_tools.models.created import BatchRef, CreatedDocument
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.progress import ProgressBars, should_draw_bars

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


#: Total seconds `status` may take, retries included (a server that accepts and never answers
#: otherwise costs 30 s per attempt).
STATUS_TIMEOUT = 30.0
#: Seconds per HTTP attempt, as the library's default; a shorter --timeout clamps it.
ATTEMPT_TIMEOUT = 30.0


def _parser() -> OneLineParser:
    common = OneLineParser(add_help=False)
    common.add_argument(
        "--api-key",
        help=f"Dify Knowledge (dataset) API key (default: ${ENV_API_KEY}); never printed. "
        "Prefer the variable: a command-line key is visible to other users of this machine",
    )
    common.add_argument(
        "--base-url",
        help="Dify's API root ending in /v1 (default: $DIFY_API_BASE_URL or Dify Cloud)",
    )
    progress = OneLineParser(add_help=False)
    bars = progress.add_mutually_exclusive_group()
    bars.add_argument(
        "--progress",
        dest="progress",
        action="store_const",
        const=True,
        default=None,
        help="draw progress bars on stderr (default: only when stderr is a terminal)",
    )
    bars.add_argument(
        "--no-progress", dest="progress", action="store_const", const=False, help="no bars"
    )
    layout: dict[str, Any] = {
        "epilog": EXIT_CODES_HELP,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    parser = OneLineParser(
        prog="dify-ingest",
        description="Check and wait for Dify knowledge-base indexing.",
        **layout,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser(
        "status",
        parents=[common],
        help="show a batch's indexing status once",
        description=wrapped(
            "Show a batch's indexing status once (one request, retried within --timeout)."
        ),
        **layout,
    )
    status.add_argument("dataset_id", help="knowledge base (dataset) UUID")
    status.add_argument("batch", help="the batch string document creation returned")
    status.add_argument(
        "--timeout",
        type=seconds,
        default=STATUS_TIMEOUT,
        help=f"seconds for the whole call, retries included ({STATUS_TIMEOUT:g})",
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    _on_empty_option(status)
    status.set_defaults(handler=_status)

    wait = commands.add_parser(
        "wait",
        parents=[common, progress],
        help="wait until batches are indexed (statuses on stdout)",
        description=wrapped(
            "Wait until every batch is indexed. Statuses go to stdout (with --json: one JSON "
            "object saying why the wait stopped, on success and on failure alike), progress "
            "bars and the one-line reason for a failure to stderr."
        ),
        **layout,
    )
    wait.add_argument("dataset_id", help="knowledge base (dataset) UUID")
    wait.add_argument("batches", nargs="+", metavar="BATCH", help="one or more batches")
    wait.add_argument(
        "--timeout", type=seconds, default=600.0, help="seconds for the whole wait (600)"
    )
    wait.add_argument(
        "--stall-timeout",
        type=seconds,
        default=None,
        help="give up when nothing changes for this many seconds (default: off)",
    )
    wait.add_argument(
        "--poll-interval", type=seconds, default=1.0, help="first gap between polls (1 s)"
    )
    wait.add_argument(
        "--max-poll-interval",
        type=seconds,
        default=None,
        help="longest gap between polls while nothing changes (10 s, at least --poll-interval)",
    )
    wait.add_argument(
        "--on-paused",
        choices=("wait", "fail"),
        default="wait",
        help="a paused document: keep waiting (it may be resumed in Dify's console; counts "
        "toward --stall-timeout) or stop at once with exit 4 (default: wait)",
    )
    _on_empty_option(wait)
    wait.add_argument(
        "--summaries",
        action="store_true",
        help="also wait until Dify has made the documents' summaries (datasets with summary "
        "indexing: no document still SUMMARIZING)",
    )
    wait.add_argument(
        "--json", action="store_true", help="print one JSON object: why it stopped, statuses"
    )
    wait.set_defaults(handler=_wait)

    demo = commands.add_parser(
        "demo",
        parents=[common, progress],
        help="upload, wait, retrieve: on the built-in simulator unless --dataset-id is given",
        description=wrapped(
            "Upload three documents and a broken one, wait for them, and retrieve: on the "
            "built-in simulator (no key needed) unless --dataset-id names a real knowledge base."
        ),
        **layout,
    )
    demo.add_argument(
        "--dataset-id", help="run against this real knowledge base instead of the simulator"
    )
    demo.set_defaults(handler=_demo)

    _cli_simulate.add_parser(commands)
    _cli_job.register(commands, common)  # upload | search | documents | mcp
    _cli_sync.register(commands, common)  # sync
    _cli_fleet.register(commands, common, wait)  # wait --pending
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it).

    Usage errors exit through `SystemExit` (code 2) as argparse does; everything else that
    ends a command becomes one line on stderr and the returned exit code, never a traceback.
    """
    err = redacted(sys.stderr)

    def run() -> int:
        nonlocal err
        args = _parser().parse_args(argv)
        secrets = _secrets(args)
        out = redacted(sys.stdout, secrets, escape=True)
        err = redacted(sys.stderr, secrets)
        if hasattr(args, "job"):  # the commands of _cli_job
            return int(asyncio.run(args.job(args, out)))
        code: int = asyncio.run(args.handler(args, out, err))
        return code

    return run_command(run, lambda: err)


def _secrets(args: argparse.Namespace) -> list[str]:
    """The key this command sends: masked in everything it prints."""
    if not hasattr(args, "api_key"):
        return []
    key = args.api_key if args.api_key is not None else os.environ.get(ENV_API_KEY, "")
    return [key.strip()] if key and key.strip() else []


def _client(
    args: argparse.Namespace, *, timeout: float = ATTEMPT_TIMEOUT
) -> AsyncDifyKnowledgeClient:
    check_client_args(args.api_key, args.base_url)
    return AsyncDifyKnowledgeClient(args.api_key, args.base_url, timeout=timeout)


def _on_empty_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--on-empty",
        choices=("raise", "warn", "accept"),
        default="raise",
        help="a document that completed with 0 chunks (empty or whitespace-only text) is "
        "indexed, but nothing will be found: exit 4 (raise, the default), or exit 0 with a "
        "warning on stderr (warn) or without (accept)",
    )


def _exit_code(status: BatchIndexingStatus, on_empty: str = "raise") -> int:
    if status.is_empty and on_empty == "raise":
        return EXIT_NOT_READY
    if status.is_completed:
        return EXIT_OK
    if status.is_failed:
        return EXIT_FAILED
    return EXIT_NOT_READY


#: Documents of one batch listed by ``status`` and ``wait`` (``--json`` has them all).
STATUS_LINES = 100


def _print_status(status: BatchIndexingStatus, out: IO[str]) -> None:
    print(one_line(status.summary()), file=out)
    for doc in status.documents[:STATUS_LINES]:
        line = (
            f"  {shown(doc.id, ID_LIMIT)}  {shown(doc.status_name, ID_LIMIT):<10} "
            f"{doc.completed_segments}/{doc.total_segments} segments"
        )
        if doc.is_failed:
            line += f"  error: {shown_error(doc.error) or '-'}"
        print(line, file=out)
    if len(status.documents) > STATUS_LINES:
        more = len(status.documents) - STATUS_LINES
        print(f"  ... and {more} more document(s) (--json lists them all)", file=out)


async def _status(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    deadline = time.monotonic() + args.timeout
    async with _client(args, timeout=min(ATTEMPT_TIMEOUT, args.timeout)) as client:
        status = await client.get_indexing_status(args.dataset_id, args.batch, deadline=deadline)
    if args.json:
        print(scrubbed_status(status).model_dump_json(indent=2), file=out)
    else:
        _print_status(status, out)
    if status.is_empty and args.on_empty != "accept":
        print(f"dify-ingest: {one_line(status.summary())}", file=err)
    return _exit_code(status, args.on_empty)


async def _wait(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    wanted = [(args.dataset_id, batch) for batch in args.batches]
    latest: dict[tuple[str, str], BatchIndexingStatus] = {}
    bars = ProgressBars(file=err) if should_draw_bars(err, args.progress) else None

    def record(event: IndexingEvent) -> None:
        if event.status is not None:
            latest[(event.dataset_id, event.batch)] = event.status
        if bars is not None:
            bars(event)

    try:
        poll = args.poll_interval
        longest = args.max_poll_interval if args.max_poll_interval is not None else max(10.0, poll)
        if longest < poll:
            raise CLIError("--max-poll-interval must be at least --poll-interval")
        refs = [BatchRef(dataset_id=dataset_id, batch=batch) for dataset_id, batch in wanted]
        async with _client(args) as client:
            statuses = await client.wait_for_batches(
                refs,
                timeout=args.timeout,
                stall_timeout=args.stall_timeout,
                poll_interval=poll,
                max_poll_interval=longest,
                on_paused=args.on_paused,
                raise_on_error=False,
                on_empty=args.on_empty,
                summaries=args.summaries,
                on_event=record,
            )
    except BaseException as error:
        if bars is not None:
            bars.close()
        if isinstance(error, DifyError) and error.last_status is not None:
            last = error.last_status
            latest[(last.dataset_id, last.batch)] = last
        _report_wait(args, wanted, [latest.get(key) for key in wanted], error, out)
        raise
    if bars is not None:
        bars.close()
    _report_wait(args, wanted, list(statuses), None, out)
    if args.on_empty == "warn":
        for status in statuses:
            if status.is_empty:
                print(f"dify-ingest: warning: {one_line(status.summary())}", file=err)
    if all(status.is_completed for status in statuses):
        return EXIT_OK
    failed = [status for status in statuses if status.is_failed]
    if failed:
        more = f" (and {len(failed) - 1} more failed batches)" if len(failed) > 1 else ""
        print(f"dify-ingest: {one_line(failed[0].summary())}{more}", file=err)
        return EXIT_FAILED
    print("dify-ingest: not ready: some batches have no documents", file=err)
    return EXIT_NOT_READY


def _report_wait(
    args: argparse.Namespace,
    wanted: Sequence[tuple[str, str]],
    statuses: Sequence[BatchIndexingStatus | None],
    error: BaseException | None,
    out: IO[str],
) -> None:
    """What a wait saw, on stdout: per-batch lines, or (``--json``) one object with the reason."""
    if not args.json:
        for status in statuses:
            if status is not None:
                _print_status(status, out)
        return
    if error is not None:
        reason, code, message = stop_reason(error), exit_code_for(error), describe_error(error)
    else:
        done = [s for s in statuses if s is not None]
        ready = sum(s.is_completed for s in done)
        failed = sum(s.is_failed for s in done)
        reason = "ready" if ready == len(wanted) else "failed" if failed else "not_ready"
        code = {"ready": EXIT_OK, "failed": EXIT_FAILED}.get(reason, EXIT_NOT_READY)
        message = f"{ready} of {len(wanted)} batches ready, {failed} failed"
    batches: list[dict[str, Any]] = []
    for (dataset_id, batch), status in zip(wanted, statuses, strict=True):
        if status is None:
            batches.append({"dataset_id": dataset_id, "batch": batch, "observed": False})
        else:
            batches.append({**scrubbed_status(status).model_dump(mode="json"), "observed": True})
    payload = {"reason": reason, "exit_code": code, "message": message, "batches": batches}
    print(json.dumps(payload, indent=2), file=out, flush=True)


async def _demo(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    bars = ProgressBars(file=err) if should_draw_bars(err, args.progress) else None
    try:
        if args.dataset_id:
            async with _client(args) as client:
                return await _walkthrough(client, args.dataset_id, out, bars)
        from dify_ingest_tools.testing import DifySimulator, DocumentScript

        simulator = DifySimulator(time_scale=0.5)
        dataset_id = simulator.create_dataset("demo knowledge base")
        # A real Dify fails a corrupt PDF this way (recording 02a); the simulator is told to.
        simulator.script(BROKEN_NAME, DocumentScript(fail_at="parsing", error=BROKEN_ERROR))
        async with simulator.serve() as base_url:
            print(f"Dify simulator listening on {base_url} (no API key needed)", file=out)
            async with AsyncDifyKnowledgeClient(simulator.api_key, base_url) as client:
                return await _walkthrough(client, dataset_id, out, bars)
    finally:
        if bars is not None:
            bars.close()


async def _walkthrough(
    client: AsyncDifyKnowledgeClient, dataset_id: str, out: IO[str], bars: ProgressBars | None
) -> int:
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

    def report(event: IndexingEvent) -> None:
        if event.kind in ("document_completed", "document_failed") and event.document:
            name = names.get(event.document.id, event.document.id)
            state = "indexed" if event.kind == "document_completed" else "FAILED"
            detail = (
                f": {error_text(event.document.error)}" if event.kind == "document_failed" else ""
            )
            line = f"  {time.monotonic() - started:5.1f}s  {name} {state}{detail}"
        elif event.kind in ("retrying", "rate_limited", "stalled"):
            line = f"  {event.describe()}"
        else:
            line = ""
        if line and bars is not None:
            bars.write(line, file=out)
        elif line:
            print(line, file=out, flush=True)
        if bars is not None:
            bars(event)

    where = " (progress bars on stderr)" if bars is not None else ""
    print(f"waiting for indexing{where}:", file=out, flush=True)
    statuses = await client.wait_for_batches(
        [*created, broken], timeout=120, raise_on_error=False, on_event=report
    )
    if bars is not None:
        bars.close()
    ready = [s for s in statuses if s.is_completed]
    failed = [s for s in statuses if s.is_failed]
    print(
        f"{len(ready)} of {len(statuses)} batches ready, {len(failed)} failed, "
        f"in {time.monotonic() - started:.1f}s",
        file=out,
    )
    for status in failed:
        print(f"  expected failure — {one_line(status.summary())}", file=out)
    hits = await client.retrieve(dataset_id, DEMO_QUERY, top_k=3)
    print(f"retrieve {DEMO_QUERY!r}: {len(hits)} hit(s)", file=out)
    for hit in hits:
        score = "   -" if hit.score is None else f"{hit.score:.2f}"
        name = shown(hit.document_name or names.get(hit.document_id or "", "?"), NAME_LIMIT)
        print(f"  {score}  {name:<20} '{shown(hit.content, 70)}'", file=out)
    # The broken document is meant to fail; anything else going wrong is a real failure.
    unexpected = [s for s in failed if s.batch != broken.batch]
    return EXIT_FAILED if unexpected or len(ready) != len(created) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
