"""What the resource mixins of `AsyncDifyKnowledgeClient` use of the client, declared once.

Every mixin (`uploads_api`, `documents`, `metadata_api`, ...) inherits `ClientHost`. The
composition root (`async_client`) and the mixins define what it declares, and the type
checker holds each definition to this one declaration, so a signature that drifts fails
``mypy --strict``. At run time the class is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from collections.abc import Iterable

    from typing_extensions import Unpack
    from yarl import URL

    from dify_ingest_tools._base.clock import Clock
    from dify_ingest_tools._http.lifecycle import Lifecycle
    from dify_ingest_tools._http.retry import RetryPolicy
    from dify_ingest_tools._http.transport import Transport
    from dify_ingest_tools.client.datasets import DatasetSettings
    from dify_ingest_tools.client.doc_names import DocumentNames
    from dify_ingest_tools.client.ledger_hook import LedgerRecorder
    from dify_ingest_tools.client.pending import PendingUploads
    from dify_ingest_tools.models.created import BatchLike, CreatedDocument
    from dify_ingest_tools.models.status import BatchIndexingStatus
    from dify_ingest_tools.readiness.heal import Uploads
    from dify_ingest_tools.readiness.monitor import IndexingMonitor
    from dify_ingest_tools.readiness.status_source import HTTPStatusSource
    from dify_ingest_tools.readiness.wait_options import WaitKwargs

_ModelT = TypeVar("_ModelT", bound=BaseModel)


class ClientHost:
    """The client's state and calls that its resource mixins share."""

    if TYPE_CHECKING:
        _transport: Transport
        _lifecycle: Lifecycle
        _clock: Clock
        _source: HTTPStatusSource
        _pending: PendingUploads
        _uploads: Uploads
        _ledger: LedgerRecorder | None
        _datasets: DatasetSettings
        _doc_names: DocumentNames
        retry_policy: RetryPolicy
        retry_creates: bool
        max_file_size: int | None

        @property
        def monitor(self) -> IndexingMonitor: ...

        def _url(self, *parts: str) -> URL: ...

        def _parse(self, model: type[_ModelT], payload: Any, url: URL, method: str) -> _ModelT: ...

        async def _readable_dataset(self, dataset_id: str) -> dict[str, Any]: ...

        async def _dataset_technique(self, dataset_id: str) -> str | None: ...

        async def wait_for_indexing(
            self, dataset_id: str, batch: str, **options: Unpack[WaitKwargs]
        ) -> BatchIndexingStatus: ...

        async def wait_for_batches(
            self, batches: Iterable[BatchLike], **options: Unpack[WaitKwargs]
        ) -> list[BatchIndexingStatus]: ...

        async def wait_for_documents(
            self,
            dataset_id: str,
            document_ids: str | CreatedDocument | Iterable[str | CreatedDocument],
            *,
            batch: str | None = None,
            **options: Unpack[WaitKwargs],
        ) -> BatchIndexingStatus: ...
