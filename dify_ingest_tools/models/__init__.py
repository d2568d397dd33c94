"""Pydantic data: Dify's wire models and the one `Outcome` vocabulary of how a wait ended."""

from dify_ingest_tools.models.documents import (
    DifySegment,
    MetadataEntry,
    MetadataField,
    MetadataFieldList,
    SegmentList,
    UpdatedDocument,
)
from dify_ingest_tools.models.status import (
    BatchIndexingStatus,
    BatchRef,
    CreatedDocument,
    DifyDocument,
    DocumentIndexingStatus,
    DocumentList,
    IndexingStatus,
    IngestResult,
    Outcome,
    PipelineRun,
    RetrievedChunk,
)

__all__ = [
    "BatchIndexingStatus",
    "BatchRef",
    "CreatedDocument",
    "DifyDocument",
    "DifySegment",
    "DocumentIndexingStatus",
    "DocumentList",
    "IndexingStatus",
    "IngestResult",
    "MetadataEntry",
    "MetadataField",
    "MetadataFieldList",
    "Outcome",
    "PipelineRun",
    "RetrievedChunk",
    "SegmentList",
    "UpdatedDocument",
]
