"""Ingestion runnables: `DifyDocumentUploader` then `DifyIndexingWaiter`, an LCEL chain.

``uploader | waiter`` turns LangChain documents into indexed Dify documents; the waiter
reports progress as LangChain custom events (see `dify_ingest_tools.langchain.events`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, cast

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import Field, field_validator

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.events import EventCallback, IndexingEvent
from dify_ingest_tools.langchain._common import DifyConnection, WaitSettings
from dify_ingest_tools.langchain.events import (
    acall_with_events,
    adispatch_indexing_event,
    call_with_events,
    dispatch_indexing_event,
)
from dify_ingest_tools.models.created import BatchRef, CreatedDocument, as_batch_ref
from dify_ingest_tools.models.status import BatchIndexingStatus

__all__ = ["DifyDocumentUploader", "DifyIndexingWaiter", "UploaderInput", "WaiterInput"]

UploaderInput: TypeAlias = Document | Sequence[Document]
WaiterInput: TypeAlias = (
    CreatedDocument
    | BatchRef
    | tuple[str, str]
    | Sequence[CreatedDocument | BatchRef | tuple[str, str]]
)


class DifyDocumentUploader(
    DifyConnection, RunnableSerializable[UploaderInput, list[CreatedDocument]]
):
    """Uploads LangChain documents to a Dify knowledge base, one Dify document each.

    Input: a `Document` or a list of them. Output: one `CreatedDocument` per input, in input
    order; each carries the ``batch`` that `DifyIndexingWaiter` (or the retriever's gate)
    waits on. Uploading only starts indexing: pipe into `DifyIndexingWaiter` to wait.

    The Dify document name is the first non-empty metadata value among ``name_keys``
    (default ``source``, then ``name``), else ``doc-<sha1 of the text[:12]>.txt``. Dify
    creates by name as an upsert, so uploading the same name again re-indexes that document.
    Names repeated within one input (e.g. the pages of one PDF, which share their ``source``)
    get `` #2``, `` #3``, ... so every input document stays a separate Dify document.

    Example:
        >>> uploader = DifyDocumentUploader(dataset_id="...", client=client)  # doctest: +SKIP
        >>> chain = uploader | DifyIndexingWaiter(client=client)  # doctest: +SKIP
        >>> statuses = chain.invoke(docs)  # doctest: +SKIP
    """

    dataset_id: str
    """The knowledge base (dataset) UUID to upload into."""
    name_keys: tuple[str, ...] = ("source", "name")
    """Metadata keys tried, in order, for the Dify document name."""
    indexing_technique: str | None = None
    """``"high_quality"`` or ``"economy"``; by default the dataset's own setting."""
    process_rule: dict[str, Any] | None = None
    """Dify's chunking rules; by default ``{"mode": "automatic"}``."""
    doc_form: str | None = None
    """``text_model`` (Dify's default), ``hierarchical_model`` or ``qa_model``."""
    max_concurrency: int = Field(default=4, ge=1)
    """At most this many uploads in flight at once."""

    @field_validator("dataset_id")
    @classmethod
    def _check_dataset_id(cls, value: str) -> str:
        return check_dataset_id(value)

    @field_validator("name_keys", mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def names(self, documents: Sequence[Document]) -> list[str]:
        """The Dify names the documents get (unique within the call)."""
        names: list[str] = []
        seen: dict[str, int] = {}
        for document in documents:
            name = _base_name(document, self.name_keys)
            seen[name] = seen.get(name, 0) + 1
            names.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
        return names

    async def _upload(
        self, client: AsyncDifyKnowledgeClient, documents: list[Document]
    ) -> list[CreatedDocument]:
        gate = asyncio.Semaphore(self.max_concurrency)

        async def upload(document: Document, name: str) -> CreatedDocument:
            async with gate:
                return await client.create_document_by_text(
                    self.dataset_id,
                    name,
                    document.page_content,
                    indexing_technique=self.indexing_technique,
                    process_rule=self.process_rule,
                    doc_form=self.doc_form,
                )

        tasks = [
            asyncio.ensure_future(upload(document, name))
            for document, name in zip(documents, self.names(documents), strict=True)
        ]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            # The first failure is raised; the uploads not yet sent are not sent.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _upload_sync(self, value: UploaderInput) -> list[CreatedDocument]:
        documents = _documents(value)
        return self._dify_bridge.call(lambda client: self._upload(client, documents))

    async def _upload_async(self, value: UploaderInput) -> list[CreatedDocument]:
        documents = _documents(value)
        return await self._dify_bridge.acall(lambda client: self._upload(client, documents))

    def invoke(
        self, input: UploaderInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[CreatedDocument]:
        return self._call_with_config(self._upload_sync, input, config)

    async def ainvoke(
        self, input: UploaderInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[CreatedDocument]:
        return await self._acall_with_config(self._upload_async, input, config)


class DifyIndexingWaiter(
    DifyConnection, WaitSettings, RunnableSerializable[WaiterInput, list[BatchIndexingStatus]]
):
    """Waits until uploads are indexed, reporting progress as LangChain custom events.

    Input: a `CreatedDocument`, a `BatchRef`, a ``(dataset_id, batch)`` pair, or a list of
    them (a list of `CreatedDocument` is what `DifyDocumentUploader` returns). Output: the
    final `BatchIndexingStatus` of each, in input order. All batches are watched at once
    through the client's monitor (shared polls, backoff, retries).

    While it waits, every `IndexingEvent` is dispatched as a custom event named
    ``dify_indexing_<kind>`` (``dify_indexing_progress``, ``dify_indexing_batch_completed``,
    ...; data: the event as JSON plus ``message``), so ``astream_events(version="v2")`` and
    any callback handler's ``on_custom_event`` see the progress. Events are dispatched from
    the caller's thread and run; a waiter invoked outside any run just waits.

    Raises (like ``wait_for_batches``): `IndexingFailedError` when a document fails (with
    ``raise_on_error=True``), `IndexingTimeoutError` after ``timeout``,
    `IndexingStalledError`, and API errors.
    """

    timeout: float = Field(default=600.0, gt=0)
    """Seconds the whole wait may take."""
    raise_on_error: bool = True
    """Raise on a failed document; with False, return once every document is terminal."""
    progress: bool = False
    """Also draw tqdm progress bars."""

    def _options(self, on_event: EventCallback) -> dict[str, Any]:
        return {
            **self.wait_options(),
            "timeout": self.timeout,
            "raise_on_error": self.raise_on_error,
            "progress": self.progress,
            "on_event": on_event,
        }

    def _wait_sync(
        self, value: WaiterInput, run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> list[BatchIndexingStatus]:
        refs = _batch_refs(value)

        def deliver(event: IndexingEvent) -> None:
            dispatch_indexing_event(event, config)

        return call_with_events(
            self._dify_bridge,
            lambda client, on_event: client.wait_for_batches(refs, **self._options(on_event)),
            deliver,
        )

    async def _wait_async(
        self,
        value: WaiterInput,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> list[BatchIndexingStatus]:
        refs = _batch_refs(value)

        async def deliver(event: IndexingEvent) -> None:
            await adispatch_indexing_event(event, config)

        return await acall_with_events(
            self._dify_bridge,
            lambda client, on_event: client.wait_for_batches(refs, **self._options(on_event)),
            deliver,
        )

    def invoke(
        self, input: WaiterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[BatchIndexingStatus]:
        return self._call_with_config(self._wait_sync, input, config)

    async def ainvoke(
        self, input: WaiterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[BatchIndexingStatus]:
        return await self._acall_with_config(self._wait_async, input, config)


def _base_name(document: Document, keys: Sequence[str]) -> str:
    metadata: Mapping[str, Any] = document.metadata or {}
    for key in keys:
        value = metadata.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    digest = hashlib.sha1(document.page_content.encode("utf-8"), usedforsecurity=False)
    return f"doc-{digest.hexdigest()[:12]}.txt"


def _documents(value: UploaderInput) -> list[Document]:
    documents = [value] if isinstance(value, Document) else list(value)
    for document in documents:
        if not isinstance(document, Document):
            raise TypeError(
                "DifyDocumentUploader takes a Document or a list of Documents, got "
                f"{type(document).__name__}"
            )
    return documents


def _batch_refs(value: WaiterInput) -> list[BatchRef]:
    if isinstance(value, (CreatedDocument, BatchRef)):
        return [value.ref if isinstance(value, CreatedDocument) else value]
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(p, str) for p in value):
        return [as_batch_ref(cast("tuple[str, str]", value))]
    if isinstance(value, (str, bytes)):
        raise TypeError(
            "DifyIndexingWaiter takes CreatedDocument / BatchRef objects (or a list of them), "
            "not a string: pass what DifyDocumentUploader returned"
        )
    items: Sequence[Any] = value  # as_batch_ref rejects anything else with a TypeError
    return [as_batch_ref(item) for item in items]
