"""``dify-ingest upload | search | documents | mcp``: the whole job from a shell.

Registered on the main parser by `register`; each command is a coroutine taking the parsed
arguments and stdout, and `cli.main` maps exceptions to the exit codes:

0 success (``upload --wait``: every document ready) · 1 indexing failed (``upload --wait``)
· 2 usage error (bad arguments, no file matched, two files that would be one document) · 3 API,
auth or connection error (an upload Dify rejected included; a misconfiguration ends ``upload``
at its first answer) · 4 not ready (``upload --wait`` ran out of time, or a document is
paused) · 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from dify_ingest_tools._base.config import ENV_API_KEY, ENV_MCP_TOKEN
from dify_ingest_tools._base.pages import PageBound
from dify_ingest_tools._base.shown import (
    ID_LIMIT,
    NAME_LIMIT,
    SHOWN_LIMIT,
    scrubbed_document,
    shown,
    shown_json,
)
from dify_ingest_tools._http.multipart import DEFAULT_MAX_FILE_SIZE
from dify_ingest_tools.cli.common import (
    CLIError,
    check_client_args,
    describe_error,
    listen_failure,
    port_number,
    seconds,
)
from dify_ingest_tools.cli.dataset_name import (
    add_dataset_name,
    check_dataset_name_args,
    dataset_by_name,
)
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.errors import (
    DifyAuthenticationError,
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyPermissionError,
    DifyResponseError,
    DifyTimeoutError,
)
from dify_ingest_tools.folder_sync.sync import NAME_SEPARATOR, scan_folder
from dify_ingest_tools.models.documents import MetadataField
from dify_ingest_tools.models.ownership import MARK_FIELDS, Mark
from dify_ingest_tools.models.status import BatchIndexingStatus, CreatedDocument, DifyDocument
from dify_ingest_tools.readiness.progress import should_draw_bars

__all__ = ["register"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_NOT_READY = 0, 1, 2, 3, 4
ENV_DATASET_ID = "DIFY_DATASET_ID"
# Dify serves at most 100 documents a page; `documents` reads at most this many pages
# (100,000 documents), whatever a server's ``has_more`` says.
_LIST_PAGE = 100
MAX_LIST_PAGES = 1_000

Command = Callable[[argparse.Namespace, TextIO], Awaitable[int]]

_EXIT_CODES = (
    "Exit codes: 0 success, 1 indexing failed, 2 usage error (or two files that would be one "
    "document), 3 API/auth/connection error (or an upload Dify rejected), 4 not ready (still "
    "indexing or paused), 130 interrupted."
)


def register(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
) -> None:
    """Add ``upload``, ``search``, ``documents`` and ``mcp`` to the CLI's subcommands.

    Args:
        commands: The main parser's subparsers.
        common: The parent parser holding ``--api-key`` / ``--base-url``.
    """
    dataset = argparse.ArgumentParser(add_help=False)
    dataset.add_argument(
        "--dataset",
        "--dataset-id",
        dest="dataset",
        default=os.environ.get(ENV_DATASET_ID),
        help=f"knowledge base (dataset) UUID (default: ${ENV_DATASET_ID})",
    )
    add_dataset_name(dataset)
    dataset.add_argument("--json", action="store_true", help="print the result as JSON")

    upload = commands.add_parser(
        "upload",
        parents=[common, dataset],
        help="upload files, folders or stdin text (optionally wait until indexed)",
        description=(
            "Upload each file as one document. A file given by itself is named after the file "
            "(an existing document of that name is replaced: Dify's create is an upsert by "
            "name); a file found in a folder is named as sync names it, by its path relative "
            "to the folder with its folders joined by __ (guides/setup.md -> guides__setup.md)."
            " Two files that would be one document are refused before any request."
        ),
        epilog=_EXIT_CODES,
    )
    upload.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders, or - for text on stdin"
    )
    upload.add_argument(
        "--glob", default="**/*", help="files to take from folders (default: **/*, recursive)"
    )
    upload.add_argument("--name", default="stdin.txt", help="document name for - (stdin.txt)")
    upload.add_argument(
        "--owner",
        help="tag the documents as this owner's (source path and content hash too), so that "
        "a later 'sync --owner NAME' treats them as its own",
    )
    upload.add_argument(
        "--max-file-size",
        type=_file_size,
        default=DEFAULT_MAX_FILE_SIZE,
        metavar="SIZE",
        help="the server's upload limit: larger files fail before any request (bytes, or "
        "with K/M/G for KiB/MiB/GiB; default 15M, Dify's UPLOAD_FILE_SIZE_LIMIT)",
    )
    upload.add_argument(
        "--concurrency", type=int, default=4, help="uploads in flight at once (default 4)"
    )
    upload.add_argument("--wait", action="store_true", help="wait until every upload is indexed")
    upload.add_argument(
        "--timeout", type=seconds, default=600.0, help="seconds --wait may take (600)"
    )
    upload.add_argument("--no-progress", action="store_true", help="no progress bars (--wait)")
    upload.set_defaults(job=_upload)

    search = commands.add_parser(
        "search", parents=[common, dataset], help="search a knowledge base", epilog=_EXIT_CODES
    )
    search.add_argument("query", help="what to look for (Dify allows 250 characters)")
    search.add_argument("--top-k", type=int, default=4, help="number of hits (default 4)")
    search.set_defaults(job=_search)

    documents = commands.add_parser(
        "documents",
        parents=[common, dataset],
        help="list a knowledge base's documents",
        epilog=_EXIT_CODES,
    )
    documents.add_argument("--status", help="only this display status (available, indexing...)")
    documents.add_argument("--keyword", help="only names containing this (case-sensitive)")
    documents.set_defaults(job=_documents)

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


def _dataset(args: argparse.Namespace) -> str:
    if not args.dataset:
        raise ValueError(f"--dataset is required (or set {ENV_DATASET_ID})")
    return str(args.dataset)


def _dataset_or_name(args: argparse.Namespace) -> tuple[str, str | None]:
    """``(dataset_id, None)``, or ``("", name)`` for ``--dataset-name`` (looked up later)."""
    name = check_dataset_name_args(args, ENV_DATASET_ID)
    return ("", name) if name is not None else (_dataset(args), None)


# -- upload -----------------------------------------------------------------------------------

_SIZE = re.compile(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _file_size(text: str) -> int:
    """``--max-file-size``: bytes, or K/M/G (binary, as Dify counts its limit in MiB)."""
    match = _SIZE.fullmatch(text)
    if match is None or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: give bytes, or a number with K, M or G (e.g. 15M)"
        )
    return int(match[1]) * _UNITS[match[2].upper()]


@dataclass(frozen=True)
class _Source:
    """One document to write: a file or stdin text, and where it came from."""

    name: str
    path: Path | None = None
    text: str | None = None
    #: The file's path relative to its folder (its own name for a file given by itself):
    #: the ownership mark's source, as sync records it.
    origin: str = ""

    @property
    def shown(self) -> str:
        return str(self.path) if self.path is not None else "- (stdin)"


def _sources(args: argparse.Namespace, stdin: TextIO) -> list[_Source]:
    """Every document of the run, by name; refuses (ValueError) two files of one name."""
    sources: list[_Source] = []
    for raw in args.paths:
        if raw == "-":
            sources.append(_Source(args.name, text=stdin.read(), origin=args.name))
            continue
        path = Path(raw)
        if path.is_dir():
            sources += _folder(path, args.glob)
        elif path.is_file():
            sources.append(_Source(path.name, path=path, origin=path.name))
        else:
            raise ValueError(f"{raw}: no such file or folder")
    if not sources:
        raise ValueError("no file to upload (check the paths and --glob)")
    return _one_per_name(sources)


def _folder(root: Path, pattern: str) -> list[_Source]:
    # Named as sync names them (scan_folder refuses two files of one name, naming both).
    found = scan_folder(root)
    selected = {NAME_SEPARATOR.join(item.relative_to(root).parts) for item in root.glob(pattern)}
    return [
        _Source(name, path=path, origin=_relative(path, root))
        for name, path in found.items()
        if name in selected
    ]


def _relative(path: Path, root: Path) -> str:
    try:
        parts = path.relative_to(root).parts
    except ValueError:  # one of them resolved (symlinked folders)
        parts = path.resolve().relative_to(root.resolve()).parts
    return str(PurePosixPath(*parts))


def _one_per_name(sources: list[_Source]) -> list[_Source]:
    """Drop repeats of one file; refuse two different sources that would be one document."""
    kept: dict[str, _Source] = {}
    for source in sources:
        other = kept.get(source.name)
        if other is None:
            kept[source.name] = source
        elif not _same_file(other, source):
            raise ValueError(
                f"{other.shown} and {source.shown} would both be the document "
                f"{source.name!r}; upload them separately or rename one (folders are joined "
                "with __ in document names)"
            )
    return list(kept.values())


def _same_file(one: _Source, other: _Source) -> bool:
    if one.path is None or other.path is None:
        return False
    try:
        return os.path.samefile(one.path, other.path)
    except OSError:
        return False


def _misconfigured(error: DifyError) -> bool:
    """An answer that every other request of the run would get too: stop at the first."""
    if isinstance(error, (DifyAuthenticationError, DifyPermissionError)):
        return True  # 401; 403 API access disabled or a plan limit (the rate limit is not one)
    if isinstance(error, DifyNotFoundError):
        return error.resource in ("dataset", "route")
    if isinstance(error, DifyResponseError):
        return error.code == "not_json"  # a web page, not Dify's API
    # A timeout may be one slow file; a refused or failed connection is every file's.
    return isinstance(error, DifyConnectionError) and not isinstance(error, DifyTimeoutError)


async def _preflight(client: AsyncDifyKnowledgeClient, dataset_id: str) -> None:
    """Read the dataset (the first request a create makes anyway, cached): a wrong key, base
    URL or dataset ends the run here, before any upload."""
    try:
        await client.get_dataset(dataset_id)
    except DifyError as error:
        if _misconfigured(error) or isinstance(error, DifyConnectionError):
            raise
        # Some self-hosted servers fail this read alone (400 "Failed to request plugin
        # daemon"); the creates go on without it.


async def _mark_fields(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> dict[str, MetadataField]:
    """The ownership fields, created if missing; refuses fields of another type up front."""
    fields = await client.ensure_metadata_fields(dataset_id, MARK_FIELDS)
    wrong = sorted(name for name, kind in MARK_FIELDS.items() if fields[name].type != kind)
    if wrong:
        raise CLIError(
            f"the knowledge base's metadata field(s) {', '.join(wrong)} are not of type string, "
            "so --owner cannot mark documents there: delete or rename them in Dify",
            EXIT_API,
        )
    return fields


def _file_hash(path: Path) -> tuple[str, os.stat_result]:
    """SHA-256 of the file, read in chunks, and its stat from before the read."""
    before = os.stat(path)
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest(), before


_Result = CreatedDocument | DifyError | ValueError | OSError | None


async def _upload(args: argparse.Namespace, out: TextIO) -> int:
    dataset_id, dataset_name = _dataset_or_name(args)
    if args.concurrency < 1:
        raise ValueError("--concurrency must be >= 1")
    owner = args.owner.strip() if args.owner is not None else None
    if owner == "":
        raise ValueError("--owner must not be empty")
    sources = _sources(args, sys.stdin)
    gate = asyncio.Semaphore(args.concurrency)
    check_client_args(args.api_key, args.base_url)
    async with AsyncDifyKnowledgeClient(
        args.api_key, args.base_url, max_file_size=args.max_file_size
    ) as client:
        if dataset_name is not None:
            dataset_id = await dataset_by_name(client, args, dataset_name)
        await _preflight(client, dataset_id)
        fields = await _mark_fields(client, dataset_id) if owner else None
        marks: dict[str, dict[str, str]] = {}
        stopped: list[DifyError] = []

        async def one(source: _Source) -> _Result:
            async with gate:
                if stopped:
                    return None  # not started: the run is ending
                try:
                    created, digest = await _create(client, dataset_id, source, owner)
                except DifyError as error:
                    if _misconfigured(error):
                        stopped.append(error)
                    return error
                except (ValueError, OSError) as error:  # refused before its request, or changed
                    return error
                if owner is not None:
                    mark = Mark(owner=owner, source=source.origin, content_hash=digest)
                    marks[created.document_id] = mark.values()
                return created

        results = await asyncio.gather(*(one(source) for source in sources))
        if stopped:
            _print_rows(args, _rows(sources, results, {}, skip_errors=True), out)
            raise stopped[0]
        if marks:
            try:
                await client.set_documents_metadata(
                    dataset_id, marks, partial_update=True, fields=fields
                )
            except DifyError as error:
                _print_rows(args, _rows(sources, results, {}), out)
                raise CLIError(
                    "uploaded, but the ownership marks could not be written (a later sync "
                    f"--owner will not know these documents): {describe_error(error)}",
                    EXIT_API,
                ) from error
        created = [result for result in results if isinstance(result, CreatedDocument)]
        statuses: dict[str, BatchIndexingStatus] = {}
        if args.wait and created:
            waited = await client.wait_for_batches(
                created,
                timeout=args.timeout,
                raise_on_error=False,
                on_empty="accept",  # reported per file below (verdict "empty", exit 4)
                progress=should_draw_bars(sys.stderr, False if args.no_progress else None),
            )
            statuses = {status.batch: status for status in waited}
    rows = _rows(sources, results, statuses)
    _print_rows(args, rows, out)
    return _upload_exit(rows, args.wait)


async def _create(
    client: AsyncDifyKnowledgeClient, dataset_id: str, source: _Source, owner: str | None
) -> tuple[CreatedDocument, str | None]:
    """Upload one source; the SHA-256 of its bytes when marks are wanted."""
    if source.text is not None:
        created = await client.create_document_by_text(dataset_id, source.name, source.text)
        digest = hashlib.sha256(source.text.encode()).hexdigest() if owner else None
        return created, digest
    assert source.path is not None
    digest = None
    if owner is not None:
        digest, before = await asyncio.to_thread(_file_hash, source.path)
    created = await client.create_document_by_file(dataset_id, source.path, filename=source.name)
    if owner is not None:
        after = await asyncio.to_thread(os.stat, source.path)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise OSError(f"{source.path} changed while it was being uploaded: upload it again")
    return created, digest


def _rows(
    sources: list[_Source],
    results: list[_Result],
    statuses: dict[str, BatchIndexingStatus],
    *,
    skip_errors: bool = False,
) -> list[dict[str, Any]]:
    rows = []
    for source, result in zip(sources, results, strict=True):
        if result is None or (skip_errors and not isinstance(result, CreatedDocument)):
            continue
        rows.append(_row(source, result, statuses))
    return rows


def _print_rows(args: argparse.Namespace, rows: list[dict[str, Any]], out: TextIO) -> None:
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
    else:
        for row in rows:
            print(_line(row), file=out)


def _row(
    source: _Source,
    result: CreatedDocument | DifyError | ValueError | OSError,
    statuses: dict[str, BatchIndexingStatus],
) -> dict[str, Any]:
    row: dict[str, Any] = {"source": str(source.path) if source.path else "-", "name": source.name}
    if not isinstance(result, CreatedDocument):
        return {**row, "error": f"{type(result).__name__}: {result}"}
    row.update(document_id=result.document_id, batch=result.batch)
    status = statuses.get(result.batch)
    if status is not None:
        verdict = "empty" if status.is_empty else status.verdict
        row.update(verdict=verdict, summary=status.summary())
    return row


def _line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"FAILED   {row['name']}: {row['error']}"
    line = f"uploaded {row['name']}: document {row['document_id']}, batch {row['batch']}"
    if "verdict" in row:
        line += f"\n         {row['summary']}"
    return line


def _upload_exit(rows: list[dict[str, Any]], waited: bool) -> int:
    if any("error" in row for row in rows):
        return EXIT_API
    if not waited:
        return EXIT_OK
    verdicts = {row.get("verdict") for row in rows}
    if "failed" in verdicts:
        return EXIT_FAILED
    return EXIT_OK if verdicts == {"ready"} else EXIT_NOT_READY


# -- search and documents ---------------------------------------------------------------------


async def _search(args: argparse.Namespace, out: TextIO) -> int:
    dataset_id, dataset_name = _dataset_or_name(args)
    check_client_args(args.api_key, args.base_url)
    async with AsyncDifyKnowledgeClient(args.api_key, args.base_url) as client:
        if dataset_name is not None:
            dataset_id = await dataset_by_name(client, args, dataset_name)
        hits = await client.retrieve(dataset_id, args.query, top_k=args.top_k)
    if args.json:
        shown_hits = [shown_json(hit.model_dump(mode="json")) for hit in hits]
        print(json.dumps(shown_hits, indent=2), file=out)
        return EXIT_OK
    print(f"{len(hits)} hit(s) for {args.query!r}", file=out)
    for hit in hits:
        score = "    -" if hit.score is None else f"{hit.score:5.2f}"
        name = shown(hit.document_name or hit.document_id or "?", NAME_LIMIT)
        text = shown(" ".join(hit.content.split()), SHOWN_LIMIT)
        print(f"{score}  {name}: {text}", file=out)
    return EXIT_OK


async def _documents(args: argparse.Namespace, out: TextIO) -> int:
    dataset_id, dataset_name = _dataset_or_name(args)
    # What is kept per document is already cut (a line, or a JSON object with its strings
    # cut), so a list of 1 MB names costs what a list of short ones does.
    lines: list[str] = []
    objects: list[dict[str, Any]] = []
    bound = PageBound(MAX_LIST_PAGES)
    check_client_args(args.api_key, args.base_url)
    async with AsyncDifyKnowledgeClient(args.api_key, args.base_url) as client:
        if dataset_name is not None:
            dataset_id = await dataset_by_name(client, args, dataset_name)
        for page in range(1, MAX_LIST_PAGES + 1):
            listing = await client.list_documents(
                dataset_id, status=args.status, keyword=args.keyword, page=page, limit=_LIST_PAGE
            )
            for doc in bound.new_items(listing.data[:_LIST_PAGE]):
                if args.json:
                    objects.append(_document_json(doc))
                else:
                    lines.append(_document_line(doc))
            if not bound.more(listing):
                break
    if args.json:
        print(json.dumps(objects, indent=2), file=out)
        return EXIT_OK
    print(f"{len(lines)} document(s) in knowledge base {dataset_id}", file=out)
    for line in lines:
        print(line, file=out)
    if bound.capped:
        print(
            f"(stopped after {MAX_LIST_PAGES} pages: the server still said there were more)",
            file=out,
        )
    return EXIT_OK


def _document_line(doc: DifyDocument) -> str:
    status = shown(doc.display_status or str(doc.indexing_status or "-"), ID_LIMIT)
    return f"  {shown(doc.id, ID_LIMIT)}  {status:<10} {shown(doc.name, NAME_LIMIT)}"


def _document_json(doc: DifyDocument) -> dict[str, Any]:
    shown_doc: dict[str, Any] = shown_json(scrubbed_document(doc).model_dump(mode="json"))
    return shown_doc


# -- mcp --------------------------------------------------------------------------------------


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
