"""Pydantic data: Dify's wire models and the one `Outcome` vocabulary of how a wait ended."""

from dify_ingest_tools.models.created import BatchRef, CreatedDocument, IngestResult, PipelineRun
from dify_ingest_tools.models.documents import (
    DifyDocument,
    DifySegment,
    DocumentList,
    MetadataEntry,
    MetadataField,
    MetadataFieldList,
    SegmentList,
    UpdatedDocument,
)
from dify_ingest_tools.models.outcome import Outcome
from dify_ingest_tools.models.retrieval import RetrievedChunk
from dify_ingest_tools.models.status import (
    BatchIndexingStatus,
    DocumentIndexingStatus,
    IndexingStatus,
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
