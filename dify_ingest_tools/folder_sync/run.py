"""Running a sync's plan: the uploads, their owner marks, the waits and the deletions.

`SyncRun` writes what `folder_sync.plan` decided; `InFlight` notes the names whose create is
in flight beside this machine's ledger, so a run killed before marking can adopt them later.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dify_ingest_tools.errors import DifyAPIError, DifyNotFoundError, IndexingError
from dify_ingest_tools.folder_sync.plan import SyncItem
from dify_ingest_tools.folder_sync.report import SyncReport
from dify_ingest_tools.folder_sync.scan import FileVanished, Snapshot, snapshot
from dify_ingest_tools.models.ownership import MARK_FIELDS, Mark
from dify_ingest_tools.models.status import NOTHING_TO_FIND

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient

logger = logging.getLogger("dify_ingest_tools")

# Errors about the request itself: the file fails, the run goes on. Anything else (401, a
# 403 other than the rate limit, an unknown dataset) would fail every file: stop.
_PER_FILE_STATUSES = frozenset({400, 413, 415, 422})
#: Why a file is reported ``empty``.
_EMPTY_REASON = f"{NOTHING_TO_FIND} (empty text?)"
#: Marks written per metadata request (Dify takes a list of documents in one call).
MARKS_PER_REQUEST = 500


class InFlight:
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


class SyncRun:
    """One sync's writes: uploads, their marks, the waits and the deletions."""

    def __init__(
        self,
        client: AsyncDifyKnowledgeClient,
        dataset_id: str,
        report: SyncReport,
        owner: str,
        on_item: Callable[[SyncItem], None] | None,
        in_flight: InFlight,
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
