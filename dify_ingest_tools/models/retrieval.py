"""`RetrievedChunk`: one hit of a knowledge base's retrieve endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RetrievedChunk(BaseModel):
    """One hit of ``POST /datasets/{id}/retrieve``.

    ``score`` is None when Dify sent none; keyword search on economy datasets always scores
    0.0, which is a real score. Dify's records carry the segment's document with every field
    null (only ``segment.document_id`` is set), so the client's ``retrieve`` fills
    ``document_name`` and ``metadata["doc_metadata"]`` (the document's metadata fields as
    ``{name: value}``) from the document list or detail, cached; ``document_name`` stays None
    only when that lookup fails.
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    content: str
    score: float | None = None
    document_id: str | None = None
    document_name: str | None = None
    segment_id: str | None = None
    position: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RetrievedChunk:
        segment = record.get("segment")
        if isinstance(segment, Mapping):
            document = segment.get("document")
            document = document if isinstance(document, Mapping) else {}
            metadata = {
                key: segment[key]
                for key in ("keywords", "word_count", "tokens", "hit_count", "answer")
                if segment.get(key) is not None
            }
            if record.get("child_chunks"):
                metadata["child_chunks"] = record["child_chunks"]
            if document.get("doc_metadata"):
                metadata["doc_metadata"] = document["doc_metadata"]
            return cls(
                content=segment.get("content") or "",
                score=record.get("score"),
                document_id=segment.get("document_id") or document.get("id"),
                document_name=document.get("name"),
                segment_id=segment.get("id"),
                position=segment.get("position"),
                metadata=metadata,
            )
        # External knowledge bases answer {content, title, score, metadata} (contract §d).
        return cls(
            content=str(record.get("content") or ""),
            score=record.get("score"),
            document_name=record.get("title"),
            metadata=dict(record.get("metadata") or {}),
        )
