"""`DifyRetriever`: a LlamaIndex retriever over a Dify knowledge base, gated on pending uploads."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import SecretStr

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools.agent.gate import (
    DEFAULT_PENDING_TIMEOUT,
    PENDING_BATCHES_KEY,
    OnPendingTimeout,
    pass_gate,
)
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.llama_index._common import AnyClient, EventRelay, HoldsClient, Work, connect
from dify_ingest_tools.models.retrieval import RetrievedChunk
from dify_ingest_tools.readiness.policy import OnPaused

__all__ = ["DifyRetriever"]

# Bookkeeping a prompt does not need (the document name stays visible, for citations; Dify's
# keyword lists are an index artefact, not content). `PARTIAL_KEY` stays visible too: "these
# results may be incomplete" is worth the LLM's reading.
_HIDDEN_FROM_LLM = (
    "score",
    "keywords",
    "document_id",
    "segment_id",
    "dataset_id",
    "position",
    "word_count",
    "tokens",
    "hit_count",
    "child_chunks",
    PENDING_BATCHES_KEY,
)


class DifyRetriever(HoldsClient, BaseRetriever):
    """Retrieves from a Dify knowledge base (``POST /datasets/{id}/retrieve``).

    With ``wait_for_pending=True`` (the default) it first waits for every batch its client
    uploaded to this dataset that may still be indexing, so a query engine never reads a
    half-indexed knowledge base. That works when the retriever shares its client with the
    `DifyDocumentUploader` (or with whatever uploaded): pass the same ``client=``. Failed
    uploads do not block retrieval (they are logged). While it waits, the gate dispatches
    the same instrumentation events as `DifyIndexingWaiter`.

    The gate never crashes the query engine or agent it runs in: when the uploads are not
    indexed after ``pending_timeout`` (30 s by default), or indexing stalls, or a document is
    paused (with ``on_paused="fail"``), it searches what Dify has and says so: every node
    gets ``dify_partial_results: True`` and ``dify_pending_batches`` (the unfinished batches,
    comma-separated) in its metadata, a warning is logged on the ``dify_ingest_tools``
    logger, and a `DifyPartialResultsEvent` is dispatched per unfinished batch. With
    ``on_pending_timeout="raise"`` the wait's error (`IndexingTimeoutError`, ...) is raised
    instead.

    Each hit becomes a ``NodeWithScore`` whose ``TextNode`` has the segment's text, the
    segment id as ``id_``, and metadata ``score``, ``document_id``, ``document_name``,
    ``segment_id``, ``dataset_id`` (plus ``position`` and what Dify sends: ``keywords``,
    ``doc_metadata``, ...).

    Args:
        dataset_id: The knowledge base.
        api_key: A Knowledge API key (default: ``DIFY_API_KEY``).
        base_url: The API root ending in ``/v1`` (default: ``DIFY_API_BASE_URL``).
        client: A `DifyKnowledgeClient` (``retrieve`` and ``aretrieve``) or an
            `AsyncDifyKnowledgeClient` (``aretrieve`` only) instead of ``api_key``.
        similarity_top_k: Number of hits (default: the knowledge base's own setting).
        score_threshold: Drop hits scoring below this.
        retrieval_model: Dify's full retrieval settings (``search_method``, reranking, ...);
            ``similarity_top_k`` and ``score_threshold`` override its values.
        wait_for_pending: Wait for this client's pending uploads to the dataset first.
        pending_timeout: Seconds that wait may take before the search runs anyway (30).
        on_pending_timeout: ``"search"`` (default: results flagged partial) or ``"raise"``.
        poll_interval: First gap between status polls while waiting.
        max_poll_interval: Longest gap between polls.
        stall_timeout: Stop waiting when nothing changes for this long (None: off).
        on_paused: ``"wait"`` (default) on a paused document, or ``"fail"``: stop waiting
            at once (it resumes only from Dify's console).
        callback_manager: LlamaIndex's (legacy) callback manager.
        verbose: LlamaIndex's verbose flag.
    """

    def __init__(
        self,
        dataset_id: str,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        client: AnyClient | None = None,
        similarity_top_k: int | None = None,
        score_threshold: float | None = None,
        retrieval_model: Mapping[str, Any] | None = None,
        wait_for_pending: bool = True,
        pending_timeout: float = DEFAULT_PENDING_TIMEOUT,
        on_pending_timeout: OnPendingTimeout = "search",
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        stall_timeout: float | None = None,
        on_paused: OnPaused = "wait",
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if similarity_top_k is not None and similarity_top_k < 1:
            raise ValueError("similarity_top_k must be >= 1 (or None for the dataset's setting)")
        if not pending_timeout > 0:  # also refuses NaN
            raise ValueError("pending_timeout must be > 0 seconds")
        if on_pending_timeout not in ("search", "raise"):
            raise ValueError("on_pending_timeout must be 'search' or 'raise'")
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.dataset_id = check_dataset_id(dataset_id)
        self.similarity_top_k = similarity_top_k
        self.score_threshold = score_threshold
        self.retrieval_model = dict(retrieval_model) if retrieval_model is not None else None
        self.wait_for_pending = wait_for_pending
        self.pending_timeout = pending_timeout
        self.on_pending_timeout: OnPendingTimeout = on_pending_timeout
        self.poll_interval = poll_interval
        self.max_poll_interval = max(poll_interval, max_poll_interval)
        self.stall_timeout = stall_timeout
        self.on_paused: OnPaused = on_paused
        self._bridge, self._owns_client = connect(client, api_key, base_url)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dataset_id={self.dataset_id!r}, "
            f"similarity_top_k={self.similarity_top_k!r}, client={self.client!r})"
        )

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._bridge.call(self._search(query_bundle.query_str, EventRelay(None)))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        relay = EventRelay(asyncio.get_running_loop())
        return await self._bridge.acall(self._search(query_bundle.query_str, relay))

    def _search(self, query: str, relay: EventRelay) -> Work[list[NodeWithScore]]:
        async def work(client: AsyncDifyKnowledgeClient) -> list[NodeWithScore]:
            flags: dict[str, Any] = {}
            if self.wait_for_pending:
                passage = await pass_gate(
                    client,
                    self.dataset_id,
                    timeout=self.pending_timeout,
                    on_timeout=self.on_pending_timeout,
                    on_event=relay,
                    poll_interval=self.poll_interval,
                    max_poll_interval=self.max_poll_interval,
                    stall_timeout=self.stall_timeout,
                    on_paused=self.on_paused,
                )
                flags = passage.metadata()
            chunks = await client.retrieve(
                self.dataset_id,
                query,
                top_k=self.similarity_top_k,
                score_threshold=self.score_threshold,
                retrieval_model=self.retrieval_model,
            )
            return [self._node(chunk, flags) for chunk in chunks]

        return work

    def _node(self, chunk: RetrievedChunk, flags: Mapping[str, Any]) -> NodeWithScore:
        metadata: dict[str, Any] = {
            **chunk.metadata,
            "score": chunk.score,
            "document_id": chunk.document_id,
            "document_name": chunk.document_name,
            "segment_id": chunk.segment_id,
            "dataset_id": self.dataset_id,
        }
        if chunk.position is not None:
            metadata["position"] = chunk.position
        metadata.update(flags)
        node = TextNode(
            text=chunk.content,
            metadata=metadata,
            excluded_embed_metadata_keys=list(metadata),
            excluded_llm_metadata_keys=[key for key in metadata if key in _HIDDEN_FROM_LLM],
        )
        if chunk.segment_id:
            node.id_ = chunk.segment_id
        return NodeWithScore(node=node, score=chunk.score)
