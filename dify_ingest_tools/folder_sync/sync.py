"""Make a knowledge base match a folder (what ``dify-ingest sync`` runs).

Each file becomes one document named by its path relative to the folder, its folders joined by
``__`` (Dify refuses ``/`` in file names): ``guides/setup.md`` is ``guides__setup.md``.

**The knowledge base is the manifest** (design.md §12b). Every document a sync writes carries,
in Dify metadata, its owner tag (``owner``: by default the folder's name), its source path and
its content hash. A run lists the knowledge base (list pages are not rate limited), hashes the
folder and compares: new files are uploaded, changed ones re-uploaded under their name (Dify's
create is an upsert: same document, new batch), unchanged ones skipped; the marks of many
documents go out in one metadata request. So a run on another machine, or a fresh CI runner,
uploads nothing for unchanged files. Documents of other owners, of ``upload`` and of people are
never updated or deleted: a file whose name is taken by one is reported as a conflict.

Deletions are guarded: only with ``delete=True``, only documents this owner wrote whose file is
gone (files left out by ``include``/``exclude``, symlinks or size are out of scope), and a run
that would delete all of them, or more than ``max_delete`` (default 20 %), is refused with
`SyncRefused` unless ``force=True``. ``dry_run=True`` returns the plan and writes nothing.

A stop request (``stop``, e.g. Ctrl-C) starts no new upload, lets the ones in flight finish and
be marked, and returns. The local ledger is not sync's memory; it only lets a re-run on the same
machine adopt the documents whose marks a crash kept from being written.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dify_ingest_tools._base.pages import PageBound
from dify_ingest_tools.folder_sync.plan import (
    ANY_DOCUMENT,
    Plan,
    Remote,
    SyncItem,
    SyncRefused,
    check_deletions,
    plan,
)
from dify_ingest_tools.folder_sync.report import SyncReport
from dify_ingest_tools.folder_sync.run import InFlight, SyncRun
from dify_ingest_tools.folder_sync.scan import (
    ChangedDuringRead,
    FileVanished,
    Snapshot,
    digest,
    scan,
)
from dify_ingest_tools.models.documents import DifyDocument
from dify_ingest_tools.models.ownership import Mark

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient

_LIST_PAGE = 100
#: Pages a listing follows at most when Dify's ``total`` cannot be trusted (a million documents).
MAX_PAGES = 10_000


def scan_folder(
    directory: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> dict[str, Path]:
    """The files a sync would upload: document name -> path (symlinks not followed).

    Raises:
        ValueError: ``directory`` is not a folder, or two files would share a document name.
    """
    return scan(directory, include=include, exclude=exclude, max_file_size=None).files


def _hash_all(files: dict[str, Path], sources: dict[str, str]) -> tuple[dict[str, Any], list[Any]]:
    """Hash every file (in a worker thread): the readable ones, and the ones that were not."""
    hashed: dict[str, tuple[Path, str, str, Snapshot]] = {}
    problems: list[tuple[str, str, str]] = []
    for name, path in files.items():
        try:
            value, seen = digest(path)
        except FileVanished:
            problems.append((name, "vanished", "the file vanished while the run read the folder"))
        except ChangedDuringRead:
            problems.append((name, "changed", "the file changed while it was read"))
        except OSError as error:
            problems.append((name, "failed", f"cannot read the file: {error.strerror or error}"))
        else:
            hashed[name] = (path, sources[name], value, seen)
    return hashed, problems


async def list_all(client: AsyncDifyKnowledgeClient, dataset_id: str) -> list[DifyDocument]:
    """Every document of the knowledge base (Dify's ``total`` bounds the pages, see `PageBound`)."""
    documents: list[DifyDocument] = []
    bound = PageBound(MAX_PAGES)
    page = 1
    while True:
        listing = await client.list_documents(dataset_id, page=page, limit=_LIST_PAGE)
        documents.extend(bound.new_items(listing.data))
        if not bound.more(listing):
            return documents
        page += 1


def _remote(document: DifyDocument) -> Remote:
    status = document.indexing_status
    return Remote(
        id=document.id,
        name=document.name,
        mark=Mark.of(document),
        indexing_status=None if status is None else str(getattr(status, "value", status)),
        error=document.error,
    )


async def _ledger_uploads(
    client: AsyncDifyKnowledgeClient, dataset_id: str, report: SyncReport
) -> dict[str, tuple[str, str | None]]:
    """name -> (document id, hash) of the uploads this machine's ledger saw (for adoption)."""
    recorder = client._ledger
    if recorder is None:
        return {}
    try:
        latest = await recorder.ledger.latest(recorder.scope, dataset_id)
    except Exception as error:
        report.warnings.append(
            f"the pending ledger could not be read ({type(error).__name__}: {str(error)[:200]}); "
            "documents whose marks a crash kept from being written are reported as conflicts"
        )
        return {}
    return {name: (entry.document_id, entry.content_hash) for name, entry in latest.items()}


def _adoptable(
    recorded: dict[str, tuple[str, str | None]], in_flight: set[str]
) -> dict[str, tuple[str, str | None]]:
    ours: dict[str, tuple[str, str | None]] = {name: (ANY_DOCUMENT, None) for name in in_flight}
    ours.update(recorded)
    return ours


async def sync_folder(
    client: AsyncDifyKnowledgeClient,
    directory: str | os.PathLike[str],
    dataset_id: str,
    *,
    owner: str | None = None,
    delete: bool = False,
    max_delete: int | None = None,
    force: bool = False,
    dry_run: bool = False,
    adopt: bool = False,
    retry_failed: bool = False,
    follow_symlinks: bool = False,
    max_file_size: int | None = None,
    concurrency: int = 4,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    wait: bool = True,
    timeout: float = 3600.0,
    stall_timeout: float | None = None,
    stop: asyncio.Event | None = None,
    on_item: Callable[[SyncItem], None] | None = None,
    on_plan: Callable[[list[SyncItem]], None] | None = None,
    **upload_options: Any,
) -> SyncReport:
    """Make a knowledge base match a folder, touching only the documents this sync owns.

    Args:
        client: The client (its ledger, if any, is only read to adopt after a crash).
        directory: The folder.
        dataset_id: The knowledge base.
        owner: The owner tag written on every document (default: the folder's name).
        delete: Delete owned documents whose file was removed (else they are kept).
        max_delete: Most owned documents one run may delete (default: 20 %, at least 1).
        force: Go ahead with a deletion the guard would refuse.
        dry_run: Plan only: list the knowledge base and hash the folder, write nothing.
        adopt: Claim documents of a file's name that carry no owner tag (e.g. synced by an
            older version): they are updated and marked as this owner's.
        retry_failed: Upload unchanged files again whose document failed to index.
        follow_symlinks: Follow symlinks that stay inside the folder (others never).
        max_file_size: Bytes; larger files are left out before any request (default: the
            client's ``max_file_size``, Dify's default upload limit of 15 MiB).
        concurrency: Uploads in flight at once (all still held to the client's budget).
        include: Glob patterns a document name must match (default: all files).
        exclude: Glob patterns of document names to leave out. Both also bound what
            ``delete`` may touch: a document outside them is out of scope.
        wait: Wait for indexing, so the report says what is ready and what failed.
        timeout: Seconds for the wait.
        stall_timeout: A document whose indexing shows no change this long has stalled: a
            file this run uploaded is sent once more by name (Dify re-queues it under a new
            batch, see ``on_stall="resubmit"``), others are reported not ready. None: no
            stall detection, only ``timeout``.
        stop: When set, no new upload starts; running ones finish and are marked.
        on_item: Called whenever a file reaches its outcome (for a progress bar).
        on_plan: Called once with every item before any write.
        **upload_options: Passed to ``create_document_by_file`` (``indexing_technique``, ...).

    Raises:
        ValueError: The folder does not exist, two files share a name, or no owner tag.
        SyncRefused: The run would delete too much (nothing was written).
        DifyAPIError: An error no file can avoid (401, unknown dataset, API disabled).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if max_delete is not None and max_delete < 0:
        raise ValueError("max_delete must be >= 0")
    if owner is not None and not owner.strip():
        raise ValueError("the owner tag is empty: pass owner= (--owner NAME)")
    if max_file_size is None:
        max_file_size = client.max_file_size
    found = await asyncio.to_thread(
        scan,
        directory,
        include=include,
        exclude=exclude,
        follow_symlinks=follow_symlinks,
        max_file_size=max_file_size,
    )
    tag = owner if owner is not None else found.name
    if not tag:
        raise ValueError(f"{directory} has no name to tag its documents with: pass --owner NAME")
    hashed, problems = await asyncio.to_thread(_hash_all, found.files, found.sources)
    report = SyncReport(dataset_id=dataset_id, owner=tag, dry_run=dry_run)
    remote = [_remote(document) for document in await list_all(client, dataset_id)]
    in_flight = InFlight(client, dataset_id, tag)

    def decide(ours: dict[str, tuple[str, str | None]]) -> Plan:
        return plan(
            {name: (path, source, value) for name, (path, source, value, _) in hashed.items()},
            found.left_out,
            remote,
            owner=tag,
            include=include,
            exclude=exclude,
            delete=delete,
            retry_failed=retry_failed,
            adopt=adopt,
            ours=ours,
        )

    decided = decide({})
    unmarked = {r.name for r in remote if r.mark.owner is None}
    if any(i.action == "conflict" and i.name in unmarked for i in decided.items):
        # Only now is this machine's memory worth asking: was it us, killed before marking?
        decided = decide(
            _adoptable(
                await _ledger_uploads(client, dataset_id, report),
                await asyncio.to_thread(in_flight.names),
            )
        )
    items = decided.items
    for name, outcome, reason in problems:
        item = SyncItem(name=name, action="leave", source=found.sources.get(name))
        item.outcome, item.error = outcome, reason
        items.append(item)
    report.items = items
    report.refused = check_deletions(
        items, decided.owned, owner=tag, max_delete=max_delete, force=force
    )
    if on_plan is not None:
        on_plan(items)
    if report.refused and not dry_run:
        raise SyncRefused(report.refused)
    if dry_run:
        return report
    await SyncRun(client, dataset_id, report, tag, on_item, in_flight, stall_timeout).run(
        concurrency=concurrency,
        wait=wait,
        timeout=timeout,
        stop=stop,
        snapshots={name: seen for name, (_, _, _, seen) in hashed.items()},
        upload_options=upload_options,
    )
    return report
