"""`RetrieveAPI`: search a knowledge base, with its own retrieval settings as the base.

The rules for the ``retrieval_model`` sent: `retrieval`; the names Dify's records leave
out: `doc_names`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from pydantic import ValidationError

from dify_ingest_tools._base.filters import metadata_conditions
from dify_ingest_tools._base.inputs import (
    check_dataset_id,
    check_document_id,
    check_int,
    check_optional_number,
)
from dify_ingest_tools._http.answer_errors import shape_error
from dify_ingest_tools.client.doc_names import LIST_PAGE_SIZE, DocumentInfo
from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.client.retrieval import (
    ResolvedModel,
    is_missing_embedding_model,
    needs_dataset_settings,
    resolve_retrieval_model,
)
from dify_ingest_tools.errors import DifyAPIError
from dify_ingest_tools.models.documents import DifyDocument, DocumentList
from dify_ingest_tools.models.retrieval import RetrievedChunk


class RetrieveAPI(ClientHost):
    """``POST /datasets/{id}/retrieve`` and what it needs (settings, filters, names)."""

    async def retrieve(
        self,
        dataset_id: str,
        query: str,
        *,
        top_k: int | None = None,
        score_threshold: float | None = None,
        retrieval_model: Mapping[str, Any] | None = None,
        metadata_filter: Mapping[str, Any] | None = None,
    ) -> list[RetrievedChunk]:
        """Search the knowledge base (``POST /datasets/{id}/retrieve``).

        Only completed segments are searched, so a document that is still indexing can give
        partial results: wait for its batch first.

        Args:
            query: The search text (Dify allows up to 250 characters).
            top_k: Number of hits. Overrides ``retrieval_model``'s value.
            score_threshold: Drop hits scoring below this. Overrides ``retrieval_model``.
            retrieval_model: Dify's retrieval settings (``search_method``, ...). When only
                ``top_k``/``score_threshold`` are given, the dataset's own settings are used
                as the base.
            metadata_filter: Only chunks of documents whose metadata matches: Dify's
                ``metadata_filtering_conditions``, or ``{"field": value}`` /
                ``{"field": {"$gt": 1}}`` / ``{"$or": [...]}`` (see ``_base.filters``).
        """
        check_dataset_id(dataset_id)
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        resolved = await self._retrieval_model(dataset_id, top_k, score_threshold, retrieval_model)
        try:
            payload = await self._send_retrieve(dataset_id, query, resolved, metadata_filter)
        except DifyAPIError as error:
            # A guessed vector search on a dataset whose settings could not be read: the
            # server has no embedding model for it, so it is an economy dataset (recording 17).
            if not (resolved.guessed and is_missing_embedding_model(error.status, error.message)):
                raise
            self._datasets.remember_technique(dataset_id, "economy")
            resolved = resolved.as_keyword_search()
            payload = await self._send_retrieve(dataset_id, query, resolved, metadata_filter)
        url = self._url("datasets", dataset_id, "retrieve")
        records = payload.get("records") if isinstance(payload, dict) else None
        if not isinstance(records, list):
            raise shape_error("expected {'records': [...]}", payload, url, "POST")
        try:
            chunks = [RetrievedChunk.from_record(record) for record in records]
        except (AttributeError, TypeError, ValidationError) as exc:
            raise shape_error(f"bad record ({type(exc).__name__})", payload, url, "POST") from None
        return await self._named(dataset_id, chunks)

    async def _send_retrieve(
        self,
        dataset_id: str,
        query: str,
        resolved: ResolvedModel,
        metadata_filter: Mapping[str, Any] | None,
    ) -> Any:
        model = resolved.model
        if metadata_filter is not None:
            model = self._with_metadata_filter(model, metadata_filter)
        url = self._url("datasets", dataset_id, "retrieve")
        body = {"query": query, "retrieval_model": model}
        # Retrieval changes nothing server-side, so it is retried like a read.
        return await self._transport.json("POST", url, json_body=body, idempotent=True)

    async def _named(self, dataset_id: str, chunks: list[RetrievedChunk]) -> list[RetrievedChunk]:
        """Fill in the names (and Dify metadata) Dify's retrieve records leave null."""
        unnamed = [
            chunk.document_id
            for chunk in chunks
            if chunk.document_name is None and _looks_like_document_id(chunk.document_id)
        ]
        if not unnamed:
            return chunks
        known = await self._doc_names.resolve(dataset_id, unnamed, _DocumentLookups(self))
        return [_labelled(chunk, known.get(chunk.document_id or "")) for chunk in chunks]

    async def _retrieval_model(
        self,
        dataset_id: str,
        top_k: int | None,
        score_threshold: float | None,
        retrieval_model: Mapping[str, Any] | None,
    ) -> ResolvedModel:
        """The complete ``retrieval_model`` every retrieve sends (the rules: `client.retrieval`)."""
        if top_k is not None:
            check_int(top_k, "top_k", minimum=1)
        # Dify's scores (cosine similarity, rerank, weighted) are between 0 and 1.
        check_optional_number(score_threshold, "score_threshold", minimum=0, maximum=1)
        if retrieval_model is not None and not isinstance(retrieval_model, Mapping):
            raise TypeError(
                f"retrieval_model must be a mapping, got {type(retrieval_model).__name__}"
            )
        stored: dict[str, Any] | None = None
        technique: str | None = None
        if needs_dataset_settings(retrieval_model):
            info = await self._readable_dataset(dataset_id)
            model_dict = info.get("retrieval_model_dict")
            stored = model_dict if isinstance(model_dict, dict) else None
            technique = self._datasets.known_technique(dataset_id, info)
        return resolve_retrieval_model(
            retrieval_model,
            dataset_model=stored,
            technique=technique,
            top_k=top_k,
            score_threshold=score_threshold,
        )

    def _with_metadata_filter(
        self, model: Mapping[str, Any], metadata_filter: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The complete retrieval model, now carrying ``metadata_filtering_conditions``."""
        return {**model, "metadata_filtering_conditions": metadata_conditions(metadata_filter)}


# -- helpers ------------------------------------------------------------------------------


class _DocumentLookups:
    """The reads `DocumentNames` looks documents up with: one attempt each, to a deadline."""

    def __init__(self, client: RetrieveAPI) -> None:
        self._client = client

    def deadline(self, seconds: float) -> float:
        return self._client._clock.monotonic() + seconds

    async def list_page(self, dataset_id: str, page: int, deadline: float) -> DocumentList:
        return await self._client._source.list_page(
            dataset_id, page=page, limit=LIST_PAGE_SIZE, deadline=deadline
        )

    async def detail(self, dataset_id: str, document_id: str, deadline: float) -> DifyDocument:
        client = self._client
        url = client._url("datasets", dataset_id, "documents", document_id)
        payload = await client._transport.json(
            "GET", url, idempotent=True, deadline=deadline, retry=False
        )
        return client._parse(DifyDocument, payload, url, "GET")


def _looks_like_document_id(value: str | None) -> TypeGuard[str]:
    # Only what Dify's document route matches is looked up (a hostile id is left alone).
    try:
        check_document_id(value)
    except ValueError:
        return False
    return True


def _labelled(chunk: RetrievedChunk, info: DocumentInfo | None) -> RetrievedChunk:
    if info is None:
        return chunk
    update: dict[str, Any] = {"document_name": info.name}
    if info.doc_metadata and "doc_metadata" not in chunk.metadata:
        update["metadata"] = {**chunk.metadata, "doc_metadata": dict(info.doc_metadata)}
    return chunk.model_copy(update=update)
