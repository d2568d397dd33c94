"""`PendingAPI`: what this client (and the ledger) still has indexing, and the wait for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.client.resume import resume_pending
from dify_ingest_tools.models.created import BatchRef
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness import waiting

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient


class PendingAPI(ClientHost):
    """The batches still indexing: listed, and waited for after a restart too."""

    def pending_batches(self, dataset_id: str) -> list[BatchRef]:
        """Batches this client created in the dataset and has not yet seen finish.

        A batch is forgotten as soon as any status request of this client (a wait, a check)
        sees it terminal, or when its document is uploaded again under the same name.
        """
        return self._pending.batches(dataset_id)

    async def wait_for_pending(
        self,
        dataset_id: str | None = None,
        *,
        timeout: float = 600.0,
        raise_on_error: bool = False,
        durable: bool | None = None,
        **options: Any,
    ) -> list[BatchIndexingStatus]:
        """Wait for every upload and update that may still be indexing; return the statuses.

        What this client uploaded or updated and has not seen finish, and what the pending
        ledger holds as not done for this server and key — uploads of other processes and of
        earlier runs included — of one dataset, or of every one. So after a restart
        ``await client.wait_for_pending(dataset_id)`` (or without a dataset) picks up where the
        crashed run stopped. A create's batch is waited on; an updated document alone (its
        original batch can hold other documents), as `wait_for_documents` does. What is seen
        terminal is forgotten. Finished entries are marked in the ledger
        (``completed``, or ``error`` with Dify's text); a batch Dify no longer knows
        (``Documents not found.`` after the grace period: deleted, or replaced elsewhere) is
        marked ``missing`` and skipped rather than failing the others.

        Args:
            dataset_id: One knowledge base, or None for every one.
            timeout: Seconds for the whole wait.
            raise_on_error: Raise `IndexingFailedError` for a failed upload (default: return
                its status; the failure was already reported to whoever waited on it).
            durable: Include the ledger (default True). ``durable=False`` waits for this
                client's own uploads only (what the retrievers' readiness gate does).
            **options: Other `wait_for_batches` options.

        Returns:
            The created batches' statuses, then one status per batch holding updated
            documents, reduced to those documents.
        """
        use_ledger = True if durable is None else durable
        datasets = [dataset_id] if dataset_id is not None else self._pending.datasets()
        if not use_ledger or self._ledger is None:
            waits = [
                self._wait_for_own(d, True, timeout, raise_on_error, options) for d in datasets
            ]
            return [s for statuses in await waiting.gather_first_error(waits) for s in statuses]
        own = [ref for d in datasets for ref in self._pending.batches(d)]
        entries = await self._ledger.pending(dataset_id)
        resumed = resume_pending(
            cast("AsyncDifyKnowledgeClient", self),
            self._ledger,
            [*own, *(entry.ref for entry in entries)],
            timeout=timeout,
            raise_on_error=raise_on_error,
            **options,
        )
        updates = [self._wait_for_own(d, False, timeout, raise_on_error, options) for d in datasets]
        results = await waiting.gather_first_error([resumed, *updates])
        return [status for statuses in results for status in statuses]

    async def _wait_for_own(
        self,
        dataset_id: str,
        creates: bool,
        timeout: float,
        raise_on_error: bool,
        options: dict[str, Any],
    ) -> list[BatchIndexingStatus]:
        """This client's pending creates (if ``creates``) and updates of one dataset."""
        pending = self.pending_batches(dataset_id) if creates else []

        async def updated(ref: BatchRef, document_ids: list[str]) -> list[BatchIndexingStatus]:
            status = await self.wait_for_documents(
                dataset_id,
                document_ids,
                batch=ref.batch,
                timeout=timeout,
                raise_on_error=raise_on_error,
                **options,
            )
            return [status]

        waits = [updated(ref, ids) for ref, ids in self._pending.updates(dataset_id)]
        if pending:
            batches = self.wait_for_batches(
                pending, timeout=timeout, raise_on_error=raise_on_error, **options
            )
            waits.insert(0, batches)
        results = await waiting.gather_first_error(waits)
        return [status for statuses in results for status in statuses]
