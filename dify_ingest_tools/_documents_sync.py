"""`DocumentsSyncAPI`: the blocking twins of `DocumentsAPI`, a mixin of `DifyKnowledgeClient`.

One-line forwards through the client's worker loop; the documentation lives on the async
methods.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Unpack

from .models import BatchIndexingStatus, CreatedDocument
from .models_documents import (
    DifySegment,
    DocumentAction,
    MetadataEntry,
    MetadataField,
    MetadataFieldList,
    MetadataType,
    MetadataValue,
    SegmentList,
    UpdatedDocument,
)
from .waiting import WaitKwargs

if TYPE_CHECKING:
    from .client import AsyncDifyKnowledgeClient, FileInput

__all__ = ["DocumentsSyncAPI"]

T = TypeVar("T")


class DocumentsSyncAPI:
    """Blocking document maintenance: updates, scoped waits, metadata, segments, status."""

    if TYPE_CHECKING:
        _async: AsyncDifyKnowledgeClient

        def _run(self, coro: Coroutine[Any, Any, T]) -> T: ...

    def document_batch(self, dataset_id: str, document_id: str) -> str | None:
        """See `AsyncDifyKnowledgeClient.document_batch`."""
        return self._async.document_batch(dataset_id, document_id)

    def update_document_by_text(
        self, dataset_id: str, document_id: str, **options: Any
    ) -> UpdatedDocument:
        """See `AsyncDifyKnowledgeClient.update_document_by_text`."""
        return self._run(self._async.update_document_by_text(dataset_id, document_id, **options))

    def update_document_by_file(
        self,
        dataset_id: str,
        document_id: str,
        file: FileInput | None = None,
        **options: Any,
    ) -> UpdatedDocument:
        """See `AsyncDifyKnowledgeClient.update_document_by_file`."""
        return self._run(
            self._async.update_document_by_file(dataset_id, document_id, file, **options)
        )

    def wait_for_documents(
        self,
        dataset_id: str,
        document_ids: str | CreatedDocument | Iterable[str | CreatedDocument],
        *,
        batch: str | None = None,
        **options: Unpack[WaitKwargs],
    ) -> BatchIndexingStatus:
        """See `AsyncDifyKnowledgeClient.wait_for_documents`. Ctrl-C stops polling at once."""
        if not isinstance(document_ids, (str, CreatedDocument)):
            document_ids = list(document_ids)
        return self._run(
            self._async.wait_for_documents(dataset_id, document_ids, batch=batch, **options)
        )

    def list_metadata_fields(self, dataset_id: str) -> MetadataFieldList:
        """See `AsyncDifyKnowledgeClient.list_metadata_fields`."""
        return self._run(self._async.list_metadata_fields(dataset_id))

    def create_metadata_field(
        self, dataset_id: str, name: str, type: MetadataType = "string"
    ) -> MetadataField:
        """See `AsyncDifyKnowledgeClient.create_metadata_field`."""
        return self._run(self._async.create_metadata_field(dataset_id, name, type))

    def rename_metadata_field(self, dataset_id: str, field_id: str, name: str) -> MetadataField:
        """See `AsyncDifyKnowledgeClient.rename_metadata_field`."""
        return self._run(self._async.rename_metadata_field(dataset_id, field_id, name))

    def delete_metadata_field(self, dataset_id: str, field_id: str) -> None:
        """See `AsyncDifyKnowledgeClient.delete_metadata_field`."""
        self._run(self._async.delete_metadata_field(dataset_id, field_id))

    def ensure_metadata_fields(
        self, dataset_id: str, types: Mapping[str, MetadataType]
    ) -> dict[str, MetadataField]:
        """See `AsyncDifyKnowledgeClient.ensure_metadata_fields`."""
        return self._run(self._async.ensure_metadata_fields(dataset_id, types))

    def set_document_metadata(
        self,
        dataset_id: str,
        document_id: str,
        values: Mapping[str, MetadataValue],
        **options: Any,
    ) -> None:
        """See `AsyncDifyKnowledgeClient.set_document_metadata`."""
        self._run(self._async.set_document_metadata(dataset_id, document_id, values, **options))

    def set_documents_metadata(
        self,
        dataset_id: str,
        values: Mapping[str, Mapping[str, MetadataValue]],
        **options: Any,
    ) -> None:
        """See `AsyncDifyKnowledgeClient.set_documents_metadata`."""
        self._run(self._async.set_documents_metadata(dataset_id, values, **options))

    def get_document_metadata(self, dataset_id: str, document_id: str) -> list[MetadataEntry]:
        """See `AsyncDifyKnowledgeClient.get_document_metadata`."""
        return self._run(self._async.get_document_metadata(dataset_id, document_id))

    def list_builtin_metadata_fields(self, dataset_id: str) -> dict[str, str]:
        """See `AsyncDifyKnowledgeClient.list_builtin_metadata_fields`."""
        return self._run(self._async.list_builtin_metadata_fields(dataset_id))

    def set_builtin_metadata(self, dataset_id: str, enabled: bool) -> None:
        """See `AsyncDifyKnowledgeClient.set_builtin_metadata`."""
        self._run(self._async.set_builtin_metadata(dataset_id, enabled))

    def list_segments(self, dataset_id: str, document_id: str, **options: Any) -> SegmentList:
        """See `AsyncDifyKnowledgeClient.list_segments`."""
        return self._run(self._async.list_segments(dataset_id, document_id, **options))

    def all_segments(
        self,
        dataset_id: str,
        document_id: str,
        *,
        keyword: str | None = None,
        status: str | Sequence[str] | None = None,
    ) -> list[DifySegment]:
        """See `AsyncDifyKnowledgeClient.all_segments`."""
        return self._run(
            self._async.all_segments(dataset_id, document_id, keyword=keyword, status=status)
        )

    def get_segment(self, dataset_id: str, document_id: str, segment_id: str) -> DifySegment:
        """See `AsyncDifyKnowledgeClient.get_segment`."""
        return self._run(self._async.get_segment(dataset_id, document_id, segment_id))

    def set_documents_status(
        self,
        dataset_id: str,
        action: DocumentAction,
        document_ids: Iterable[str],
        **options: Any,
    ) -> None:
        """See `AsyncDifyKnowledgeClient.set_documents_status`."""
        self._run(
            self._async.set_documents_status(
                dataset_id,
                action,
                [document_ids] if isinstance(document_ids, str) else list(document_ids),
                **options,
            )
        )

    def enable_documents(
        self, dataset_id: str, document_ids: Iterable[str], **options: Any
    ) -> None:
        """See `AsyncDifyKnowledgeClient.enable_documents`."""
        self.set_documents_status(dataset_id, "enable", document_ids, **options)

    def disable_documents(
        self, dataset_id: str, document_ids: Iterable[str], **options: Any
    ) -> None:
        """See `AsyncDifyKnowledgeClient.disable_documents`."""
        self.set_documents_status(dataset_id, "disable", document_ids, **options)

    def archive_documents(
        self, dataset_id: str, document_ids: Iterable[str], **options: Any
    ) -> None:
        """See `AsyncDifyKnowledgeClient.archive_documents`."""
        self.set_documents_status(dataset_id, "archive", document_ids, **options)

    def unarchive_documents(
        self, dataset_id: str, document_ids: Iterable[str], **options: Any
    ) -> None:
        """See `AsyncDifyKnowledgeClient.unarchive_documents`."""
        self.set_documents_status(dataset_id, "un_archive", document_ids, **options)
