"""What a create returns, and the handles a wait takes: `BatchRef`, `CreatedDocument`,
`PipelineRun`, `IngestResult` (and `as_batch_ref`, which accepts any of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from dify_ingest_tools.models.status import (
    BatchIndexingStatus,
    DocumentIndexingStatus,
    OptionalStatus,
)


class BatchRef(BaseModel):
    """The handle of a creation batch: what ``indexing-status`` is polled with."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    dataset_id: str
    batch: str

    def __init__(self, dataset_id: str | None = None, batch: str | None = None, **data: Any):
        # Positional use reads naturally: BatchRef(dataset_id, batch).
        if dataset_id is not None:
            data["dataset_id"] = dataset_id
        if batch is not None:
            data["batch"] = batch
        super().__init__(**data)

    def __str__(self) -> str:
        return f"{self.dataset_id}/{self.batch}"


class CreatedDocument(BaseModel):
    """What ``create-by-text`` / ``create-by-file`` returned: one document and its batch.

    ``document`` is Dify's document object, verbatim. Create is an upsert by name: the same
    name returns the *existing* document id under a new batch and re-indexes it.
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    dataset_id: str
    document_id: str
    batch: str
    name: str
    indexing_status: OptionalStatus = None
    document: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def ref(self) -> BatchRef:
        return BatchRef(dataset_id=self.dataset_id, batch=self.batch)

    @property
    def raw(self) -> dict[str, Any]:
        """Alias of ``document``: Dify's document object as it was returned."""
        return self.document

    @classmethod
    def from_response(cls, dataset_id: str, payload: Mapping[str, Any]) -> CreatedDocument:
        document = payload["document"]
        return cls(
            dataset_id=dataset_id,
            document_id=document["id"],
            batch=str(payload["batch"]),
            name=document.get("name") or "",
            indexing_status=document.get("indexing_status"),
            document=dict(document),
        )


class PipelineRun(BaseModel):
    """What ``POST /datasets/{id}/pipeline/run`` started: the batch of a knowledge pipeline run.

    Dify creates one document per datasource item, all in one new batch, and answers at once
    (the pipeline runs in a worker): wait on it like any batch (`ref`, or the run itself in
    `wait_for_batches`).

    Attributes:
        dataset_id: The knowledge base.
        batch: The batch every document of the run belongs to.
        documents: One `CreatedDocument` per datasource item, in request order.
        raw: Dify's answer as it came (``batch``, ``dataset``, ``documents``).
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    dataset_id: str
    batch: str
    documents: tuple[CreatedDocument, ...] = ()
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def ref(self) -> BatchRef:
        """The run's batch, as the waits take it."""
        return BatchRef(dataset_id=self.dataset_id, batch=self.batch)

    @property
    def document_ids(self) -> list[str]:
        """The ids of the documents the run created, in request order."""
        return [document.document_id for document in self.documents]


class IngestResult(NamedTuple):
    """What a one-call ingest returns: the document created and the batch's final status.

    A named tuple (immutable), so both ``result.document`` / ``result.status`` and
    ``document, status = await client.create_document_by_text_and_wait(...)`` work.

    Attributes:
        document: The `CreatedDocument` the create returned (its ``batch`` is the one waited on).
        status: The batch's status when the wait ended: completed, or, with
            ``raise_on_error=False``, whatever terminal state it reached.
    """

    document: CreatedDocument
    status: BatchIndexingStatus

    @property
    def document_status(self) -> DocumentIndexingStatus | None:
        """This document's entry in ``status`` (None if the batch did not list it)."""
        wanted = self.document.document_id
        return next((d for d in self.status.documents if d.id == wanted), None)


BatchLike: TypeAlias = "BatchRef | CreatedDocument | PipelineRun | tuple[str, str]"


def as_batch_ref(value: BatchRef | CreatedDocument | PipelineRun | tuple[str, str]) -> BatchRef:
    """Normalise the accepted batch handles to a `BatchRef`."""
    if isinstance(value, BatchRef):
        return value
    if isinstance(value, (CreatedDocument, PipelineRun)):
        return value.ref
    if isinstance(value, tuple) and len(value) == 2:
        return BatchRef(dataset_id=value[0], batch=value[1])
    raise TypeError(
        "expected a BatchRef, a CreatedDocument, a PipelineRun or a (dataset_id, batch) tuple, "
        f"got {type(value).__name__}"
    )
