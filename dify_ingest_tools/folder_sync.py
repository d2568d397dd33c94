"""Incremental folder sync on the pending ledger (what ``dify-ingest sync`` runs).

Each file becomes one document named by its path relative to the folder, its folders joined by
``__`` (Dify refuses ``/`` in file names): ``guides/setup.md`` is ``guides__setup.md``.
The ledger says what an earlier run uploaded and with which content hash, so a run uploads new
files, updates changed ones in place (Dify's create is an upsert by name: same document, new
batch), skips unchanged ones, and with ``delete=True`` deletes the documents of removed files.

Crash safety comes from the ledger: an upload is recorded the moment Dify answers, so a
re-run skips it (waiting for it if it was still indexing). A stop request (`stop`, e.g.
Ctrl-C) starts no new upload, lets the ones in flight finish and be recorded, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import DifyAPIError, DifyNotFoundError, IndexingError
from .events import IndexingEvent
from .ledger import LedgerEntry

if TYPE_CHECKING:
    from .client import AsyncDifyKnowledgeClient

__all__ = [
    "NAME_SEPARATOR",
    "SyncAction",
    "SyncItem",
    "SyncReport",
    "plan_sync",
    "scan_folder",
    "sync_folder",
]

SyncAction = Literal["upload", "update", "skip", "delete", "keep"]
_CHUNK = 1 << 20
#: Joins the folders of a file's relative path in its document name.
NAME_SEPARATOR = "__"
# Errors about the request itself: the file fails, the run goes on. Anything else (401, a
# 403 other than the rate limit, an unknown dataset) would fail every file: stop.
_PER_FILE_STATUSES = frozenset({400, 413, 415, 422})


@dataclass
class SyncItem:
    """One file (or removed file) of a sync.

    Attributes:
        name: The document name: the path relative to the folder, parts joined by ``__``.
        action: ``upload`` (new), ``update`` (changed), ``skip`` (unchanged), ``delete``
            (removed, and ``delete=True``) or ``keep`` (removed, left in Dify).
        path: The local file (None for a removed one).
        content_hash: SHA-256 of the file.
        document_id: Dify's document id once known.
        outcome: ``done`` (indexed, or deleted), ``failed``, ``not_ready`` (still indexing
            at the deadline), ``not_started`` (stopped first), or ``None`` while running.
        error: Dify's error text for a failure.
        known_state: The ledger's state of the file's last upload before this run.
    """

    name: str
    action: SyncAction
    path: Path | None = None
    content_hash: str | None = None
    document_id: str | None = None
    batch: str | None = None
    outcome: str | None = None
    error: str | None = None
    known_state: str | None = None


@dataclass
class SyncReport:
    """What a sync did. ``items`` holds every file; the properties count them."""

    dataset_id: str
    items: list[SyncItem] = field(default_factory=list)
    interrupted: bool = False

    def _names(self, action: str, outcome: str | None = "done") -> list[str]:
        return [i.name for i in self.items if i.action == action and i.outcome == outcome]

    @property
    def uploaded(self) -> list[str]:
        return self._names("upload")

    @property
    def updated(self) -> list[str]:
        return self._names("update")

    @property
    def skipped(self) -> list[str]:
        return [i.name for i in self.items if i.action == "skip" and i.outcome == "done"]

    @property
    def deleted(self) -> list[str]:
        return self._names("delete")

    @property
    def kept(self) -> list[str]:
        """Removed locally but left in Dify (no ``delete=True``)."""
        return [i.name for i in self.items if i.action == "keep"]

    @property
    def failed(self) -> list[SyncItem]:
        return [i for i in self.items if i.outcome == "failed"]

    @property
    def not_ready(self) -> list[str]:
        return [i.name for i in self.items if i.outcome == "not_ready"]

    @property
    def not_started(self) -> list[str]:
        return [i.name for i in self.items if i.outcome == "not_started"]

    @property
    def ok(self) -> bool:
        """Everything done: nothing failed, nothing left indexing or unstarted."""
        return not (self.failed or self.not_ready or self.not_started or self.interrupted)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``--json``)."""
        return {
            "dataset_id": self.dataset_id,
            "uploaded": self.uploaded,
            "updated": self.updated,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "kept": self.kept,
            "failed": [{"name": i.name, "error": i.error} for i in self.failed],
            "not_ready": self.not_ready,
            "not_started": self.not_started,
            "interrupted": self.interrupted,
        }


def scan_folder(
    directory: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> dict[str, Path]:
    """The files to sync: document name -> path, hidden files and dirs skipped.

    The name is the path relative to ``directory`` with its parts joined by `NAME_SEPARATOR`.

    Args:
        include: Glob patterns on the name; a file must match one (default: every file).
        exclude: Glob patterns on the name; matching files are left out.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for filename in sorted(files):
            if filename.startswith("."):
                continue
            path = Path(folder) / filename
            name = NAME_SEPARATOR.join(path.relative_to(root).parts)
            if include and not any(fnmatch.fnmatch(name, pattern) for pattern in include):
                continue
            if any(fnmatch.fnmatch(name, pattern) for pattern in exclude):
                continue
            if not path.is_file():
                continue
            if name in found:
                raise ValueError(
                    f"{found[name]} and {path} would both be the document {name!r}; rename one "
                    "(folders are joined with __ in document names)"
                )
            found[name] = path
    return found


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def plan_sync(
    files: dict[str, tuple[Path, str]],
    known: dict[str, LedgerEntry],
    *,
    delete: bool,
    retry_failed: bool,
) -> list[SyncItem]:
    """Decide per file: upload, update, skip, delete or keep (pure; no I/O).

    Args:
        files: name -> (path, content hash) of the folder.
        known: The ledger's newest entry per name.
        delete: Delete the documents of removed files.
        retry_failed: Upload unchanged files again whose last upload failed to index.
    """
    items = []
    for name, (path, digest) in files.items():
        entry = known.get(name)
        if entry is None or entry.state in ("missing", "deleted"):
            action: SyncAction = "upload"
        elif entry.content_hash != digest or (entry.state == "error" and retry_failed):
            action = "update"
        else:
            action = "skip"
        item = SyncItem(name=name, action=action, path=path, content_hash=digest)
        item.known_state = entry.state if entry is not None else None
        if entry is not None and action != "upload":
            item.document_id, item.batch = entry.document_id, entry.batch
        if action == "skip" and entry is not None and entry.state == "error":
            item.outcome, item.error = "failed", entry.error
        items.append(item)
    for name, entry in known.items():
        if name in files or entry.state in ("missing", "deleted"):
            continue
        items.append(
            SyncItem(
                name=name,
                action="delete" if delete else "keep",
                document_id=entry.document_id,
                batch=entry.batch,
            )
        )
    return items


async def sync_folder(
    client: AsyncDifyKnowledgeClient,
    directory: str | os.PathLike[str],
    dataset_id: str,
    *,
    delete: bool = False,
    retry_failed: bool = False,
    concurrency: int = 4,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    wait: bool = True,
    timeout: float = 3600.0,
    stop: asyncio.Event | None = None,
    on_item: Callable[[SyncItem], None] | None = None,
    on_plan: Callable[[list[SyncItem]], None] | None = None,
    **upload_options: Any,
) -> SyncReport:
    """Make a dataset match a folder, incrementally, using the client's ledger.

    Args:
        client: A client with a ledger (the default one is fine).
        directory: The folder.
        dataset_id: The knowledge base.
        delete: Delete documents whose file was removed (else they are reported as kept).
        retry_failed: Upload unchanged files again whose last upload failed to index.
        concurrency: Uploads in flight at once (all still held to the client's budget).
        include: Glob patterns a file name must match (default: all files).
        exclude: Glob patterns of file names to leave out.
        wait: Wait for indexing, so the report says what is ready and what failed.
        timeout: Seconds for the wait.
        stop: When set, no new upload starts; running ones finish and are recorded.
        on_item: Called whenever a file reaches its outcome (for a progress bar).
        on_plan: Called once with every item before any upload (e.g. to size the bar).
        **upload_options: Passed to ``create_document_by_file`` (``indexing_technique``, ...).

    Raises:
        ValueError: The folder does not exist, or the client has no ledger.
        DifyAPIError: An error no file can avoid (401, unknown dataset, API disabled).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    recorder = client._ledger
    if recorder is None:
        raise ValueError("sync needs the pending ledger; this client has ledger=False")
    found = await asyncio.to_thread(scan_folder, directory, include=include, exclude=exclude)
    files = {name: (path, await asyncio.to_thread(_digest, path)) for name, path in found.items()}
    known = await recorder.ledger.latest(recorder.scope, dataset_id)
    items = plan_sync(files, known, delete=delete, retry_failed=retry_failed)
    report = SyncReport(dataset_id=dataset_id, items=items)
    if on_plan is not None:
        on_plan(items)

    def finished(item: SyncItem, outcome: str, error: str | None = None) -> None:
        item.outcome, item.error = outcome, error
        if on_item is not None:
            on_item(item)

    for item in items:
        if item.action == "keep" or (item.action == "skip" and item.outcome == "failed"):
            finished(item, item.outcome or "done", item.error)

    semaphore = asyncio.Semaphore(concurrency)

    async def upload(item: SyncItem) -> None:
        async with semaphore:
            if stop is not None and stop.is_set():
                finished(item, "not_started")
                return
            assert item.path is not None
            try:
                # Shielded: once sent, the answer is awaited and recorded even on a stop.
                created = await asyncio.shield(
                    client.create_document_by_file(
                        dataset_id, item.path, filename=item.name, **upload_options
                    )
                )
            except DifyAPIError as error:
                if error.status not in _PER_FILE_STATUSES:
                    raise
                finished(item, "failed", error.message or str(error))
                return
            except ValueError as error:  # a name Dify would refuse: refused before sending
                finished(item, "failed", str(error))
                return
            item.document_id, item.batch = created.document_id, created.batch

    uploads = [item for item in items if item.action in ("upload", "update")]
    await asyncio.gather(*(upload(item) for item in uploads))
    report.interrupted = stop is not None and stop.is_set()

    waiting = [i for i in items if i.batch and i.outcome is None and i.action != "delete"]
    if wait and waiting and not report.interrupted:
        await _wait(client, dataset_id, waiting, timeout, finished)
    else:
        for item in waiting:
            # Unchanged and indexed: done. The rest nobody saw finish yet (a re-run or
            # `dify-ingest wait --pending` picks them up from the ledger).
            finished(item, "done" if item.known_state == "completed" else "not_ready")
    for item in items:
        if item.action == "delete":
            if report.interrupted:
                finished(item, "not_started")
            else:
                await _delete(client, dataset_id, item, finished)
    return report


async def _wait(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    items: list[SyncItem],
    timeout: float,
    finished: Callable[[SyncItem, str, str | None], None],
) -> None:
    by_batch = {item.batch: item for item in items}

    def observe(event: IndexingEvent) -> None:
        item = by_batch.get(event.batch)
        if item is None or item.outcome is not None:
            return
        if event.kind == "batch_completed":
            finished(item, "done", None)
        elif event.kind == "batch_failed" and event.status is not None:
            errors = [doc.error for doc in event.status.failed_documents if doc.error]
            finished(item, "failed", errors[0] if errors else "indexing failed")

    with contextlib.suppress(IndexingError):  # timeouts and stalls: reported per file below
        await client.wait_for_pending(
            dataset_id, durable=True, timeout=timeout, raise_on_error=False, on_event=observe
        )
    recorder = client._ledger
    assert recorder is not None
    latest = await recorder.ledger.latest(recorder.scope, dataset_id)
    for item in items:
        if item.outcome is not None:
            continue
        entry = latest.get(item.name)
        if entry is None or entry.state == "completed":
            finished(item, "done", None)
        elif entry.state == "error":
            finished(item, "failed", entry.error)
        elif entry.state == "missing":
            finished(item, "failed", entry.error or "Documents not found.")
        else:
            finished(item, "not_ready", None)


async def _delete(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    item: SyncItem,
    finished: Callable[[SyncItem, str, str | None], None],
) -> None:
    recorder = client._ledger
    assert recorder is not None
    assert item.document_id is not None
    try:
        await client.delete_document(dataset_id, item.document_id)
    except DifyNotFoundError:
        pass  # already gone: the goal is reached
    except DifyAPIError as error:
        if error.status not in _PER_FILE_STATUSES:
            raise
        finished(item, "failed", error.message or str(error))
        return
    await recorder.ledger.forget(recorder.scope, dataset_id, item.document_id)
    finished(item, "done", None)
