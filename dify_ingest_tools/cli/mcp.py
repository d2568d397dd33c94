"""``dify-ingest mcp``: the agent tools served over MCP (stdio, or streamable HTTP).

Needs the ``mcp`` extra; over HTTP a host other than loopback needs a bearer token.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from dify_ingest_tools._base.config import ENV_API_KEY, ENV_MCP_TOKEN
from dify_ingest_tools.cli.common import (
    EXIT_OK,
    CLIError,
    check_client_args,
    listen_failure,
    port_number,
    seconds,
)
from dify_ingest_tools.cli.dataset_name import ENV_DATASET_ID


def add_mcp_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
) -> None:
    """Add ``mcp`` to the CLI's subcommands (a job: ``args.job``)."""
    mcp = commands.add_parser(
        "mcp",
        parents=[common],
        help="serve the agent tools as an MCP server (stdio by default)",
        description=(
            f"Serve upload_text, indexing_status, wait_for_indexing, search and list_documents "
            f"over MCP. Configured by ${ENV_API_KEY}, $DIFY_API_BASE_URL and ${ENV_DATASET_ID} "
            "(optional: binds the tools to one knowledge base). On stdio, stdout carries only "
            "the protocol; logs go to stderr. Over streamable HTTP every request needs the "
            f"bearer token in ${ENV_MCP_TOKEN} when it is set, and a --host other than "
            "127.0.0.1/localhost/::1 refuses to start without one. "
            "Needs: pip install 'dify-ingest-tools[mcp]'."
        ),
        epilog="Exit codes: 0 the client disconnected, 2 usage error (no Dify key, a reachable "
        "--host without a token), 3 cannot listen on --host/--port, 130 interrupted.",
    )
    mcp.add_argument(
        "--transport", choices=("stdio", "streamable-http"), default="stdio", help="(stdio)"
    )
    mcp.add_argument("--host", default="127.0.0.1", help="streamable-http interface (127.0.0.1)")
    mcp.add_argument(
        "--port", type=port_number, default=8000, help="streamable-http port (8000; 0: a free one)"
    )
    mcp.add_argument(
        "--auth-token-env",
        metavar="NAME",
        default=ENV_MCP_TOKEN,
        help=f"the variable holding the bearer token HTTP clients must send (${ENV_MCP_TOKEN})",
    )
    mcp.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="also accept this Host header (e.g. a reverse proxy's name); repeatable. "
        "Loopback names and the bound address are always accepted",
    )
    mcp.add_argument(
        "--dataset-id",
        dest="dataset",
        default=os.environ.get(ENV_DATASET_ID),
        help=f"bind the tools to this knowledge base (default: ${ENV_DATASET_ID})",
    )
    mcp.add_argument(
        "--simulator", action="store_true", help="serve against an embedded Dify simulator"
    )
    mcp.add_argument(
        "--max-wait",
        type=seconds,
        default=None,
        help="longest wait a call makes (50 s: clients give up on a request after 60 s)",
    )
    mcp.add_argument(
        "--search-wait",
        type=seconds,
        default=None,
        help="how long search first waits for the session's own uploads (30 s; 0: never)",
    )
    mcp.add_argument(
        "--poll-interval", type=seconds, default=None, help="first gap between polls (1 s)"
    )
    mcp.add_argument(
        "--max-poll-interval",
        type=seconds,
        default=None,
        help="longest gap between polls while nothing changes (5 s)",
    )
    mcp.add_argument(
        "--progress-interval",
        type=seconds,
        default=None,
        help="longest gap between progress notifications during a wait (10 s)",
    )
    mcp.add_argument(
        "--allow-replace",
        action="store_true",
        help="let upload_text replace documents of the same name the tools did not create",
    )
    mcp.add_argument(
        "--log-level",
        default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        help="log level, on stderr (WARNING)",
    )
    mcp.set_defaults(job=_mcp)


async def _mcp(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from dify_ingest_tools.mcp_server import serve
        from dify_ingest_tools.mcp_server._http import check_allowed_host, check_token, is_loopback
    except ImportError as error:
        raise ValueError(str(error)) from None
    http = args.transport == "streamable-http"
    if not args.simulator:
        check_client_args(args.api_key, args.base_url)
    token = os.environ.get(args.auth_token_env, "").strip() or None if http else None
    where = f"${args.auth_token_env}"
    try:
        if token is not None:
            check_token(token)
        for host in args.allowed_host:
            check_allowed_host(host)
    except ValueError as error:
        raise CLIError(f"{error} ({where})" if token else str(error)) from None
    if http and token is None and not is_loopback(args.host):
        raise CLIError(
            f"refusing --host {args.host} without an auth token: anyone who reaches it could "
            f"use your Dify key; set {where} (or name another variable with --auth-token-env), "
            "or bind 127.0.0.1"
        )
    given = {
        "max_wait_seconds": args.max_wait,
        "search_wait_seconds": args.search_wait,
        "poll_interval": args.poll_interval,
        "max_poll_interval": args.max_poll_interval,
        "progress_interval": args.progress_interval,
    }
    # Left out: the server's and the tool set's own defaults.
    options = {name: value for name, value in given.items() if value is not None}

    def listening(url: str) -> None:
        guard = f"token required: {where}" if token else "no token: any local user can call it"
        print(f"dify-ingest mcp: serving {url} ({guard})", file=sys.stderr, flush=True)

    try:
        await serve(
            transport=args.transport,
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            base_url=args.base_url,
            dataset_id=args.dataset,
            simulator=args.simulator,
            log_level=args.log_level,
            auth_token=token,
            allowed_hosts=args.allowed_host,
            allow_replace=args.allow_replace,
            on_listening=listening,
            **options,
        )
    except OSError as error:
        if not http:
            raise
        raise listen_failure(args.host, args.port, error) from None
    return EXIT_OK
