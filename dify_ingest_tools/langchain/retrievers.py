"""`DifyRetriever`: a LangChain retriever over a Dify knowledge base, gated on readiness."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools.agent.gate import DEFAULT_PENDING_TIMEOUT, OnPendingTimeout, pass_gate
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.langchain._common import DifyConnection, WaitSettings
from dify_ingest_tools.langchain.events import arun_with_events, run_with_events
from dify_ingest_tools.models.retrieval import RetrievedChunk

__all__ = ["DifyRetriever"]


class DifyRetriever(DifyConnection, WaitSettings, BaseRetriever):
    """Retrieves from a Dify knowledge base (``POST /datasets/{id}/retrieve``).

    With ``wait_for_pending=True`` (the default), each query first waits for the batches
    *this client* uploaded to the dataset that may still be indexing, so a chain never
    searches a half-indexed knowledge base. The gate knows only uploads made through the same
    client: build the uploader and the retriever with the same ``client=``. Uploads that
    failed do not block retrieval (whoever waited on them was told; a warning is logged).

    The gate never crashes the chain or agent it runs in: when the uploads are not indexed
    after ``pending_timeout`` (30 s by default), or indexing stalls, or a document is paused
    (with ``on_paused="fail"``), it searches what Dify has and says so: every returned
    document gets ``dify_partial_results: True`` and ``dify_pending_batches`` (the
    unfinished batches, comma-separated) in its metadata, a warning is logged on the
    ``dify_ingest_tools`` logger, and a ``dify_indexing_partial_results`` custom event is
    dispatched per unfinished batch. Set ``on_pending_timeout="raise"`` to get the wait's
    error (`IndexingTimeoutError`, ...) instead. While it waits, the gate dispatches the same
    custom events as `DifyIndexingWaiter` (``dify_indexing_progress``, ...) to the retriever's
    run.

    Each `Document` has the chunk's text as ``page_content``, the segment id as ``id`` and
    ``metadata`` with ``score``, ``document_id``, ``document_name``, ``segment_id``,
    ``position`` and ``dataset_id`` (plus what Dify sends: ``keywords``, ``word_count``,
    ``doc_metadata``, ...). ``ainvoke`` is natively async.

    Example:
        >>> retriever = DifyRetriever(dataset_id="...", client=client, k=3)  # doctest: +SKIP
        >>> retriever.invoke("refund policy")  # doctest: +SKIP
    """

    dataset_id: str
    """The knowledge base (dataset) UUID."""
    k: int = Field(default=4, ge=1)
    """How many chunks to return (Dify's ``top_k``); ``invoke(query, k=...)`` overrides it."""
    score_threshold: float | None = None
    """Drop chunks scoring below this (None: the dataset's own setting)."""
    retrieval_model: dict[str, Any] | None = None
    """Dify's retrieval settings (``search_method``, ...); by default the dataset's own."""
    wait_for_pending: bool = True
    """Wait for this client's uploads to the dataset that may still be indexing."""
    pending_timeout: float = Field(default=DEFAULT_PENDING_TIMEOUT, gt=0)
    """Seconds the gate waits for pending uploads before it searches anyway (30)."""
    on_pending_timeout: OnPendingTimeout = "search"
    """``"search"`` what Dify has (results flagged partial) or ``"raise"`` the wait's error."""

    @field_validator("dataset_id")
    @classmethod
    def _check_dataset_id(cls, value: str) -> str:
        return check_dataset_id(value)

    async def _search(
        self,
        client: AsyncDifyKnowledgeClient,
        query: str,
        k: int | None,
        score_threshold: float | None,
        on_event: EventCallback,
    ) -> list[Document]:
        flags: dict[str, Any] = {}
        if self.wait_for_pending:
            passage = await pass_gate(
                client,
                self.dataset_id,
                timeout=self.pending_timeout,
                on_timeout=self.on_pending_timeout,
                on_event=on_event,
                **self.wait_options(),
            )
            flags = passage.metadata()
        chunks = await client.retrieve(
            self.dataset_id,
            query,
            top_k=self.k if k is None else k,
            score_threshold=self.score_threshold if score_threshold is None else score_threshold,
            retrieval_model=self.retrieval_model,
        )
        return [self._document(chunk, flags) for chunk in chunks]

    def _document(self, chunk: RetrievedChunk, flags: dict[str, Any]) -> Document:
        metadata = {
            **chunk.metadata,
            "score": chunk.score,
            "document_id": chunk.document_id,
            "document_name": chunk.document_name,
            "segment_id": chunk.segment_id,
            "position": chunk.position,
            "dataset_id": self.dataset_id,
            **flags,
        }
        return Document(id=chunk.segment_id, page_content=chunk.content, metadata=metadata)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        score_threshold: float | None = None,
    ) -> list[Document]:
        return run_with_events(
            self._dify_bridge,
            lambda client, on_event: self._search(client, query, k, score_threshold, on_event),
            run_manager,
        )

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        score_threshold: float | None = None,
    ) -> list[Document]:
        return await arun_with_events(
            self._dify_bridge,
            lambda client, on_event: self._search(client, query, k, score_threshold, on_event),
            run_manager,
        )
