"""``dify-ingest upload``: files, folders or stdin text, one document each (optionally waited on).

A file given by itself is named after the file; a file found in a folder is named as sync
names it. Two files that would be one document are refused before any request, and an answer
every other upload would get too (a wrong key, base URL or dataset) ends the run at the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from dify_ingest_tools._http.multipart import DEFAULT_MAX_FILE_SIZE
from dify_ingest_tools.backends.ledger import content_hash
from dify_ingest_tools.cli.common import (
    EXIT_API,
    EXIT_FAILED,
    EXIT_NOT_READY,
    EXIT_OK,
    CLIError,
    check_client_args,
    describe_error,
    file_size,
    seconds,
)
from dify_ingest_tools.cli.dataset_name import dataset_by_name, dataset_or_name
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
from dify_ingest_tools.folder_sync.scan import (
    NAME_SEPARATOR,
    ChangedDuringRead,
    FileVanished,
    digest,
    snapshot,
)
from dify_ingest_tools.folder_sync.sync import scan_folder
from dify_ingest_tools.models.created import CreatedDocument
from dify_ingest_tools.models.documents import MetadataField
from dify_ingest_tools.models.ownership import MARK_FIELDS, Mark
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.progress import should_draw_bars


def add_upload_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    parents: list[argparse.ArgumentParser],
    epilog: str,
) -> None:
    """Add ``upload`` to the CLI's subcommands (a job: ``args.job``)."""
    upload = commands.add_parser(
        "upload",
        parents=parents,
        help="upload files, folders or stdin text (optionally wait until indexed)",
        description=(
            "Upload each file as one document. A file given by itself is named after the file "
            "(an existing document of that name is replaced: Dify's create is an upsert by "
            "name); a file found in a folder is named as sync names it, by its path relative "
            "to the folder with its folders joined by __ (guides/setup.md -> guides__setup.md)."
            " Two files that would be one document are refused before any request."
        ),
        epilog=epilog,
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
        type=file_size,
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


_Result = CreatedDocument | DifyError | ValueError | OSError | None


async def _upload(args: argparse.Namespace, out: TextIO) -> int:
    dataset_id, dataset_name = dataset_or_name(args)
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
        return created, content_hash(source.text) if owner else None
    path = source.path
    assert path is not None
    if owner is None:
        return await client.create_document_by_file(dataset_id, path, filename=source.name), None
    # The hash of the marks is the one sync compares: the folder scan's own `digest`.
    try:
        value, before = await asyncio.to_thread(digest, path)
        created = await client.create_document_by_file(dataset_id, path, filename=source.name)
        after = await asyncio.to_thread(snapshot, path)
    except FileVanished:
        raise OSError(f"{path} vanished before it was uploaded") from None
    except ChangedDuringRead:
        raise OSError(f"{path} changed while it was being read: upload it again") from None
    if after != before:
        raise OSError(f"{path} changed while it was being uploaded: upload it again")
    return created, value


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
