"""``dify-ingest sync``: a folder into a knowledge base, touching only what this sync owns.

The engine is `folder_sync.sync_folder`; this module holds its options, its guard's refusal
(exit 2), the plan of ``--dry-run``, the progress bar and the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from typing import IO, Any

from dify_ingest_tools._base.shown import NAME_LIMIT, shown
from dify_ingest_tools._http.multipart import DEFAULT_MAX_FILE_SIZE
from dify_ingest_tools.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_NOT_READY,
    EXIT_OK,
    CLIError,
    check_client_args,
    file_size,
)
from dify_ingest_tools.cli.dataset_name import (
    add_dataset_name,
    check_dataset_name_args,
    dataset_by_name,
)
from dify_ingest_tools.cli.fleet import _add_budget, _add_ledger, _budget
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.folder_sync.plan import SyncItem, SyncRefused
from dify_ingest_tools.folder_sync.report import SyncReport
from dify_ingest_tools.folder_sync.sync import sync_folder
from dify_ingest_tools.readiness.progress import should_draw_bars


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sync`` to the subcommands (a job: ``args.job``)."""
    sync = commands.add_parser(
        "sync",
        parents=[common],
        help="make a knowledge base match a folder (only the documents this sync owns)",
        description="Make a knowledge base match a folder: new files are uploaded, changed "
        "ones updated in place, unchanged ones skipped, removed ones deleted with --delete. "
        "The knowledge base is the manifest: every document sync writes carries its owner "
        "tag, source path and content hash in Dify metadata, so a run from any machine "
        "uploads nothing that is unchanged, and documents of other owners, of `upload` or of "
        "people are never updated or deleted. Safe to interrupt (Ctrl-C) and re-run.",
        epilog="exit codes: 0 every file indexed (or the dry run's plan printed), 4 something "
        "not ready, failed, in conflict or changed while read (the report says which), "
        "2 refused (bad arguments, a name clash, a deletion over the limit), 3 nothing could "
        "be compared (API, auth, connection or configuration error), 130 interrupted.",
    )
    sync.add_argument("directory", help="the folder (document names are paths relative to it)")
    sync.add_argument("--dataset", help="knowledge base (dataset) UUID (or --dataset-name)")
    add_dataset_name(sync)
    sync.add_argument(
        "--owner",
        metavar="NAME",
        help="the owner tag written on every document this sync writes, and the only "
        "documents it updates or deletes (default: the folder's name)",
    )
    sync.add_argument(
        "--delete", action="store_true", help="delete owned documents whose file was removed"
    )
    sync.add_argument(
        "--max-delete",
        type=_count,
        metavar="N",
        help="most owned documents one run may delete (default: 20 %% of them, at least 1)",
    )
    sync.add_argument(
        "--force",
        action="store_true",
        help="delete even when the run would remove all owned documents or more than --max-delete",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="print the plan per file and write nothing"
    )
    sync.add_argument(
        "--adopt",
        action="store_true",
        help="claim documents of a file's name that carry no owner tag (written before "
        "owner tags, or by hand) instead of reporting them as conflicts",
    )
    sync.add_argument(
        "--retry-failed", action="store_true", help="upload unchanged files whose indexing failed"
    )
    sync.add_argument(
        "--include", action="append", default=[], metavar="GLOB", help="only matching names"
    )
    sync.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="leave matching names out"
    )
    sync.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="follow symlinks whose target is inside the folder (never outside it)",
    )
    sync.add_argument(
        "--max-file-size",
        type=file_size,
        default=DEFAULT_MAX_FILE_SIZE,
        metavar="SIZE",
        help="leave out larger files before any request (bytes, or 15M, 1G; default 15M, "
        "Dify's default upload limit)",
    )
    sync.add_argument("--concurrency", type=int, default=4, help="uploads in flight (4)")
    sync.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for indexing (3600)"
    )
    sync.add_argument(
        "--stall-timeout",
        type=float,
        default=600.0,
        help="seconds without any change after which a document has stalled: a file this run "
        "uploaded is sent once more by name (600; 0 turns stall detection off)",
    )
    sync.add_argument("--no-wait", action="store_true", help="upload only; do not wait")
    sync.add_argument("--indexing-technique", choices=["high_quality", "economy"])
    _add_budget(sync)
    _add_ledger(sync)
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.add_argument("--no-progress", action="store_true", help="no progress bar")
    sync.set_defaults(job=run_folder_sync)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


async def run_folder_sync(args: argparse.Namespace, out: IO[str]) -> int:
    dataset_name = check_dataset_name_args(args)
    if dataset_name is None and not args.dataset:
        raise CLIError("sync needs --dataset (or --dataset-name)")
    if args.concurrency < 1:
        raise CLIError("--concurrency must be >= 1")
    if args.owner is not None and not args.owner.strip():
        raise CLIError("--owner needs a name")
    check_client_args(args.api_key, args.base_url)
    options: dict[str, Any] = {}
    if args.indexing_technique:
        options["indexing_technique"] = args.indexing_technique
    stop = asyncio.Event()
    bar = _Bar(
        enabled=not args.dry_run and should_draw_bars(None, False if args.no_progress else None)
    )
    async with AsyncDifyKnowledgeClient(
        args.api_key,
        args.base_url,
        ledger=args.ledger or None,
        # Create is an upsert by name: retrying one cannot duplicate a document.
        retry_creates=True,
        max_file_size=args.max_file_size,
        **_budget(args),
    ) as client:
        if dataset_name is not None:
            args.dataset = await dataset_by_name(client, args, dataset_name, dry_run=args.dry_run)
        with _interrupts(stop), bar:
            try:
                report = await sync_folder(
                    client,
                    args.directory,
                    args.dataset,
                    owner=args.owner,
                    delete=args.delete,
                    max_delete=args.max_delete,
                    force=args.force,
                    dry_run=args.dry_run,
                    adopt=args.adopt,
                    retry_failed=args.retry_failed,
                    follow_symlinks=args.follow_symlinks,
                    max_file_size=args.max_file_size,
                    concurrency=args.concurrency,
                    include=args.include,
                    exclude=args.exclude,
                    wait=not args.no_wait,
                    timeout=args.timeout,
                    stall_timeout=args.stall_timeout or None,
                    stop=stop,
                    on_plan=bar.plan,
                    on_item=bar.advance,
                    **options,
                )
            except SyncRefused as refused:
                raise CLIError(f"sync refused: {refused} (nothing was written)") from None
            except asyncio.CancelledError:
                print("interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(report.as_dict(), indent=2), file=out)
    elif report.dry_run:
        _print_plan(report, args.directory, out)
    else:
        _print_report(report, args.directory, out)
    if report.refused:
        print(f"dify-ingest: sync refused: {report.refused}", file=sys.stderr)
        return 2
    if report.dry_run:
        return EXIT_OK
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_NOT_READY


@contextlib.contextmanager
def _interrupts(stop: asyncio.Event) -> Iterator[None]:
    """First Ctrl-C: stop starting uploads, finish and mark the running ones. Second: abort."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_interrupt() -> None:
        if stop.is_set():
            if task is not None:
                task.cancel()
            return
        stop.set()
        print(
            "stopping: uploads in flight finish and are marked (Ctrl-C again to abort)",
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
    """One progress bar for the whole run: files reaching their outcome (terminals only)."""

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: Any = None

    def plan(self, items: list[SyncItem]) -> None:
        if not self._enabled:
            return
        from tqdm.auto import tqdm

        counted = [item for item in items if item.action not in ("keep", "leave", "conflict")]
        self._bar = tqdm(total=len(counted), desc="sync", unit="file", file=sys.stderr)

    def advance(self, item: SyncItem) -> None:
        if self._bar is not None and item.action not in ("keep", "leave", "conflict"):
            self._bar.update(1)
            if item.outcome == "failed":
                self._bar.set_postfix_str(shown(f"failed: {item.name}", 40), refresh=False)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _print_plan(report: SyncReport, directory: str, out: IO[str]) -> None:
    print(
        f"sync {shown(directory)} -> dataset {report.dataset_id} "
        f"(owner {shown(report.owner, NAME_LIMIT)}): dry run, nothing written",
        file=out,
    )
    for item in report.items:
        print(f"  {shown(item.describe(), 400)}", file=out)
    counts: dict[str, int] = {}
    for item in report.items:
        counts[item.action] = counts.get(item.action, 0) + 1
    order = ("upload", "update", "skip", "delete", "keep", "conflict", "leave")
    print("  " + ", ".join(f"{counts[a]} {a}" for a in order if a in counts), file=out)


def _print_report(report: SyncReport, directory: str, out: IO[str]) -> None:
    print(
        f"sync {shown(directory)} -> dataset {report.dataset_id} (owner {shown(report.owner)})",
        file=out,
    )
    rows = [
        ("uploaded", len(report.uploaded)),
        ("updated", len(report.updated)),
        ("skipped", len(report.skipped)),
        ("deleted", len(report.deleted)),
        ("failed", len(report.failed)),
    ]
    optional = [
        ("kept", len(report.kept)),
        ("empty", len(report.empty)),
        ("not ready", len(report.not_ready)),
        ("not started", len(report.not_started)),
        ("conflicts", len(report.conflicts)),
        ("left out", len(report.left_out)),
        ("vanished", len(report.vanished)),
        ("changed", len(report.changed)),
    ]
    rows.extend((label, count) for label, count in optional if count)
    for label, count in rows:
        print(f"  {label:<12}{count:>7}", file=out)
    for item in report.failed:
        print(f"  FAILED {shown(item.name)}: {shown(item.error or 'no error text')}", file=out)
    for item in report.empty:
        print(f"  EMPTY {shown(item.name)}: {shown(item.error)}", file=out)
    for item in report.conflicts:
        print(f"  CONFLICT {shown(item.name)}: {shown(item.error)}", file=out)
    for item in report.left_out:
        print(f"  left out {shown(item.name)}: {shown(item.error)}", file=out)
    for name in report.vanished:
        print(f"  VANISHED {shown(name)}: the file vanished during the run", file=out)
    for name in report.changed:
        print(f"  CHANGED {shown(name)}: changed while read; run again to sync it", file=out)
    for line in report.warnings:
        print(f"  warning: {shown(line, 500)}", file=out)
    if report.kept:
        print("  (kept in Dify: files gone or left out; pass --delete to delete them)", file=out)
    if report.not_ready:
        print("  (still indexing: `dify-ingest wait --pending` picks them up)", file=out)
    if report.interrupted:
        print("  interrupted: run the same command again to continue", file=out)
