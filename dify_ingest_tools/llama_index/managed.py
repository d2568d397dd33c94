"""`DifyIndex`: a Dify knowledge base as a LlamaIndex managed index, read-after-write.

Like ``LlamaCloudIndex``, Dify parses, chunks and embeds server-side; this index sends whole
documents and, by default, returns from every write only once Dify has indexed it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.data_structs.data_structs import IndexDict
from llama_index.core.indices.managed.base import BaseManagedIndex
from llama_index.core.schema import BaseNode, Document, NodeWithScore, QueryBundle
from llama_index.core.storage.docstore.types import RefDocInfo
from llama_index.core.vector_stores.types import MetadataFilters
from pydantic import SecretStr

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools.agent.store import StoreCore, write_waits
from dify_ingest_tools.agent.store_mapping import Hit
from dify_ingest_tools.agent.store_names import aresolve_name, resolve_name
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.llama_index._common import AnyClient, EventRelay, HoldsClient, Work, connect
from dify_ingest_tools.llama_index._index_documents import (
    SourceKey,
    as_document,
    dify_filter,
    group,
    node_of,
    ref_doc_hashes,
    source_of,
    stored,
    with_id,
)
from dify_ingest_tools.readiness.policy import OnEmpty

__all__ = ["DifyIndex", "DifyIndexRetriever"]

logger = logging.getLogger("dify_ingest_tools")


class DifyIndex(HoldsClient, BaseManagedIndex):
    """A Dify knowledge base as a LlamaIndex ``BaseManagedIndex`` (like ``LlamaCloudIndex``).

    One Dify document per **source**: documents that share a source file (the pages of a
    PDF, from ``SimpleDirectoryReader``: same ``file_path``) are joined into one Dify
    document named after it; a document without a file is its own source (``doc_id``).
    Writing a source again updates that Dify document in place. Each Dify document keeps
    the ``doc_id`` and ``hash`` of the documents it holds, so `refresh_ref_docs` skips
    unchanged sources without uploading anything.

    The index owns only what a store wrote (the ``lc_manifest`` mark): a source named like
    someone else's document raises `DifyDocumentConflictError` from every write (nothing
    written) unless ``overwrite_foreign=True``, and `delete_ref_doc` never reaches it.

    Writes (``from_documents``, ``insert``, ``update_ref_doc``, ``refresh_ref_docs``) return
    once Dify has indexed what they wrote (``wait=True``); with ``wait=False`` they return at
    once and this index's retrievers first wait for those writes.

    Example:
        >>> index = DifyIndex.from_documents(docs, dataset_id=ds, client=client)  # doctest: +SKIP
        >>> index.as_query_engine(llm=llm).query("What is the refund policy?")  # doctest: +SKIP

    Args:
        dataset_id: The knowledge base UUID (it must exist).
        client: A `DifyKnowledgeClient` (sync and async) or an `AsyncDifyKnowledgeClient`
            (async methods only); otherwise one is built from ``api_key`` / ``base_url``.
        api_key: The Knowledge API key (default ``DIFY_API_KEY``).
        base_url: The API root ending in ``/v1`` (default ``DIFY_API_BASE_URL``).
        source_key: What groups documents into one Dify document: a metadata key, a
            function of the document, or None (``file_path``, else ``file_name``, else the
            document's own id).
        wait: Return from writes only once Dify has indexed them.
        show_progress: Draw progress bars while waiting.
        timeout: Seconds a write's wait may take.
        poll_interval: First gap between status polls.
        max_poll_interval: Longest gap between polls.
        stall_timeout: Fail a wait when nothing changes for this long (None: off).
        on_empty: A document Dify indexes with 0 chunks (empty text: nothing will be
            found): ``"raise"`` `IndexingEmptyError` from the write (default), ``"warn"`` (log),
            or ``"accept"``.
        summaries: Writes also wait for the documents' summaries (summary indexing datasets).
        indexing_technique: For creates (by default the dataset's own).
        process_rule: Dify chunking rules (default automatic).
        cache_ttl: Seconds a Dify document's metadata is trusted for search results.
        overwrite_foreign: Let writes replace a Dify document of the same name that no store
            wrote (a console upload, a sync): by default that raises
            `DifyDocumentConflictError` before anything is written. `delete_ref_doc` never
            touches such documents either way.
        callback_manager: LlamaIndex's callback manager.
    """

    def __init__(
        self,
        dataset_id: str,
        *,
        client: AnyClient | None = None,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        source_key: SourceKey | None = None,
        wait: bool = True,
        show_progress: bool = False,
        timeout: float = 600.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        stall_timeout: float | None = None,
        on_empty: OnEmpty = "raise",
        summaries: bool = False,
        indexing_technique: str | None = None,
        process_rule: Mapping[str, Any] | None = None,
        cache_ttl: float | None = 300.0,
        overwrite_foreign: bool = False,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        self.dataset_id = check_dataset_id(dataset_id)
        self.wait_options = write_waits(
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max(poll_interval, max_poll_interval),
            stall_timeout=stall_timeout,
            on_empty=on_empty,
            summaries=summaries,
        )
        self._bridge, self._owns_client = connect(client, api_key, base_url)
        self.source_key = source_key
        self.wait = wait
        self._core = StoreCore(
            dataset_id,
            key_is_id=True,
            indexing_technique=indexing_technique,
            process_rule=process_rule,
            cache_ttl=cache_ttl,
            overwrite_foreign=overwrite_foreign,
        )
        super().__init__(
            index_struct=IndexDict(),
            show_progress=show_progress,
            callback_manager=callback_manager,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dataset_id={self.dataset_id!r})"

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_documents(  # type: ignore[override]
        cls,
        documents: Sequence[Document],
        *,
        dataset_id: str | None = None,
        name: str | None = None,
        create_if_missing: bool = False,
        wait: bool = True,
        show_progress: bool = True,
        **kwargs: Any,
    ) -> DifyIndex:
        """Write ``documents`` to the knowledge base and return the index over it.

        Returns once Dify has indexed them (``wait=True``). The knowledge base is given by
        ``dataset_id``, or by ``name`` (as ``LlamaCloudIndex`` takes one): found by its exact
        name, or with ``create_if_missing=True`` created when there is none (economy, unless
        ``indexing_technique`` says otherwise). Other keyword arguments are the
        constructor's (``client``, ``api_key``, ``source_key``, ``timeout``,
        ``overwrite_foreign``, ...).

        Raises:
            DifyDatasetNameError: No knowledge base has ``name`` (without
                ``create_if_missing``), or two have it (both ids in the message).
        """
        kwargs["dataset_id"] = dataset_id
        owned = resolve_name(kwargs, name, create_if_missing)
        index = cls(wait=wait, show_progress=show_progress, **with_id(kwargs))
        index._owns_client = index._owns_client or owned is not None
        index.insert_documents(documents)
        return index

    @classmethod
    async def afrom_documents(
        cls,
        documents: Sequence[Document],
        *,
        dataset_id: str | None = None,
        name: str | None = None,
        create_if_missing: bool = False,
        wait: bool = True,
        show_progress: bool = True,
        **kwargs: Any,
    ) -> DifyIndex:
        """Async `from_documents` (``name=`` and ``create_if_missing=`` too)."""
        kwargs["dataset_id"] = dataset_id
        owned = await aresolve_name(kwargs, name, create_if_missing)
        index = cls(wait=wait, show_progress=show_progress, **with_id(kwargs))
        index._owns_client = index._owns_client or owned is not None
        await index.ainsert_documents(documents)
        return index

    # -- mapping documents ------------------------------------------------------------------

    def _options(self, relay: EventRelay) -> dict[str, Any]:
        options = {**self.wait_options, "on_event": relay}
        if self._show_progress:
            options["progress"] = True
        return options

    def _write(self, documents: Sequence[Document], relay: EventRelay) -> Work[list[bool]]:
        """Upsert every source of ``documents``; ``refresh``-style result per document."""
        groups = group(documents, self.source_key)

        async def work(client: AsyncDifyKnowledgeClient) -> list[bool]:
            written = [stored(key, members) for key, members in groups.items()]
            await self._core.write(
                client, written, wait=self.wait, wait_options=self._options(relay)
            )
            return [True] * len(documents)

        return work

    def _refresh(self, documents: Sequence[Document], relay: EventRelay) -> Work[list[bool]]:
        groups = group(documents, self.source_key)

        async def work(client: AsyncDifyKnowledgeClient) -> list[bool]:
            found = await self._core.resolve_ids(client, list(groups))
            knowns = await asyncio.gather(*(self._core.known(client, d) for d in found.values()))
            by_key = {known.key: known for known in knowns if known is not None}
            changed = {
                key
                for key, members in groups.items()
                if ref_doc_hashes(by_key.get(key)) != {m.doc_id: m.hash for m in members}
            }
            written = [stored(key, groups[key]) for key in groups if key in changed]
            if written:
                await self._core.write(
                    client, written, wait=self.wait, wait_options=self._options(relay)
                )
            return [source_of(doc, self.source_key) in changed for doc in documents]

        return work

    # -- writes -----------------------------------------------------------------------------

    def insert_documents(self, documents: Sequence[Document], **kwargs: Any) -> None:
        """Write these documents (grouped by source) and wait for Dify to index them."""
        with self._callback_manager.as_trace("insert"):
            self._bridge.call(self._write(documents, EventRelay(None)))

    async def ainsert_documents(self, documents: Sequence[Document], **kwargs: Any) -> None:
        """Async `insert_documents`."""
        relay = EventRelay(asyncio.get_running_loop())
        with self._callback_manager.as_trace("insert"):
            await self._bridge.acall(self._write(documents, relay))

    def insert(self, document: Document, **insert_kwargs: Any) -> None:
        """Write one document as its source's Dify document (replacing what it held)."""
        self.insert_documents([document])

    async def ainsert(self, document: Document, **insert_kwargs: Any) -> None:
        """Async `insert`."""
        await self.ainsert_documents([document])

    def _insert(self, nodes: Sequence[BaseNode], **insert_kwargs: Any) -> None:
        """Nodes are sent as documents: Dify does its own chunking."""
        self.insert_documents([as_document(node) for node in nodes])

    def update_ref_doc(self, document: Document, **update_kwargs: Any) -> None:
        """Replace the Dify document of this document's source (updated in place)."""
        with self._callback_manager.as_trace("update"):
            self._bridge.call(self._write([document], EventRelay(None)))

    async def aupdate_ref_doc(self, document: Document, **update_kwargs: Any) -> None:
        """Async `update_ref_doc`."""
        relay = EventRelay(asyncio.get_running_loop())
        with self._callback_manager.as_trace("update"):
            await self._bridge.acall(self._write([document], relay))

    def refresh_ref_docs(self, documents: Sequence[Document], **update_kwargs: Any) -> list[bool]:
        """Write only the sources whose documents changed (by ``doc_id`` and ``hash``).

        Returns, per input document, whether its source was written.
        """
        with self._callback_manager.as_trace("refresh"):
            return self._bridge.call(self._refresh(documents, EventRelay(None)))

    async def arefresh_ref_docs(
        self, documents: Sequence[Document], **update_kwargs: Any
    ) -> list[bool]:
        """Async `refresh_ref_docs`."""
        relay = EventRelay(asyncio.get_running_loop())
        with self._callback_manager.as_trace("refresh"):
            return await self._bridge.acall(self._refresh(documents, relay))

    def _delete(self, ref_doc_id: str, raise_if_not_found: bool) -> Work[None]:
        async def work(client: AsyncDifyKnowledgeClient) -> None:
            keys = [
                known.key
                for known in await self._core.scan_known(client)
                if ref_doc_id == known.key or ref_doc_id in ref_doc_hashes(known)
            ]
            deleted = await self._core.delete(client, keys) if keys else 0
            if not deleted:
                message = f"no Dify document holds ref_doc_id {ref_doc_id!r}"
                if raise_if_not_found:
                    raise ValueError(message)
                logger.warning("%s in dataset %s", message, self.dataset_id)

        return work

    def delete_ref_doc(
        self,
        ref_doc_id: str,
        delete_from_docstore: bool = False,
        raise_if_not_found: bool = False,
        **delete_kwargs: Any,
    ) -> None:
        """Delete the Dify document holding this document (its whole source).

        An unknown id logs a warning, or raises ValueError with ``raise_if_not_found``.
        """
        self._bridge.call(self._delete(ref_doc_id, raise_if_not_found))

    async def adelete_ref_doc(
        self,
        ref_doc_id: str,
        delete_from_docstore: bool = False,
        raise_if_not_found: bool = False,
        **delete_kwargs: Any,
    ) -> None:
        """Async `delete_ref_doc`."""
        await self._bridge.acall(self._delete(ref_doc_id, raise_if_not_found))

    @property
    def ref_doc_info(self) -> dict[str, RefDocInfo]:
        """Every document this kind of index wrote to the knowledge base (no node ids)."""

        async def work(client: AsyncDifyKnowledgeClient) -> dict[str, RefDocInfo]:
            info: dict[str, RefDocInfo] = {}
            for known in await self._core.scan_known(client):
                for ref_doc_id in ref_doc_hashes(known) or {known.key: ""}:
                    info[ref_doc_id] = RefDocInfo(node_ids=[], metadata=dict(known.metadata))
            return info

        return self._bridge.call(work)

    # -- reads ------------------------------------------------------------------------------

    def as_retriever(self, **kwargs: Any) -> BaseRetriever:
        """A retriever over the knowledge base.

        Args:
            similarity_top_k: Number of chunks (default 4).
            filters: LlamaIndex ``MetadataFilters`` (mapped to Dify metadata filters).
            score_threshold: Drop chunks scoring below this.
            retrieval_model: Dify's retrieval settings (``search_method``, ...).

        Other keyword arguments (what ``as_query_engine`` passes along) are ignored.
        """
        return DifyIndexRetriever(
            self,
            similarity_top_k=kwargs.get("similarity_top_k") or 4,
            filters=kwargs.get("filters"),
            score_threshold=kwargs.get("score_threshold"),
            retrieval_model=kwargs.get("retrieval_model"),
            callback_manager=self._callback_manager,
        )

    def _search(
        self,
        query: str,
        top_k: int,
        filters: Mapping[str, Any] | None,
        score_threshold: float | None,
        retrieval_model: Mapping[str, Any] | None,
        relay: EventRelay,
    ) -> Work[list[Hit]]:
        async def work(client: AsyncDifyKnowledgeClient) -> list[Hit]:
            return await self._core.search(
                client,
                query,
                k=top_k,
                score_threshold=score_threshold,
                filter=filters,
                retrieval_model=retrieval_model,
                gate={**self.wait_options, "on_event": relay},
            )

        return work


class DifyIndexRetriever(BaseRetriever):
    """The retriever of a `DifyIndex`: Dify's chunks, with their source's metadata.

    Each hit is a ``TextNode`` with the chunk's text, the segment id as ``id_``, the
    source's metadata, and a ``SOURCE`` relationship to the first document of the source.
    """

    def __init__(
        self,
        index: DifyIndex,
        *,
        similarity_top_k: int = 4,
        filters: MetadataFilters | Mapping[str, Any] | None = None,
        score_threshold: float | None = None,
        retrieval_model: Mapping[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        if similarity_top_k < 1:
            raise ValueError("similarity_top_k must be >= 1")
        super().__init__(callback_manager=callback_manager)
        self._index = index
        self.similarity_top_k = similarity_top_k
        self.filters = dify_filter(filters)
        self.score_threshold = score_threshold
        self.retrieval_model = dict(retrieval_model) if retrieval_model is not None else None

    def _work(self, query: str, relay: EventRelay) -> Work[list[Hit]]:
        return self._index._search(
            query,
            self.similarity_top_k,
            self.filters,
            self.score_threshold,
            self.retrieval_model,
            relay,
        )

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._index._bridge.call(self._work(query_bundle.query_str, EventRelay(None)))
        return [node_of(hit) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        relay = EventRelay(asyncio.get_running_loop())
        hits = await self._index._bridge.acall(self._work(query_bundle.query_str, relay))
        return [node_of(hit) for hit in hits]
