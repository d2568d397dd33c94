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
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dify_ingest_tools._base.pages import PageBound
from dify_ingest_tools.errors import DifyAPIError, DifyNotFoundError, IndexingError
from dify_ingest_tools.folder_sync.plan import (
    ANY_DOCUMENT,
    Plan,
    Remote,
    SyncAction,
    SyncItem,
    SyncRefused,
    check_deletions,
    plan,
)
from dify_ingest_tools.folder_sync.scan import (
    DEFAULT_MAX_FILE_SIZE,
    NAME_SEPARATOR,
    ChangedDuringRead,
    FileVanished,
    Snapshot,
    digest,
    scan,
    snapshot,
)
from dify_ingest_tools.models.ownership import MARK_FIELDS, Mark
from dify_ingest_tools.models.status import NOTHING_TO_FIND, DifyDocument

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "NAME_SEPARATOR",
    "SyncAction",
    "SyncItem",
    "SyncRefused",
    "SyncReport",
    "scan_folder",
    "sync_folder",
]

logger = logging.getLogger("dify_ingest_tools")

# Errors about the request itself: the file fails, the run goes on. Anything else (401, a
# 403 other than the rate limit, an unknown dataset) would fail every file: stop.
_PER_FILE_STATUSES = frozenset({400, 413, 415, 422})
_LIST_PAGE = 100
#: Pages a listing follows at most when Dify's ``total`` cannot be trusted (a million documents).
MAX_PAGES = 10_000
#: Why a file is reported ``empty``.
_EMPTY_REASON = f"{NOTHING_TO_FIND} (empty text?)"
#: Marks written per metadata request (Dify takes a list of documents in one call).
MARKS_PER_REQUEST = 500


@dataclass
class SyncReport:
    """What a sync did (or, for a dry run, would do). ``items`` holds every file."""

    dataset_id: str
    owner: str = ""
    items: list[SyncItem] = field(default_factory=list)
    interrupted: bool = False
    dry_run: bool = False
    #: Trouble that did not stop the run (the ledger, the metadata writes), one line each.
    warnings: list[str] = field(default_factory=list)
    #: Why the guard refused the run (then nothing was written).
    refused: str | None = None
    #: Documents uploaded whose owner marks could not be written.
    marks_missing: int = 0

    def _names(self, action: str, outcome: str | None = "done") -> list[str]:
        return [i.name for i in self.items if i.action == action and i.outcome == outcome]

    def _with(self, outcome: str) -> list[SyncItem]:
        return [i for i in self.items if i.outcome == outcome]

    @property
    def uploaded(self) -> list[str]:
        return self._names("upload")

    @property
    def updated(self) -> list[str]:
        return self._names("update")

    @property
    def skipped(self) -> list[str]:
        """Unchanged files whose document Dify reports ``completed``."""
        return self._names("skip")

    @property
    def deleted(self) -> list[str]:
        return self._names("delete")

    @property
    def kept(self) -> list[str]:
        """Owned documents whose file is gone or left out, kept in Dify."""
        return [i.name for i in self.items if i.action == "keep"]

    @property
    def failed(self) -> list[SyncItem]:
        return self._with("failed")

    @property
    def not_ready(self) -> list[str]:
        return [i.name for i in self._with("not_ready")]

    @property
    def empty(self) -> list[SyncItem]:
        """Files Dify indexed with no chunks (empty or whitespace-only text, nothing its
        parser could read): ``completed`` with 0 segments, so nothing will be found."""
        return self._with("empty")

    @property
    def not_started(self) -> list[str]:
        return [i.name for i in self._with("not_started")]

    @property
    def conflicts(self) -> list[SyncItem]:
        """Files whose name is held by a document this sync does not own (left untouched)."""
        return self._with("conflict")

    @property
    def left_out(self) -> list[SyncItem]:
        """Files not synced, with the reason (symlinks, too large, not regular files)."""
        return self._with("skipped")

    @property
    def vanished(self) -> list[str]:
        return [i.name for i in self._with("vanished")]

    @property
    def changed(self) -> list[str]:
        """Files that changed while they were read or sent (run again to sync them)."""
        return [i.name for i in self._with("changed")]

    @property
    def ok(self) -> bool:
        """Everything in scope done: Dify said ``completed`` for every file synced."""
        unfinished = (
            self.failed
            or self.empty
            or self.not_ready
            or self.not_started
            or self.conflicts
            or self.vanished
            or self.changed
        )
        return not (unfinished or self.interrupted or self.refused or self.marks_missing)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``--json``)."""

        def reasons(items: list[SyncItem]) -> list[dict[str, Any]]:
            return [{"name": i.name, "reason": i.error} for i in items]

        summary: dict[str, Any] = {
            "dataset_id": self.dataset_id,
            "owner": self.owner,
            "uploaded": self.uploaded,
            "updated": self.updated,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "kept": self.kept,
            "failed": [{"name": i.name, "error": i.error} for i in self.failed],
            "empty": reasons(self.empty),
            "not_ready": self.not_ready,
            "not_started": self.not_started,
            "conflicts": reasons(self.conflicts),
            "left_out": reasons(self.left_out),
            "vanished": self.vanished,
            "changed_during_read": self.changed,
            "interrupted": self.interrupted,
            "warnings": self.warnings,
        }
        if self.dry_run:
            summary["dry_run"] = True
            summary["plan"] = [
                {"action": i.action, "name": i.name, "source": i.source, "reason": i.error}
                for i in self.items
            ]
        if self.refused:
            summary["refused"] = self.refused
        return summary


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


class _InFlight:
    """The names whose create is in flight, beside this machine's SQLite ledger.

    A create answers before its marks can be written; a run killed in between leaves an
    unmarked document under the file's name. The name was written here before the create was
    sent, so the next run on this machine knows that document is its own. Cleared when a run
    has marked everything it created.
    """

    def __init__(self, client: AsyncDifyKnowledgeClient, dataset_id: str, owner: str) -> None:
        recorder = client._ledger
        ledger_path = getattr(recorder.ledger, "path", None) if recorder is not None else None
        self.path: Path | None = None
        if isinstance(ledger_path, Path):
            key = hashlib.sha256(f"{dataset_id.lower()}\0{owner}".encode()).hexdigest()[:16]
            self.path = ledger_path.with_name(f"{ledger_path.name}.sync-{key}.inflight")

    def names(self) -> set[str]:
        if self.path is None:
            return set()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError):
            return set()
        names = set()
        for line in lines:
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, str):
                    names.add(value)
        return names

    def add(self, name: str) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(name) + "\n")
        except OSError as error:
            logger.warning("could not note an upload in flight in %s: %s", self.path, error)

    def clear(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()


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
    in_flight = _InFlight(client, dataset_id, tag)

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
    await _Run(client, dataset_id, report, tag, on_item, in_flight, stall_timeout).run(
        concurrency=concurrency,
        wait=wait,
        timeout=timeout,
        stop=stop,
        snapshots={name: seen for name, (_, _, _, seen) in hashed.items()},
        upload_options=upload_options,
    )
    return report


class _Run:
    """One sync's writes: uploads, their marks, the waits and the deletions."""

    def __init__(
        self,
        client: AsyncDifyKnowledgeClient,
        dataset_id: str,
        report: SyncReport,
        owner: str,
        on_item: Callable[[SyncItem], None] | None,
        in_flight: _InFlight,
        stall_timeout: float | None = None,
    ) -> None:
        self.stall_timeout = stall_timeout
        self.client = client
        self.in_flight = in_flight
        self.dataset_id = dataset_id
        self.report = report
        self.owner = owner
        self.on_item = on_item
        self.marks: dict[str, Mark] = {}
        self._fields: dict[str, Any] | None = None
        self._flush_lock = asyncio.Lock()

    def finished(self, item: SyncItem, outcome: str, error: str | None = None) -> None:
        item.outcome, item.error = outcome, error
        if self.on_item is not None:
            self.on_item(item)

    async def run(
        self,
        *,
        concurrency: int,
        wait: bool,
        timeout: float,
        stop: asyncio.Event | None,
        snapshots: dict[str, Snapshot],
        upload_options: dict[str, Any],
    ) -> None:
        items = self.report.items
        for item in items:
            if item.outcome is not None:  # read problems: reported as they are
                if self.on_item is not None:
                    self.on_item(item)
            elif item.action == "keep":
                self.finished(item, "done", item.error)
            elif item.action == "conflict":
                self.finished(item, "conflict", item.error)
            elif item.action == "leave":
                self.finished(item, "skipped", item.error)
            elif item.action == "skip" and item.adopt and item.document_id:
                self._mark(item)
        semaphore = asyncio.Semaphore(concurrency)

        async def upload(item: SyncItem) -> None:
            async with semaphore:
                if stop is not None and stop.is_set():
                    self.finished(item, "not_started")
                    return
                await self._upload(item, snapshots[item.name], upload_options)

        uploads = [i for i in items if i.action in ("upload", "update") and i.outcome is None]
        await asyncio.gather(*(upload(item) for item in uploads))
        await self._flush(force=True)
        if not self.report.marks_missing:
            await asyncio.to_thread(self.in_flight.clear)
        self.report.interrupted = stop is not None and stop.is_set()
        await self._wait_all(wait and not self.report.interrupted, timeout)
        for item in items:
            if item.action == "delete":
                if self.report.interrupted:
                    self.finished(item, "not_started")
                else:
                    await self._delete(item)

    async def _upload(self, item: SyncItem, seen: Snapshot, options: dict[str, Any]) -> None:
        assert item.path is not None
        if item.action == "upload" or item.adopt:
            await asyncio.to_thread(self.in_flight.add, item.name)
        try:
            # Shielded: once sent, the answer is awaited and marked even on a stop.
            created = await asyncio.shield(
                self.client.create_document_by_file(
                    self.dataset_id, item.path, filename=item.name, **options
                )
            )
        except DifyAPIError as error:
            if error.status not in _PER_FILE_STATUSES:
                raise
            self.finished(item, "failed", error.message or str(error))
            return
        except FileNotFoundError:
            self.finished(item, "vanished", "the file vanished before it was uploaded")
            return
        except ValueError as error:  # a name Dify would refuse: refused before sending
            self.finished(item, "failed", str(error))
            return
        except OSError as error:
            self.finished(item, "failed", f"cannot read the file: {error.strerror or error}")
            return
        item.document_id, item.batch, item.created = created.document_id, created.batch, created
        try:
            changed = await asyncio.to_thread(snapshot, item.path) != seen
        except FileVanished:
            changed = True
        if changed:
            # What Dify got is neither the hashed file nor necessarily the new one: mark it
            # as ours without a hash, so the next run uploads it again.
            self.marks[created.document_id] = Mark(self.owner, item.source, "")
            self.finished(item, "changed", "the file changed while it was uploaded")
        else:
            self._mark(item)
        await self._flush(force=False)

    def _mark(self, item: SyncItem) -> None:
        assert item.document_id is not None
        self.marks[item.document_id] = Mark(self.owner, item.source, item.content_hash)

    async def _flush(self, *, force: bool) -> None:
        """Write the pending marks, many documents per request."""
        async with self._flush_lock:
            if not self.marks or (not force and len(self.marks) < MARKS_PER_REQUEST):
                return
            pending, self.marks = self.marks, {}
            try:
                if self._fields is None:
                    self._fields = dict(
                        await self.client.ensure_metadata_fields(self.dataset_id, MARK_FIELDS)
                    )
                chunk = list(pending.items())
                for start in range(0, len(chunk), MARKS_PER_REQUEST):
                    part = dict(chunk[start : start + MARKS_PER_REQUEST])
                    await self.client.set_documents_metadata(
                        self.dataset_id,
                        {doc: dict(mark.values()) for doc, mark in part.items()},
                        partial_update=True,
                        create_fields=False,
                        fields=self._fields,
                    )
            except (DifyAPIError, ValueError) as error:
                self.report.marks_missing += len(pending)
                self.report.warnings.append(
                    f"the owner marks of {len(pending)} documents could not be written "
                    f"({type(error).__name__}: {str(error)[:200]}); a re-run on this machine "
                    "adopts them, elsewhere they show as conflicts"
                )

    async def _wait_all(self, wait: bool, timeout: float) -> None:
        waiting = [
            i
            for i in self.report.items
            if i.outcome is None and i.action in ("upload", "update", "skip") and i.document_id
        ]
        if not waiting:
            return
        if not wait:
            for item in waiting:
                if item.action == "skip" and item.known_state == "completed":
                    self.finished(item, "done")
                elif item.action == "skip" and item.known_state == "error":
                    self.finished(item, "failed", item.error)
                else:
                    self.finished(item, "not_ready", "not seen completed (no wait)")
            return
        await asyncio.gather(*(self._wait_one(item, timeout) for item in waiting))

    async def _wait_one(self, item: SyncItem, timeout: float) -> None:
        assert item.document_id is not None
        if item.action == "skip":
            if item.known_state == "completed":
                self.finished(item, "done")
                return
            if item.known_state == "error":
                # Unchanged and failed: reported again, not re-sent (--retry-failed does).
                self.finished(item, "failed", item.error)
                return
        try:
            if item.created is not None:
                # This run's upload: a stall is healed by sending the file once more.
                status = await self.client.wait_for_indexing(
                    self.dataset_id,
                    item.created.batch,
                    timeout=timeout,
                    raise_on_error=False,
                    stall_timeout=self.stall_timeout,
                    on_stall="resubmit" if self.stall_timeout is not None else "raise",
                    on_empty="accept",  # reported per file below, not raised
                )
                item.batch = status.batch
            else:
                status = await self.client.wait_for_documents(
                    self.dataset_id,
                    [item.document_id],
                    timeout=timeout,
                    raise_on_error=False,
                    stall_timeout=self.stall_timeout,
                    on_empty="accept",
                )
        except DifyNotFoundError as error:
            if error.resource in ("dataset", "route"):
                raise
            self.finished(item, "failed", "the document was deleted while the run waited")
            return
        except IndexingError as error:
            self.finished(item, "not_ready", str(error).splitlines()[0][:300])
            return
        if status.is_empty:
            self.finished(item, "empty", _EMPTY_REASON)
        elif status.is_completed:
            self.finished(item, "done")
        elif status.is_failed:
            errors = [doc.error for doc in status.failed_documents if doc.error]
            self.finished(item, "failed", errors[0] if errors else "indexing failed")
        else:
            self.finished(item, "not_ready", status.summary())

    async def _delete(self, item: SyncItem) -> None:
        assert item.document_id is not None
        try:
            await self.client.delete_document(self.dataset_id, item.document_id)
        except DifyNotFoundError as error:
            if error.resource in ("dataset", "route"):
                raise
        except DifyAPIError as error:
            if error.status not in _PER_FILE_STATUSES:
                raise
            self.finished(item, "failed", error.message or str(error))
            return
        recorder = self.client._ledger
        if recorder is not None:
            try:
                await recorder.ledger.forget(recorder.scope, self.dataset_id, item.document_id)
            except Exception as error:
                self.report.warnings.append(
                    f"the pending ledger could not be updated ({type(error).__name__})"
                )
        self.finished(item, "done")
