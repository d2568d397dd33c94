"""`DocumentWaitsAPI`: wait for some documents of a batch (or of no known batch).

A mixin of `AsyncDifyKnowledgeClient`: each document is watched through its batch's poll
loop (`ScopedSource`), or through its detail when no batch is known (`DetailSource`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from typing_extensions import Unpack

from dify_ingest_tools._base.inputs import check_batch, check_dataset_id, check_document_id
from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.models.created import BatchRef, CreatedDocument
from dify_ingest_tools.models.documents import DifyDocument
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness import waiting
from dify_ingest_tools.readiness.document_waits import (
    UNKNOWN_BATCH,
    DetailSource,
    ScopedSource,
    merge_statuses,
)
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.progress import wait_callbacks
from dify_ingest_tools.readiness.wait_options import WaitKwargs, WaitOptions
from dify_ingest_tools.readiness.waiting import gather_first_error

if TYPE_CHECKING:
    pass


class DocumentWaitsAPI(ClientHost):
    """Document-scoped waits: only the named documents' statuses decide."""

    # -- bookkeeping -------------------------------------------------------------------------

    def document_batch(self, dataset_id: str, document_id: str) -> str | None:
        """The batch this client last saw the document created or updated in, if any."""
        return self._pending.batch_of(dataset_id, document_id)

    # -- document-scoped waits ---------------------------------------------------------------

    async def wait_for_documents(
        self,
        dataset_id: str,
        document_ids: str | CreatedDocument | Iterable[str | CreatedDocument],
        *,
        batch: str | None = None,
        **options: Unpack[WaitKwargs],
    ) -> BatchIndexingStatus:
        """Wait until these documents are ``completed``, whatever else their batch holds.

        Each document is watched through the poll loop of its batch (shared with every
        other wait on that batch), and only its own status decides. The batch is the one
        this client created or updated the document in (or the ``CreatedDocument`` /
        `UpdatedDocument` passed, or ``batch=``); a document this client has never seen is
        watched through its detail instead (one request per document per poll).

        Args:
            dataset_id: The knowledge base UUID.
            document_ids: Document ids, or the results of creates and updates.
            batch: The batch holding all of them, when known.
            **options: The options of `wait_for_indexing` (``timeout``, ``poll_interval``,
                ``stall_timeout``, ``on_event``, ``progress``, ...).

        Returns:
            The status of just these documents, in the order given. ``batch`` is their
            batch (comma-separated when they span several).

        Raises:
            IndexingFailedError: One of them ended in ``error``.
            IndexingTimeoutError: The deadline passed.
            IndexingStalledError: Nothing changed for ``stall_timeout`` seconds.
            DifyNotFoundError: A document was deleted (or moved to a new batch by a
                re-upload under its name).
        """
        check_dataset_id(dataset_id)
        if batch is not None:
            check_batch(batch)
        single = isinstance(document_ids, (str, CreatedDocument))
        items: Iterable[str | CreatedDocument] = [document_ids] if single else document_ids  # type: ignore[list-item,assignment]
        ids: list[str] = []
        for item in items:
            if isinstance(item, CreatedDocument):
                self._pending.locate(dataset_id, item.document_id, item.batch)
                item = item.document_id
            check_document_id(item)
            if item.lower() not in {i.lower() for i in ids}:
                ids.append(item)
        if not ids:
            raise ValueError("document_ids is empty")
        groups: dict[str | None, list[str]] = {}
        for document_id in ids:
            known = batch or self.document_batch(dataset_id, document_id)
            groups.setdefault(known, []).append(document_id)
        wait, on_event, progress = WaitOptions.split(options)
        with wait_callbacks(on_event, progress) as callbacks:
            results = await gather_first_error(
                [
                    self._wait_group(dataset_id, group_batch, members, wait, callbacks)
                    for group_batch, members in groups.items()
                ]
            )
        return merge_statuses(dataset_id, results, ids)

    async def _wait_group(
        self,
        dataset_id: str,
        batch: str | None,
        document_ids: list[str],
        wait: WaitOptions,
        callbacks: list[EventCallback],
    ) -> BatchIndexingStatus:
        source: ScopedSource | DetailSource
        if batch is None:

            async def fetch(document_id: str, deadline: float) -> DifyDocument:
                url = self._url("datasets", dataset_id, "documents", document_id)
                payload = await self._transport.json(
                    "GET", url, idempotent=True, deadline=deadline, retry=False
                )
                return self._parse(DifyDocument, payload, url, "GET")

            self._lifecycle.check()  # no detail request from a closed client
            source = DetailSource(self.monitor, fetch, document_ids)
            batch = UNKNOWN_BATCH
        else:
            source = ScopedSource(self.monitor, document_ids)
        ref = BatchRef(dataset_id=dataset_id, batch=batch)
        # The sources offer `subscribe` exactly as the monitor does; `observe` needs nothing else.
        monitor = cast(IndexingMonitor, source)
        last: BatchIndexingStatus | None = None
        stream = waiting.observe(monitor, ref, wait, callbacks)
        async with contextlib.aclosing(stream):
            async for status in stream:
                last = status
        assert last is not None  # observe yields before it returns
        return last
