"""``dify-ingest sync`` and ``dify-ingest wait --pending``: the CLI on top of the ledger.

`register` adds them to the parser `cli` builds: ``sync`` as a job (``args.job``), and
``--pending`` on ``wait``, whose handler it wraps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import IO, Any

from ._cli_common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_READY,
    EXIT_OK,
    CLIError,
    check_client_args,
)
from .budget import BudgetBackend
from .client import AsyncDifyKnowledgeClient
from .folder_sync import SyncItem, SyncReport, sync_folder
from .models import BatchIndexingStatus

__all__ = ["register"]

Handler = Callable[[argparse.Namespace, IO[str], IO[str]], Coroutine[Any, Any, int]]


def register(
    commands: Any, common: argparse.ArgumentParser, wait: argparse.ArgumentParser | None
) -> None:
    """Add ``sync`` to the subcommands and ``--pending`` to ``wait``.

    Args:
        commands: The main parser's subparsers.
        common: The parent parser holding ``--api-key`` / ``--base-url``.
        wait: The ``wait`` parser, its ``handler`` default already set.
    """
    if wait is not None:
        _add_pending(wait)
    sync = commands.add_parser(
        "sync",
        parents=[common],
        help="upload a folder incrementally (new, changed, removed files) and wait for it",
        description="Make a knowledge base match a folder: new files are uploaded, changed "
        "ones updated in place, unchanged ones skipped, removed ones deleted with --delete. "
        "Safe to interrupt (Ctrl-C) and re-run: the pending ledger remembers every upload.",
    )
    sync.add_argument("directory", help="the folder (document names are paths relative to it)")
    sync.add_argument("--dataset", required=True, help="knowledge base (dataset) UUID")
    sync.add_argument("--delete", action="store_true", help="delete documents of removed files")
    sync.add_argument(
        "--retry-failed", action="store_true", help="upload unchanged files whose indexing failed"
    )
    sync.add_argument(
        "--include", action="append", default=[], metavar="GLOB", help="only matching names"
    )
    sync.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="leave matching names out"
    )
    sync.add_argument("--concurrency", type=int, default=4, help="uploads in flight (4)")
    sync.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for indexing (3600)"
    )
    sync.add_argument("--no-wait", action="store_true", help="upload only; do not wait")
    sync.add_argument("--indexing-technique", choices=["high_quality", "economy"])
    _add_budget(sync)
    _add_ledger(sync)
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.add_argument("--no-progress", action="store_true", help="no progress bar")
    sync.set_defaults(job=run_sync)


def _add_pending(wait: argparse.ArgumentParser) -> None:
    # `wait --pending` needs no DATASET_ID BATCH...: relax the positionals `cli` declared;
    # `command` insists on them again when --pending is not given.
    for action in wait._actions:
        if action.dest == "dataset_id":
            action.nargs, action.default, action.required = "?", None, False
        elif action.dest == "batches":
            action.nargs, action.default, action.required = "*", [], False
    wait.add_argument(
        "--pending",
        action="store_true",
        help="wait for every upload the pending ledger holds as not done (after a restart)",
    )
    wait.add_argument("--dataset", help="with --pending: only this knowledge base")
    _add_ledger(wait)
    plain: Handler = wait.get_default("handler")

    async def handler(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
        if args.pending:
            return await wait_pending(args, out, err)
        if not args.dataset_id or not args.batches:
            raise CLIError("wait needs DATASET_ID and at least one BATCH, or --pending")
        return await plain(args, out, err)

    wait.set_defaults(handler=handler)


def _add_ledger(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        help="pending ledger: a SQLite file or a redis:// URL "
        "(default: $DIFY_INGEST_LEDGER, else the user cache dir)",
    )


def _add_budget(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--requests-per-minute",
        help="the workspace's knowledge rate limit: a number or sandbox/professional/team",
    )
    parser.add_argument("--redis-url", help="share the budget with other processes via Redis")
    parser.add_argument("--workspace", help="with --redis-url: the key the fleet shares")
    parser.add_argument(
        "--budget-window",
        type=float,
        default=60.0,
        help="with --redis-url: seconds of the rate-limit window (Dify: 60; for simulators)",
    )
    parser.add_argument(
        "--latency-allowance",
        type=float,
        default=0.5,
        help="with --redis-url: seconds each slot is held beyond the window (0.5)",
    )
    parser.add_argument(
        "--redis-fallback",
        default="share",
        metavar="share|wait|local|FRACTION",
        help="with --redis-url, while Redis is unreachable: 'share' (default) pauses one "
        "window, then sends the limit divided by the processes last seen in Redis; 'wait' "
        "sends nothing until Redis is back; 'local' the whole limit per process (unsafe with "
        "many); a number in (0, 1] that fraction of the limit",
    )


def _budget(args: argparse.Namespace) -> dict[str, Any]:
    rate = args.requests_per_minute
    rate_value: float | str | None = rate
    if isinstance(rate, str) and rate.replace(".", "", 1).isdigit():
        rate_value = float(rate)
    if args.redis_url:
        if not args.workspace or rate_value is None:
            raise CLIError("--redis-url needs --workspace and --requests-per-minute")
        from .redis_budget import RedisBudget

        fallback: str | float = args.redis_fallback
        with contextlib.suppress(ValueError):
            fallback = float(fallback)
        try:
            budget: BudgetBackend = RedisBudget(
                args.redis_url,
                workspace=args.workspace,
                requests_per_minute=rate_value,
                window=args.budget_window,
                latency_allowance=args.latency_allowance,
                fallback=fallback,
            )
        except ValueError as error:
            raise CLIError(f"--redis-url settings: {error}") from None
        return {"budget": budget}
    return {"requests_per_minute": rate_value} if rate_value is not None else {}


# -- wait --pending -------------------------------------------------------------------------


async def wait_pending(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    dataset = args.dataset or args.dataset_id
    poll = args.poll_interval
    longest = args.max_poll_interval if args.max_poll_interval is not None else max(10.0, poll)
    if longest < poll:
        raise CLIError("--max-poll-interval must be at least --poll-interval")
    progress = args.progress
    if progress is None:
        progress = bool(getattr(err, "isatty", lambda: False)())
    check_client_args(args.api_key, args.base_url)
    async with AsyncDifyKnowledgeClient(
        args.api_key, args.base_url, ledger=args.ledger or None
    ) as client:
        if client.ledger is None:
            raise CLIError("the pending ledger is off (DIFY_INGEST_LEDGER=off)")
        statuses = await client.wait_for_pending(
            dataset,
            durable=True,
            timeout=args.timeout,
            stall_timeout=args.stall_timeout,
            poll_interval=poll,
            max_poll_interval=longest,
            on_paused=args.on_paused,
            raise_on_error=False,
            progress=progress,
        )
    ready = sum(status.is_completed for status in statuses)
    failed = sum(status.is_failed for status in statuses)
    code = EXIT_FAILED if failed else EXIT_OK
    if args.json:
        # The shape of `wait --json`: why it stopped, then every batch.
        payload = {
            "reason": "failed" if failed else "ready",
            "exit_code": code,
            "message": f"{ready} of {len(statuses)} pending batches ready, {failed} failed",
            "batches": [{**s.model_dump(mode="json"), "observed": True} for s in statuses],
        }
        print(json.dumps(payload, indent=2), file=out)
    elif not statuses:
        print("nothing pending", file=out)
    else:
        for status in statuses:
            _print_status(status, out)
    return code


def _print_status(status: BatchIndexingStatus, out: IO[str]) -> None:
    print(f"{status.dataset_id} {status.summary()}", file=out)
    for doc in status.failed_documents:
        print(f"  {doc.id}  error: {doc.error or '-'}", file=out)


# -- sync -------------------------------------------------------------------------------------


async def run_sync(args: argparse.Namespace, out: IO[str]) -> int:
    if args.concurrency < 1:
        raise CLIError("--concurrency must be >= 1")
    check_client_args(args.api_key, args.base_url)
    options: dict[str, Any] = {}
    if args.indexing_technique:
        options["indexing_technique"] = args.indexing_technique
    stop = asyncio.Event()
    bar = _Bar(enabled=not args.no_progress)
    async with AsyncDifyKnowledgeClient(
        args.api_key,
        args.base_url,
        ledger=args.ledger or None,
        # Create is an upsert by name: retrying one cannot duplicate a document.
        retry_creates=True,
        **_budget(args),
    ) as client:
        with _interrupts(stop), bar:
            try:
                report = await sync_folder(
                    client,
                    args.directory,
                    args.dataset,
                    delete=args.delete,
                    retry_failed=args.retry_failed,
                    concurrency=args.concurrency,
                    include=args.include,
                    exclude=args.exclude,
                    wait=not args.no_wait,
                    timeout=args.timeout,
                    stop=stop,
                    on_plan=bar.plan,
                    on_item=bar.advance,
                    **options,
                )
            except asyncio.CancelledError:
                print("interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(report.as_dict(), indent=2), file=out)
    else:
        _print_report(report, args.directory, out)
    if report.interrupted:
        return EXIT_INTERRUPTED
    if report.failed:
        return EXIT_FAILED
    if report.not_ready or report.not_started:
        return EXIT_NOT_READY
    return EXIT_OK


@contextlib.contextmanager
def _interrupts(stop: asyncio.Event) -> Iterator[None]:
    """First Ctrl-C: stop starting uploads, finish and record the running ones. Second: abort."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_interrupt() -> None:
        if stop.is_set():
            if task is not None:
                task.cancel()
            return
        stop.set()
        print(
            "stopping: uploads in flight finish and are recorded (Ctrl-C again to abort)",
            file=sys.stderr,
        )

    try:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, or not main
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


class _Bar:
    """One progress bar for the whole run: files reaching their outcome."""

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: Any = None

    def plan(self, items: list[SyncItem]) -> None:
        if not self._enabled:
            return
        from tqdm.auto import tqdm

        counted = [item for item in items if item.action != "keep"]
        self._bar = tqdm(total=len(counted), desc="sync", unit="file", file=sys.stderr)

    def advance(self, item: SyncItem) -> None:
        if self._bar is not None and item.action != "keep":
            self._bar.update(1)
            if item.outcome == "failed":
                self._bar.set_postfix_str(f"failed: {item.name}"[:60], refresh=False)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _print_report(report: SyncReport, directory: str, out: IO[str]) -> None:
    print(f"sync {directory} -> dataset {report.dataset_id}", file=out)
    rows = [
        ("uploaded", len(report.uploaded)),
        ("updated", len(report.updated)),
        ("skipped", len(report.skipped)),
        ("deleted", len(report.deleted)),
        ("failed", len(report.failed)),
    ]
    if report.kept:
        rows.append(("kept", len(report.kept)))
    if report.not_ready:
        rows.append(("not ready", len(report.not_ready)))
    if report.not_started:
        rows.append(("not started", len(report.not_started)))
    for label, count in rows:
        print(f"  {label:<12}{count:>7}", file=out)
    for item in report.failed:
        print(f"  FAILED {item.name}: {item.error or 'no error text'}", file=out)
    if report.kept:
        print("  (removed locally, kept in Dify: pass --delete to delete them)", file=out)
    if report.not_ready:
        print("  (still indexing: `dify-ingest wait --pending` picks them up)", file=out)
    if report.interrupted:
        print("  interrupted: run the same command again to continue", file=out)
