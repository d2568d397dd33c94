"""Resuming waits from the ledger: many batches, each allowed to end on its own.

A plain `wait_for_batches` stops at the first error, which is right for one run's uploads.
Resuming after a crash is different: some entries will be long gone (deleted documents,
names re-uploaded by another tool), and one of them must not stop the wait for the rest.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from dify_ingest_tools.errors import DifyError, DifyNotFoundError, IndexingError
from dify_ingest_tools.models.created import BatchRef
from dify_ingest_tools.models.status import BatchIndexingStatus

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
    from dify_ingest_tools.client.ledger_hook import LedgerRecorder

# Deleted documents, replaced names, a deleted dataset: nothing left to wait for.
_GONE = ("documents", "dataset")


async def resume_pending(
    client: AsyncDifyKnowledgeClient,
    ledger: LedgerRecorder,
    refs: list[BatchRef],
    *,
    timeout: float,
    raise_on_error: bool,
    **options: Any,
) -> list[BatchIndexingStatus]:
    """Wait for every batch; mark vanished ones ``missing``; return the statuses in order.

    Raises:
        IndexingFailedError: With ``raise_on_error``, after every other batch ended.
        IndexingTimeoutError / IndexingStalledError: Some batch did not finish in time
            (the others were still waited for and recorded).
        DifyAPIError: A fatal error (401, 403, ...) that no other batch can avoid either.
    """
    keys = dict.fromkeys((ref.dataset_id.lower(), ref.batch) for ref in refs)
    unique = [BatchRef(dataset_id=dataset_id, batch=batch) for dataset_id, batch in keys]
    if not unique:
        return []

    async def one(ref: BatchRef) -> BatchIndexingStatus:
        return await client.wait_for_indexing(
            ref.dataset_id, ref.batch, timeout=timeout, raise_on_error=raise_on_error, **options
        )

    outcomes = await asyncio.gather(*(one(ref) for ref in unique), return_exceptions=True)
    statuses: list[BatchIndexingStatus] = []
    first_error: BaseException | None = None
    for ref, outcome in zip(unique, outcomes, strict=True):
        if isinstance(outcome, BatchIndexingStatus):
            statuses.append(outcome)
        elif isinstance(outcome, DifyNotFoundError) and outcome.resource in _GONE:
            await ledger.mark(ref, "missing", outcome.message)
        elif isinstance(outcome, (IndexingError, DifyError)):
            first_error = first_error or outcome
        else:
            raise outcome  # cancellation or a bug
    if first_error is not None:
        raise first_error
    return statuses
