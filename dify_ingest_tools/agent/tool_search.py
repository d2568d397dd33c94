"""What the search tool does around Dify's retrieval: first a bounded wait for the tool set's
own pending uploads (with notes on what may be missing), then names for hits that lack one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from dify_ingest_tools.agent.answers import status_answer
from dify_ingest_tools.agent.error_answers import failure_answer
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.pending import PendingView
from dify_ingest_tools.errors import (
    DifyError,
    DifyNotFoundError,
    IndexingEmptyError,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.models.created import BatchRef
from dify_ingest_tools.models.retrieval import RetrievedChunk

logger = logging.getLogger("dify_ingest_tools")

# A search waits on at most this many of the toolset's pending batches (the newest): each wait
# polls its own batch, and 201 pending uploads once made one search send 1,105 status requests.
# The rest are named in a note, unchecked.
_SEARCH_WAIT_BATCHES = 5
# Batches a note names one by one; beyond that it gives their number.
_NOTE_BATCHES = 5


async def settle_pending(
    client: AsyncDifyKnowledgeClient,
    view: PendingView,
    dataset_id: str,
    *,
    wait_seconds: float,
    wait_options: Mapping[str, Any],
    on_event: EventCallback | None,
) -> tuple[list[str], list[str]]:
    """Wait (at most ``wait_seconds``) for the tool set's uploads to the dataset (its pending
    ``view``); notes on what is missing, and the batches still indexing."""
    pending = view.batches(dataset_id)
    if not pending:
        return [], []
    unchecked = pending[:-_SEARCH_WAIT_BATCHES]
    pending = pending[-_SEARCH_WAIT_BATCHES:]
    notes = [_unchecked_note(unchecked)] if unchecked else []
    if wait_seconds == 0:
        batches = [ref.batch for ref in pending]
        note = (
            f"Note: {len(pending)} upload(s) made through these tools may still be indexing "
            f"(batch {', '.join(batches)}); their content may be missing from these results."
        )
        return [*notes, note], batches

    async def settle(ref: BatchRef) -> tuple[str | None, bool]:
        try:
            status = await client.wait_for_indexing(
                ref.dataset_id,
                ref.batch,
                timeout=wait_seconds,
                raise_on_error=False,
                on_event=on_event,
                **wait_options,
            )
        except (IndexingTimeoutError, IndexingStalledError):
            return (
                f"Note: batch {ref.batch}, uploaded through these tools, was still indexing "
                f"after {wait_seconds:g} s; its content may be missing or "
                "partial in these results."
            ), True
        except IndexingFailedError as error:  # paused, with on_paused="fail"
            return f"Note: {failure_answer(error)}", True
        except IndexingEmptyError as error:  # indexed, nothing to find: not still indexing
            if error.last_status is not None:
                view.seen(error.last_status)
                return f"Note: {status_answer(error.last_status)}", False
            return None, False
        except DifyNotFoundError:
            # Deleted since (or replaced by a newer upload of the same name).
            view.forget_batch(ref)
            return None, False
        except DifyError:
            return None, True  # the search itself will say what is wrong with Dify
        view.seen(status)
        if status.is_failed or status.is_empty:
            return f"Note: {status_answer(status)}", False
        return None, False

    settled = await asyncio.gather(*(settle(ref) for ref in pending))
    notes += [note for note, _ in settled if note]
    still = [ref.batch for ref, (_, waiting) in zip(pending, settled, strict=True) if waiting]
    return notes, still


async def document_names(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    known: dict[str, tuple[str, str | None]],
    chunks: list[RetrievedChunk],
) -> dict[str, str]:
    """Document names for hits that lack one (keyword search returns none, recording 06).

    ``known`` (document id -> (name, batch)) is what the tool set already knows of the
    dataset; the names read here are added to it.
    """
    missing = {
        chunk.document_id
        for chunk in chunks
        if not chunk.document_name and chunk.document_id and chunk.document_id not in known
    }
    if missing:
        try:
            listing = await client.list_documents(dataset_id, limit=100)
        except DifyError as error:
            logger.info("could not read document names of %s: %s", dataset_id, error)
        else:
            for doc in listing.data:
                if doc.name:
                    known.setdefault(doc.id, (doc.name, None))
    return {doc_id: name for doc_id, (name, _) in known.items() if name}


def _unchecked_note(refs: list[BatchRef]) -> str:
    named = ", ".join(ref.batch for ref in refs[-_NOTE_BATCHES:])
    more = f" and {len(refs) - _NOTE_BATCHES} more" if len(refs) > _NOTE_BATCHES else ""
    return (
        f"Note: {len(refs)} older upload(s) made through these tools were not checked before "
        f"this search (batch {named}{more}); if any is still indexing, its content may be "
        "missing. indexing_status tells about one batch."
    )
