"""Ingestion-pipeline components: upload nodes to Dify, then wait until Dify has indexed them.

::

    client = DifyKnowledgeClient()  # one client for the uploader, the waiter and the retriever
    pipeline = IngestionPipeline(
        transformations=[
            DifyDocumentUploader(dataset_id, client=client),
            DifyIndexingWaiter(client=client),
        ]
    )
    nodes = pipeline.run(documents=documents)  # or: await pipeline.arun(...)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any, Literal

import llama_index.core.instrumentation as instrument
from llama_index.core.schema import BaseNode, MetadataMode, TransformComponent
from pydantic import Field, PrivateAttr, SecretStr

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools._base.shown import FAILED_SHOWN, error_text
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.bridge import ClientBridge
from dify_ingest_tools.llama_index._common import (
    BATCH_KEY,
    DATASET_ID_KEY,
    DOCUMENT_ID_KEY,
    ERROR_KEY,
    STATUS_KEY,
    VERDICT_KEY,
    AnyClient,
    EventRelay,
    HoldsClient,
    Work,
    connect,
)
from dify_ingest_tools.models.created import BatchRef, CreatedDocument
from dify_ingest_tools.models.status import BatchIndexingStatus, Verdict
from dify_ingest_tools.readiness.policy import OnEmpty

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DifyDocumentUploader", "DifyIndexingWaiter"]

logger = logging.getLogger("dify_ingest_tools")

# `__call__` gets a span from DispatcherSpanMixin (it implements an abstract method); `acall`
# is given one here, so async runs nest their events under the component too.
dispatcher = instrument.get_dispatcher(__name__)  # type: ignore[attr-defined]

OnFailure = Literal["raise", "drop", "mark"]

# The key `to_dict()` adds; see `_DifyComponent.to_dict`.
_RUN_MARKER = "cache_token"


class _DifyComponent(HoldsClient, TransformComponent):
    """A transform talking to Dify: the client lives in private attributes, never in fields.

    `IngestionPipeline` hashes ``to_dict()`` (the pydantic fields) to find cached outputs and
    may persist them; ``to_json()`` serialises the same fields. Only non-secret settings are
    fields: the client, and with it the API key, stays private.
    """

    _bridge: ClientBridge = PrivateAttr()
    _owns_client: bool = PrivateAttr(default=False)

    def _connect(
        self, client: AnyClient | None, api_key: str | SecretStr | None, base_url: str | None
    ) -> None:
        self._bridge, self._owns_client = connect(client, api_key, base_url)

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """The settings (no key), plus a ``cache_token`` that is new on every call.

        `IngestionPipeline` looks its cache up by a hash of the input nodes and of this dict.
        Uploading and waiting act on (and observe) a live server, so a run must never be
        answered from the cache: a cache hit would return the nodes of an earlier run and
        silently skip the upload. The fresh token makes every lookup miss. To skip documents
        that did not change, give the pipeline a ``docstore``: its de-duplication runs before
        the transformations and is explicit.
        """
        data = super().to_dict(**kwargs)
        data[_RUN_MARKER] = uuid.uuid4().hex
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Self:
        """Rebuild from `to_dict` output; pass ``client=`` or ``api_key=`` again (or use the
        ``DIFY_API_KEY`` environment variable): the key is never serialised."""
        settings = {key: value for key, value in data.items() if key != _RUN_MARKER}
        return super().from_dict(settings, **kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        # BaseComponent would drop the client with a log line and rebuild the component in the
        # worker from the environment: another client, another key, and uploads the
        # retriever's gate never hears of. Refuse instead, saying what to do.
        raise TypeError(
            f"{type(self).__name__} holds a live Dify client (an HTTP session, a worker thread "
            "and the API key) and cannot be pickled. IngestionPipeline.run(num_workers=N) "
            "pickles every transformation into N worker processes: run the pipeline without "
            "num_workers (uploads and waits are I/O: they already run concurrently, see "
            "max_concurrency)."
        )


class DifyDocumentUploader(_DifyComponent):
    """Uploads the incoming nodes (or documents) to Dify: one Dify document per source file.

    Nodes are grouped by their name, ``node.metadata[name_key]`` (``file_name``, as
    ``SimpleDirectoryReader`` sets it), and each group becomes **one** Dify document of that
    name, via ``create-by-text``: the texts of its nodes (without their metadata), in input
    order, joined by a blank line. So the pages of one PDF, which ``SimpleDirectoryReader``
    reads as one `Document` per page sharing a ``file_name``, become one Dify document, as
    the file does in Dify's own console. Blank pages add nothing. A node without a name is a
    document of its own, named after a hash of its text. Dify chunks and indexes each
    document itself: put no splitter before the uploader (with ``chunk_overlap``, the
    overlapping text would be uploaded twice).

    Dify's create is an upsert by name: uploading a name again re-indexes that document
    instead of adding a copy (so a file uploaded again replaces its previous version).

    Every node is returned with its document's ``dify_dataset_id``, ``dify_document_id`` and
    ``dify_batch`` in its metadata (hidden from embeddings and LLM prompts), ready for
    `DifyIndexingWaiter`; the pages of one file share them.

    Every run uploads: the component never matches `IngestionPipeline`'s cache (see
    `to_dict`). It cannot be pickled, so run the pipeline without ``num_workers``.

    Args:
        dataset_id: The knowledge base to upload into.
        api_key: A Knowledge API key (default: ``DIFY_API_KEY``). Kept in the client, never
            in the component's fields, ``to_dict()``, ``to_json()`` or repr.
        base_url: The API root ending in ``/v1`` (default: ``DIFY_API_BASE_URL``).
        client: A `DifyKnowledgeClient` (sync and async runs) or an
            `AsyncDifyKnowledgeClient` (``arun`` only) instead of ``api_key`` / ``base_url``.
            Share it with `DifyIndexingWaiter` and `DifyRetriever`: the retriever then waits
            for what this uploader sent before it searches.
        name_key: The metadata key holding the document name (nodes sharing it become one
            document); None names every node by a hash of its text.
        max_concurrency: Uploads in flight at once.
        indexing_technique: ``"high_quality"`` or ``"economy"`` (default: the dataset's own).
        process_rule: Dify's chunking rules (default ``{"mode": "automatic"}``).
        doc_form: ``text_model``, ``hierarchical_model`` or ``qa_model``.
    """

    dataset_id: str
    name_key: str | None = "file_name"
    max_concurrency: int = Field(default=4, ge=1)
    indexing_technique: str | None = None
    process_rule: dict[str, Any] | None = None
    doc_form: str | None = None

    def __init__(
        self,
        dataset_id: str,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        client: AnyClient | None = None,
        name_key: str | None = "file_name",
        max_concurrency: int = 4,
        indexing_technique: str | None = None,
        process_rule: Mapping[str, Any] | None = None,
        doc_form: str | None = None,
    ) -> None:
        super().__init__(
            dataset_id=check_dataset_id(dataset_id),
            name_key=name_key,
            max_concurrency=max_concurrency,
            indexing_technique=indexing_technique,
            process_rule=dict(process_rule) if process_rule is not None else None,
            doc_form=doc_form,
        )
        self._connect(client, api_key, base_url)

    @classmethod
    def class_name(cls) -> str:
        return "DifyDocumentUploader"

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        """Upload the nodes (blocking); needs a `DifyKnowledgeClient`."""
        uploads = self._prepare(nodes)
        return self._record(nodes, uploads, self._bridge.call(self._upload(uploads)))

    @dispatcher.span
    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        """Upload the nodes, ``max_concurrency`` documents at a time."""
        uploads = self._prepare(nodes)
        return self._record(nodes, uploads, await self._bridge.acall(self._upload(uploads)))

    def _prepare(self, nodes: Sequence[BaseNode]) -> list[_Upload]:
        """One `_Upload` per document name, in order; every check runs before the first upload."""
        uploads: dict[str, _Upload] = {}
        for node in nodes:
            text = node.get_content(metadata_mode=MetadataMode.NONE)
            name, named = self._name(node, text)
            upload = uploads.setdefault(name, _Upload(name))
            upload.nodes.append(node)
            # A hash name stands for its text: the same text twice is one document, once.
            if text.strip() and (named or not upload.texts):
                upload.texts.append(text)
        for upload in uploads.values():
            if not upload.texts:
                ids = ", ".join(node.node_id for node in upload.nodes)
                raise ValueError(
                    f"node(s) {ids} have no text to upload to Dify dataset {self.dataset_id}"
                    + (f" as {upload.name!r}" if len(upload.nodes) > 1 else "")
                )
        return list(uploads.values())

    def _name(self, node: BaseNode, text: str) -> tuple[str, bool]:
        """The node's document name, and whether it came from ``name_key`` (not a hash)."""
        if self.name_key is not None:
            value = node.metadata.get(self.name_key)
            if isinstance(value, str) and value.strip():
                return value, True
        return f"{hashlib.sha256(text.encode('utf-8')).hexdigest()[:20]}.txt", False

    def _upload(self, uploads: list[_Upload]) -> Work[list[CreatedDocument | BaseException]]:
        async def work(client: AsyncDifyKnowledgeClient) -> list[CreatedDocument | BaseException]:
            gate = asyncio.Semaphore(self.max_concurrency)

            async def one(upload: _Upload) -> CreatedDocument:
                async with gate:
                    return await client.create_document_by_text(
                        self.dataset_id,
                        upload.name,
                        upload.text,
                        indexing_technique=self.indexing_technique,
                        process_rule=self.process_rule,
                        doc_form=self.doc_form,
                    )

            # Every upload settles before anything is raised: cancelling a create in flight
            # could leave a document in Dify that no node records.
            return await asyncio.gather(
                *(one(upload) for upload in uploads), return_exceptions=True
            )

        return work

    def _record(
        self,
        nodes: Sequence[BaseNode],
        uploads: list[_Upload],
        results: list[CreatedDocument | BaseException],
    ) -> list[BaseNode]:
        errors: list[BaseException] = []
        for upload, result in zip(uploads, results, strict=True):
            if isinstance(result, BaseException):
                errors.append(result)
                continue
            for node in upload.nodes:
                node.metadata[DATASET_ID_KEY] = result.dataset_id
                node.metadata[DOCUMENT_ID_KEY] = result.document_id
                node.metadata[BATCH_KEY] = result.batch
                _hide(node, DATASET_ID_KEY, DOCUMENT_ID_KEY, BATCH_KEY)
        if errors:
            logger.error(
                "%d of %d upload(s) to Dify dataset %s failed (the others were uploaded and "
                "their nodes carry their dify_* metadata): %s",
                len(errors),
                len(results),
                self.dataset_id,
                "; ".join(f"{type(error).__name__}: {error}" for error in errors),
            )
            raise errors[0]
        return list(nodes)


@dataclass
class _Upload:
    """One Dify document to create: its name, the nodes it holds and their texts."""

    name: str
    nodes: list[BaseNode] = dataclass_field(default_factory=list)
    texts: list[str] = dataclass_field(default_factory=list)

    @property
    def text(self) -> str:
        # A blank line between the parts: Dify's automatic chunking splits there.
        return "\n\n".join(part.strip("\n") for part in self.texts)


class DifyIndexingWaiter(_DifyComponent):
    """Waits until Dify has indexed the nodes `DifyDocumentUploader` uploaded.

    The batches come from each node's ``dify_dataset_id`` / ``dify_batch`` metadata and are
    waited for together, through the client's monitor (shared polls, one dataset sweep for
    large runs). Each returned node gets, for its document:

    * ``dify_indexing_status``: Dify's own ``indexing_status`` (``"completed"``, or with
      ``on_failure="mark"`` ``"error"``), as Dify names it;
    * ``dify_indexing_verdict``: this library's reading of it, ``"ready"`` or ``"failed"``
      (the `BatchIndexingStatus.verdict` vocabulary);
    * ``dify_indexing_error``: Dify's error text, for a failed document.

    While it waits, every `IndexingEvent` is dispatched as a LlamaIndex instrumentation event
    (`DifyIndexingEvent` and its subclasses, see ``dify_ingest_tools.llama_index.events``).

    Args:
        api_key: A Knowledge API key (default: ``DIFY_API_KEY``); never in the fields.
        base_url: The API root ending in ``/v1`` (default: ``DIFY_API_BASE_URL``).
        client: The client the uploader used (recommended), instead of ``api_key``.
        timeout: Seconds for the whole wait; when it passes, `IndexingTimeoutError` is
            raised whatever ``on_failure`` says (Dify keeps indexing server-side).
        poll_interval: First gap between status polls, and the gap after a change.
        max_poll_interval: Longest gap while nothing changes.
        stall_timeout: Raise `IndexingStalledError` when nothing changes for this long.
        on_failure: What to do with nodes whose document ended in ``error``: ``"raise"``
            `IndexingFailedError` (default; the other waits stop), ``"drop"`` them from the
            output (logged as a warning) or ``"mark"`` them and keep them.
        progress: Also draw ``tqdm`` progress bars.
        on_empty: A document Dify indexed with 0 chunks (empty text: nothing will be found):
            ``"raise"`` `IndexingEmptyError` (default), ``"warn"`` (log) or ``"accept"``.
        summaries: Also wait for the documents' summaries (summary indexing datasets).
    """

    timeout: float = Field(default=600.0, gt=0)
    poll_interval: float = Field(default=1.0, gt=0)
    max_poll_interval: float = Field(default=10.0, gt=0)
    stall_timeout: float | None = None
    on_failure: OnFailure = "raise"
    progress: bool = False
    on_empty: OnEmpty = "raise"
    summaries: bool = False

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        client: AnyClient | None = None,
        timeout: float = 600.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        stall_timeout: float | None = None,
        on_failure: OnFailure = "raise",
        progress: bool = False,
        on_empty: OnEmpty = "raise",
        summaries: bool = False,
    ) -> None:
        super().__init__(
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            stall_timeout=stall_timeout,
            on_failure=on_failure,
            progress=progress,
            on_empty=on_empty,
            summaries=summaries,
        )
        self._connect(client, api_key, base_url)

    @classmethod
    def class_name(cls) -> str:
        return "DifyIndexingWaiter"

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        """Wait for the nodes' batches (blocking); needs a `DifyKnowledgeClient`."""
        refs = _batches(nodes)
        if not refs:
            return []
        return self._settle(nodes, self._bridge.call(self._wait(refs, EventRelay(None))))

    @dispatcher.span
    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        """Wait for the nodes' batches."""
        refs = _batches(nodes)
        if not refs:
            return []
        relay = EventRelay(asyncio.get_running_loop())
        return self._settle(nodes, await self._bridge.acall(self._wait(refs, relay)))

    def _wait(self, refs: list[BatchRef], relay: EventRelay) -> Work[list[BatchIndexingStatus]]:
        async def work(client: AsyncDifyKnowledgeClient) -> list[BatchIndexingStatus]:
            return await client.wait_for_batches(
                refs,
                timeout=self.timeout,
                poll_interval=self.poll_interval,
                max_poll_interval=max(self.poll_interval, self.max_poll_interval),
                stall_timeout=self.stall_timeout,
                raise_on_error=self.on_failure == "raise",
                on_empty=self.on_empty,
                summaries=self.summaries,
                on_event=relay,
                progress=self.progress,
            )

        return work

    def _settle(
        self, nodes: Sequence[BaseNode], statuses: list[BatchIndexingStatus]
    ) -> list[BaseNode]:
        by_batch = {(s.dataset_id.lower(), s.batch): s for s in statuses}
        kept: list[BaseNode] = []
        dropped: list[str] = []
        for node in nodes:
            status = by_batch[
                (str(node.metadata[DATASET_ID_KEY]).lower(), node.metadata[BATCH_KEY])
            ]
            verdict, dify_status, error = _verdict(status, node.metadata.get(DOCUMENT_ID_KEY))
            if verdict == "failed" and self.on_failure == "drop":
                dropped.append(f"{node.node_id} ({error})")
                continue
            node.metadata[STATUS_KEY] = dify_status
            node.metadata[VERDICT_KEY] = verdict
            _hide(node, STATUS_KEY, VERDICT_KEY)
            if verdict == "failed":
                node.metadata[ERROR_KEY] = error
                _hide(node, ERROR_KEY)
            else:
                node.metadata.pop(ERROR_KEY, None)
            kept.append(node)
        if dropped:
            logger.warning(
                "dropped %d node(s) whose Dify document failed to index: %s",
                len(dropped),
                "; ".join(dropped),
            )
        return kept


def _batches(nodes: Sequence[BaseNode]) -> list[BatchRef]:
    """The distinct batches of the nodes, in order; every node must have been uploaded."""
    refs: dict[tuple[str, str], BatchRef] = {}
    for node in nodes:
        dataset_id = node.metadata.get(DATASET_ID_KEY)
        batch = node.metadata.get(BATCH_KEY)
        if not isinstance(dataset_id, str) or not isinstance(batch, str):
            raise ValueError(
                f"node {node.node_id} has no {DATASET_ID_KEY!r} / {BATCH_KEY!r} metadata: put "
                "DifyDocumentUploader before DifyIndexingWaiter (or set both keys yourself)"
            )
        refs.setdefault((dataset_id.lower(), batch), BatchRef(dataset_id=dataset_id, batch=batch))
    return list(refs.values())


def _verdict(status: BatchIndexingStatus, document_id: object) -> tuple[Verdict, str | None, str]:
    """The node's verdict, Dify's ``indexing_status`` and the error text, for its document
    (or, when the batch does not report that document, for the batch: a status only when
    all its documents agree)."""
    if isinstance(document_id, str):
        try:
            doc = status.document(document_id)
        except KeyError:
            pass
        else:
            if doc.is_failed:
                return "failed", str(doc.indexing_status), error_text(doc.error)
            if doc.is_completed:
                return "ready", str(doc.indexing_status), ""
    statuses = {str(doc.indexing_status) for doc in status.documents}
    shared = statuses.pop() if len(statuses) == 1 else None
    if status.is_failed:
        failed = status.failed_documents[:FAILED_SHOWN]
        return "failed", shared, "; ".join(error_text(doc.error) for doc in failed)
    return status.verdict, shared, ""


def _hide(node: BaseNode, *keys: str) -> None:
    """Keep bookkeeping keys out of embedding inputs and LLM prompts."""
    for excluded in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
        excluded.extend(key for key in keys if key not in excluded)
