"""`StoreCore`: a Dify knowledge base used as a keyed document store, read-after-write.

The framework-neutral engine behind `DifyVectorStore` (LangChain) and `DifyIndex`
(LlamaIndex). Every method takes the `AsyncDifyKnowledgeClient` to run on, so the adapters
can call it from sync and async code alike (`ClientBridge`). How a caller's document maps
onto a Dify document (key, id, metadata, the ownership mark) is `store_mapping`'s; finding,
reading and searching documents is `store_reads`'s; this module writes and deletes them, and
says how a store's writes wait (`write_waits`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dify_ingest_tools.agent.store_mapping import (
    MAX_KEY_LENGTH,
    Known,
    Named,
    StoredDocument,
    conflict_error,
    field_values,
    fit_values,
    json_safe,
)
from dify_ingest_tools.agent.store_reads import StoreReads, bounded
from dify_ingest_tools.errors import DifyDocumentNotAvailableError, DifyNotFoundError
from dify_ingest_tools.models.created import CreatedDocument
from dify_ingest_tools.models.documents import (
    MetadataField,
)
from dify_ingest_tools.readiness.policy import OnEmpty
from dify_ingest_tools.readiness.wait_options import WaitOptions

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient


class StoreCore(StoreReads):
    """Writes, reads, searches and deletes documents of one knowledge base by key and id.

    Args:
        dataset_id: The knowledge base UUID (it must exist).
        key_is_id: Documents are keyed by their id (so an id lookup is a name lookup).
        indexing_technique: For creates (by default the dataset's own).
        process_rule: Chunking rules for creates and text updates (default: automatic).
        concurrency: Writes and lookups in flight at once.
        cache_size: Documents whose id and metadata are remembered.
        cache_ttl: Seconds a remembered document is trusted (None: until this store
            changes it). Other writers' changes show up after this long.
        overwrite_foreign: Let writes replace documents that carry no store's mark (by
            default such a write raises `DifyDocumentConflictError`). Deletes never touch
            them either way.
    """

    # -- writes -----------------------------------------------------------------------------

    async def _fields_for(
        self, client: AsyncDifyKnowledgeClient, values: Iterable[Mapping[str, Any]]
    ) -> dict[str, MetadataField]:
        wanted: dict[str, Any] = {}
        for entry in values:
            for name, value in entry.items():
                wanted.setdefault(name, "string" if isinstance(value, str) else "number")
        missing = {name: kind for name, kind in wanted.items() if name not in self._fields}
        if missing:
            self._fields.update(await client.ensure_metadata_fields(self.dataset_id, missing))
        return self._fields

    async def _write_one(
        self,
        client: AsyncDifyKnowledgeClient,
        document: StoredDocument,
        existing: Named | None,
        retry_timeout: float,
    ) -> CreatedDocument:
        if existing is not None:
            try:
                return await client.update_document_by_text(
                    self.dataset_id,
                    existing.dify_id,
                    text=document.text,
                    name=document.key,
                    process_rule=self.process_rule,
                    retry_unavailable=True,
                    retry_timeout=retry_timeout,
                )
            except DifyNotFoundError as error:
                if error.resource != "document":
                    raise
                # Deleted meanwhile by someone else: create it again, unless someone else's
                # document took the name since (a create would replace it: an upsert by name).
                self._forget(client, existing.dify_id)
                again = await self._find_by_name(client, document.key)
                if again is not None and not again.marked and not self.overwrite_foreign:
                    raise conflict_error(self.dataset_id, [(document.key, again)]) from error
            except DifyDocumentNotAvailableError:
                # A document whose indexing failed cannot be updated, but a create under its
                # name re-indexes it (same document, new batch); anything else is reported.
                detail = await client.get_document(self.dataset_id, existing.dify_id)
                if detail.display_status != "error":
                    raise
        created = await client.create_document_by_text(
            self.dataset_id,
            document.key,
            document.text,
            indexing_technique=self.indexing_technique,
            process_rule=self.process_rule,
        )
        # Ours from now on, even before its mark is written (a retry after a failed metadata
        # write must not find it foreign).
        self._remember_key(document.key, created.document_id)
        return created

    async def write(
        self,
        client: AsyncDifyKnowledgeClient,
        documents: Sequence[StoredDocument],
        *,
        wait: bool,
        wait_options: Mapping[str, Any],
    ) -> list[CreatedDocument]:
        """Create or update each document by key, set its metadata, and wait if asked.

        Later documents with the same key win. Returns one result per distinct key.

        Raises:
            DifyDocumentConflictError: A key names a document no store wrote (and
                ``overwrite_foreign`` is off); raised before anything is written.
        """
        latest: dict[str, StoredDocument] = {}
        for document in documents:
            if not document.key or len(document.key) > MAX_KEY_LENGTH:
                raise ValueError(
                    f"a document key (the Dify document name) must be 1 to {MAX_KEY_LENGTH} "
                    f"characters, got {document.key[:40]!r}"
                )
            latest.pop(document.key, None)
            latest[document.key] = document
        chosen = list(latest.values())
        if not chosen:
            return []
        # Every key is looked up before anything is written: a refused batch leaves nothing
        # half-written.
        existing = await bounded(
            self.concurrency, lambda d: self._find_by_name(client, d.key), chosen
        )
        if not self.overwrite_foreign:
            foreign = [
                (d.key, named)
                for d, named in zip(chosen, existing, strict=True)
                if named is not None and not named.marked
            ]
            if foreign:
                raise conflict_error(self.dataset_id, foreign)
        timeout = float(wait_options.get("timeout", 600.0))
        results = await bounded(
            self.concurrency,
            lambda pair: self._write_one(client, pair[0], pair[1], timeout),
            list(zip(chosen, existing, strict=True)),
        )
        written = list(zip(results, chosen, strict=True))
        values = {r.document_id: field_values(d) for r, d in written}
        fields = await self._fields_for(client, values.values())
        await client.set_documents_metadata(
            self.dataset_id,
            {dify_id: fit_values(v, fields) for dify_id, v in values.items()},
            create_fields=False,
            fields=fields,
        )
        for result, document in written:
            manifest = {"id": document.id, "metadata": dict(document.metadata)}
            manifest.update(document.manifest)
            known = Known(
                result.document_id,
                document.key,
                document.id,
                json_safe(dict(document.metadata)),
                json_safe(manifest),
            )
            self._details.put(result.document_id, known)
        if wait:
            await client.wait_for_documents(self.dataset_id, results, **wait_options)
        else:
            view = self._pending(client)
            for result in results:
                view.remember(result)
        return results

    async def delete(self, client: AsyncDifyKnowledgeClient, ids: Sequence[str]) -> int:
        """Delete the documents with these caller ids; missing ones are skipped.

        Only documents a store wrote are deleted: an id naming someone else's document is
        missing. Returns how many were deleted.
        """
        found = await self.resolve_ids(client, list(dict.fromkeys(ids)), owned=True)

        async def drop(dify_id: str) -> int:
            try:
                await client.delete_document(self.dataset_id, dify_id)
            except DifyNotFoundError as error:
                if error.resource in ("dataset", "route"):
                    raise
                return 0
            finally:
                self._forget(client, dify_id)
            return 1

        counts = await bounded(self.concurrency, drop, list(dict.fromkeys(found.values())))
        return sum(counts)


def new_id() -> str:
    """A fresh caller id (what LangChain stores generate when none is given)."""
    return str(uuid.uuid4())


def write_waits(
    *,
    timeout: float,
    poll_interval: float,
    max_poll_interval: float,
    stall_timeout: float | None,
    on_empty: OnEmpty,
    summaries: bool,
) -> dict[str, Any]:
    """How a store's writes (and its search gate) wait, as the client's wait options.

    Raises:
        ValueError: For a timeout that is not positive, or a bad ``on_empty``/``summaries``.
    """
    if timeout <= 0:
        raise ValueError("timeout must be > 0 seconds")
    WaitOptions(on_empty=on_empty, summaries=summaries)  # bad values fail here
    return {
        "timeout": timeout,
        "poll_interval": poll_interval,
        "max_poll_interval": max_poll_interval,
        "stall_timeout": stall_timeout,
        "on_empty": on_empty,
        "summaries": summaries,
    }
