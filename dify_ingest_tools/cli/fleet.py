"""``dify-ingest wait --pending`` and the budget options of the fleet commands.

`register` adds ``--pending`` to ``wait``, whose handler it wraps; `_add_budget` /
`_budget` give ``sync`` (`cli.sync`) its shared-budget options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Coroutine
from typing import IO, Any

from dify_ingest_tools._base.shown import (
    FAILED_SHOWN,
    ID_LIMIT,
    scrubbed_status,
    shown,
    shown_error,
)
from dify_ingest_tools.backends.budget import BudgetBackend
from dify_ingest_tools.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_READY,
    EXIT_OK,
    CLIError,
    check_client_args,
    one_line,
)
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.progress import should_draw_bars

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
    wait.add_argument(
        "--dataset-name",
        metavar="NAME",
        help="with --pending: only the knowledge base of this exact name",
    )
    _add_ledger(wait)
    plain: Handler = wait.get_default("handler")

    async def handler(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
        if args.pending:
            return await wait_pending(args, out, err)
        if args.dataset_name is not None:
            raise CLIError("--dataset-name goes with --pending (else pass DATASET_ID BATCH...)")
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
        from dify_ingest_tools.backends.redis_budget import RedisBudget

        fallback: str | float = args.redis_fallback
        with contextlib.suppress(ValueError):
            fallback = float(fallback)
        try:
            budget: BudgetBackend = RedisBudget(
                args.redis_url,
                workspace=args.workspace,
                limit=rate_value,  # per --budget-window: Dify's 60 s unless a simulator's
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
    progress = should_draw_bars(err, args.progress)
    check_client_args(args.api_key, args.base_url)
    async with AsyncDifyKnowledgeClient(
        args.api_key, args.base_url, ledger=args.ledger or None
    ) as client:
        if client.ledger is None:
            raise CLIError("the pending ledger is off (DIFY_INGEST_LEDGER=off)")
        if args.dataset_name is not None:
            if dataset:
                raise CLIError("pass --dataset or --dataset-name, not both")
            dataset = await client.dataset_id_for(args.dataset_name)
        statuses = await client.wait_for_pending(
            dataset,
            durable=True,
            timeout=args.timeout,
            stall_timeout=args.stall_timeout,
            poll_interval=poll,
            max_poll_interval=longest,
            on_paused=args.on_paused,
            raise_on_error=False,
            on_empty="accept",  # every batch is reported; empty ones decide the exit below
            summaries=args.summaries,
            progress=progress,
        )
    empty = sum(status.is_empty for status in statuses)
    ready = sum(status.is_completed for status in statuses) - empty
    failed = sum(status.is_failed for status in statuses)
    empty_fails = bool(empty) and args.on_empty == "raise"
    code = EXIT_FAILED if failed else EXIT_NOT_READY if empty_fails else EXIT_OK
    if args.json:
        # The shape of `wait --json`: why it stopped, then every batch.
        payload = {
            "reason": "failed" if failed else "empty" if empty_fails else "ready",
            "exit_code": code,
            "message": f"{ready} of {len(statuses)} pending batches ready, {failed} failed"
            + (f", {empty} empty (indexed, but produced no chunks)" if empty else ""),
            "batches": [
                {**scrubbed_status(s).model_dump(mode="json"), "observed": True} for s in statuses
            ],
        }
        print(json.dumps(payload, indent=2), file=out)
    elif not statuses:
        print("nothing pending", file=out)
    else:
        for status in statuses:
            _print_status(status, out)
    return code


def _print_status(status: BatchIndexingStatus, out: IO[str]) -> None:
    print(one_line(f"{status.dataset_id} {status.summary()}"), file=out)
    for doc in status.failed_documents[:FAILED_SHOWN]:
        print(f"  {shown(doc.id, ID_LIMIT)}  error: {shown_error(doc.error) or '-'}", file=out)
