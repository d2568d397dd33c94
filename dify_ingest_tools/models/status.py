"""Typed, frozen snapshots of what Dify's Knowledge API returns.

Readiness is decided on ``indexing_status`` only: Dify's segment counters are ``0/0`` until the
``indexing`` stage, can be equal before the status flips, and a re-created document shows its
*old* counters and ``completed_at`` while it waits again (recordings 01c, 01e).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal, NamedTuple, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    computed_field,
)
from pydantic_core import core_schema

from dify_ingest_tools._base.shown import FAILED_SHOWN, ID_LIMIT, failures, shown

__all__ = [
    "MAX_BATCH_DOCUMENTS",
    "NOTHING_TO_FIND",
    "BatchIndexingStatus",
    "BatchLike",
    "BatchRef",
    "CreatedDocument",
    "DifyDocument",
    "DocumentIndexingStatus",
    "DocumentList",
    "IndexingStatus",
    "IndexingStatusPayload",
    "IngestResult",
    "PipelineRun",
    "RetrievedChunk",
    "StatusValue",
    "Verdict",
]


class IndexingStatus(str, Enum):
    """Stages Dify reports for a document.

    ``cleaning`` exists in Dify's enum but its indexing runner never sets it; ``paused`` is
    reported whenever a document is paused from the console. Only ``completed`` and ``error``
    are terminal. Values Dify may add later are kept as plain strings (see `parse`).
    """

    waiting = "waiting"
    parsing = "parsing"
    cleaning = "cleaning"
    splitting = "splitting"
    indexing = "indexing"
    paused = "paused"
    completed = "completed"
    error = "error"

    # Upper-case aliases, for code that prefers constant-style names.
    WAITING = "waiting"
    PARSING = "parsing"
    CLEANING = "cleaning"
    SPLITTING = "splitting"
    INDEXING = "indexing"
    PAUSED = "paused"
    COMPLETED = "completed"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        return self in (IndexingStatus.completed, IndexingStatus.error)

    @classmethod
    def parse(cls, value: object) -> IndexingStatus | str:
        """The enum member for a known value; an unknown string is returned unchanged."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise ValueError(f"indexing_status must be a string, got {type(value).__name__}")
        try:
            return cls(value)
        except ValueError:
            return value


def _or_default(default: Any) -> GetPydanticSchema:
    """Validate as the annotated type; a value that does not fit becomes ``default``.

    pydantic-core's own ``on_error="default"``: good values cost no Python call, which keeps
    the polling hot path native, and one odd informational field never rejects a status.
    """
    return GetPydanticSchema(
        lambda source, handler: core_schema.with_default_schema(
            handler(source), default=default, on_error="default"
        )
    )


# Left to right: the enum first, then any other string. Validated natively by pydantic-core
# (no Python call per document on the polling hot path).
StatusValue: TypeAlias = Annotated[IndexingStatus | str, Field(union_mode="left_to_right")]
"""A known `IndexingStatus`, or an unknown status string kept verbatim (counts as working)."""

_Status: TypeAlias = Annotated[
    IndexingStatus | str | None, Field(union_mode="left_to_right"), _or_default(None)
]
# Epoch seconds; NaN and infinities would make every fingerprint differ from itself.
_Stamp: TypeAlias = Annotated[float | None, Field(allow_inf_nan=False), _or_default(None)]
_Count: TypeAlias = Annotated[int, Field(ge=0), _or_default(0)]
_Text: TypeAlias = Annotated[str | None, _or_default(None)]
_Flag: TypeAlias = Annotated[bool | None, _or_default(None)]
_OptionalCount: TypeAlias = Annotated[int | None, Field(ge=0), _or_default(None)]

#: More documents than this in one indexing-status answer is refused (``too_many_documents``).
#: A batch holds the documents of one create call: one through the service API, a few hundred
#: at most from the console. Checked before the documents are built, so a hostile answer costs
#: memory in proportion to this cap, not to its own size.
MAX_BATCH_DOCUMENTS = 10_000

Verdict: TypeAlias = Literal["ready", "failed", "paused", "working"]

#: What every surface (summaries, events, tool answers, sync reports) says of a document Dify
#: reported ``completed`` with 0 segments (`Outcome.empty`).
NOTHING_TO_FIND = "indexed, but produced no chunks — nothing will be found"


class Outcome(str, Enum):
    """How a wait ended: one vocabulary for the CLI's exit codes, tool answers, telemetry,
    readiness gates and events (`_policy.outcome_of` computes it from a status or an error).
    """

    ready = "ready"
    """Every document ``completed`` (and produced chunks)."""
    failed = "failed"
    """A document ended in ``error``: Dify's text says why."""
    paused = "paused"
    """A document is paused; only Dify's console resumes it."""
    stalled = "stalled"
    """Nothing changed for ``stall_timeout``: the indexing worker may be down."""
    timed_out = "timed_out"
    """The deadline passed while Dify was still working."""
    unreachable = "unreachable"
    """Dify could not be reached or refused the request (connection, auth, configuration)."""
    not_found = "not_found"
    """Dify does not know the batch, document or dataset."""
    cancelled = "cancelled"
    """The caller gave up (task cancelled, Ctrl-C, a watch no longer read)."""
    empty = "empty"
    """``completed`` with 0 segments: indexed, but nothing will be found."""

    def __str__(self) -> str:
        return self.value


_TIMESTAMP_FIELDS = (
    "processing_started_at",
    "parsing_completed_at",
    "cleaning_completed_at",
    "splitting_completed_at",
    "completed_at",
    "paused_at",
    "stopped_at",
)


class DocumentIndexingStatus(BaseModel):
    """One document of a batch, as ``GET .../documents/{batch}/indexing-status`` reports it.

    Readiness is decided on ``indexing_status`` alone, so only ``id`` must be well formed.
    ``indexing_status`` is None when Dify sent null or a non-string: unknown, which counts as
    still working. Timestamps are epoch seconds (Dify sends integers; floats are accepted);
    one that is not a finite number (an ISO string, NaN) is kept as None. Segment counters
    that are not non-negative integers (``1.5``, ``-1``, ``"many"``, null) are kept as 0,
    what Dify itself reports before the ``indexing`` stage. All of these are informational:
    after a retry or a re-upload they can be left over from an earlier run, and ``error``
    can likewise linger while a retried document is ``waiting`` again.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow")

    id: str
    indexing_status: _Status = None
    processing_started_at: _Stamp = None
    parsing_completed_at: _Stamp = None
    cleaning_completed_at: _Stamp = None
    splitting_completed_at: _Stamp = None
    completed_at: _Stamp = None
    paused_at: _Stamp = None
    error: _Text = None
    stopped_at: _Stamp = None
    completed_segments: _Count = 0
    total_segments: _Count = 0

    @property
    def status(self) -> IndexingStatus | str | None:
        """Alias of ``indexing_status``."""
        return self.indexing_status

    @property
    def status_name(self) -> str:
        """``indexing_status`` as text: ``"unknown"`` when Dify sent none (or a non-string)."""
        status = self.indexing_status
        return "unknown" if status is None else str(status)

    @property
    def is_completed(self) -> bool:
        return self.indexing_status == IndexingStatus.completed

    @property
    def is_failed(self) -> bool:
        return self.indexing_status == IndexingStatus.error

    @property
    def is_paused(self) -> bool:
        return self.indexing_status == IndexingStatus.paused

    @property
    def is_terminal(self) -> bool:
        return self.is_completed or self.is_failed

    @property
    def is_known_status(self) -> bool:
        return isinstance(self.indexing_status, IndexingStatus)

    @property
    def is_empty(self) -> bool:
        """``completed`` with no segments (empty or whitespace-only text, a pipeline that
        produced nothing: recordings 02c, 02d, 17): indexed, but nothing will be found."""
        return self.is_completed and self.total_segments == 0

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything observable about this document; a change here is progress."""
        return (
            self.id,
            self.status_name,
            *(getattr(self, name) for name in _TIMESTAMP_FIELDS),
            self.error,
            self.completed_segments,
            self.total_segments,
        )


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class BatchIndexingStatus(BaseModel):
    """Every document of one creation batch at one moment, with the verdicts derived from it.

    Dify returns the documents in no particular order (there is no ORDER BY server-side) and
    the order changes between polls: find a document by id (`document`), never by position.
    ``documents`` keeps the order of the answer; `fingerprint` ignores it.
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    dataset_id: str
    batch: str
    documents: tuple[DocumentIndexingStatus, ...]
    observed_at: datetime = Field(default_factory=_utc_now)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_completed(self) -> bool:
        """True when the batch has documents and every one is ``completed``: safe to retrieve."""
        return bool(self.documents) and all(doc.is_completed for doc in self.documents)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_failed(self) -> bool:
        """True when any document is in ``error``."""
        return any(doc.is_failed for doc in self.documents)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_terminal(self) -> bool:
        """True when every document is ``completed`` or ``error``: Dify has nothing left to do."""
        return bool(self.documents) and all(doc.is_terminal for doc in self.documents)

    @property
    def is_paused(self) -> bool:
        """True when any document is paused (resumable only from Dify's console)."""
        return any(doc.is_paused for doc in self.documents)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_empty(self) -> bool:
        """True when the batch is completed and a document of it produced no segments:
        indexed, but retrieval will find nothing of that document (`Outcome.empty`)."""
        return self.is_completed and any(doc.is_empty for doc in self.documents)

    @property
    def empty_documents(self) -> tuple[DocumentIndexingStatus, ...]:
        """The documents that completed with 0 segments."""
        return tuple(doc for doc in self.documents if doc.is_empty)

    @property
    def failed_documents(self) -> tuple[DocumentIndexingStatus, ...]:
        return tuple(doc for doc in self.documents if doc.is_failed)

    @property
    def paused_documents(self) -> tuple[DocumentIndexingStatus, ...]:
        return tuple(doc for doc in self.documents if doc.is_paused)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def completed_segments(self) -> int:
        return sum(doc.completed_segments for doc in self.documents)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_segments(self) -> int:
        return sum(doc.total_segments for doc in self.documents)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def progress(self) -> float:
        """Fraction in [0, 1]: 1.0 once completed, else completed / total segments.

        Only documents past ``parsing`` count: a re-created document shows the counters of
        its previous run while it waits again (recording 01e), which is not progress.
        """
        if self.is_completed:
            return 1.0
        live = [
            doc
            for doc in self.documents
            if doc.indexing_status is not None
            and doc.indexing_status
            not in (IndexingStatus.waiting, IndexingStatus.parsing, IndexingStatus.cleaning)
        ]
        total = sum(doc.total_segments for doc in live)
        if total <= 0:
            return 0.0
        return min(1.0, sum(doc.completed_segments for doc in live) / total)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> Verdict:
        """``ready`` (all completed), ``failed`` (any error), ``paused`` or ``working``."""
        if self.is_completed:
            return "ready"
        if self.is_failed:
            return "failed"
        if self.is_paused:
            return "paused"
        return "working"

    def status_counts(self) -> dict[str, int]:
        """How many documents are in each status, e.g. ``{"indexing": 2, "completed": 1}``.

        A document whose status Dify did not report is counted as ``"unknown"``.
        """
        return dict(Counter(doc.status_name for doc in self.documents))

    def document(self, document_id: str) -> DocumentIndexingStatus:
        """The document with this id. Raises KeyError when the batch does not hold it."""
        for doc in self.documents:
            if doc.id == document_id:
                return doc
        raise KeyError(document_id)

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything observable about the batch (not the observation time, not the order)."""
        return tuple(sorted(doc.fingerprint() for doc in self.documents))

    def summary(self) -> str:
        """One line a human or an LLM can act on."""
        head = f"Batch {self.batch} of dataset {self.dataset_id}"
        docs = len(self.documents)
        done = sum(doc.is_completed for doc in self.documents)
        segments = f"{self.completed_segments}/{self.total_segments} segments"
        if not docs:
            return f"{head}: no documents reported."
        if self.is_empty:
            empty = self.empty_documents
            ids = ", ".join(shown(doc.id, ID_LIMIT) for doc in empty[:FAILED_SHOWN])
            more = f" and {len(empty) - FAILED_SHOWN} more" if len(empty) > FAILED_SHOWN else ""
            return (
                f"{head}: EMPTY — {done}/{docs} documents completed, {segments}; "
                f"{len(empty)} document(s) {NOTHING_TO_FIND} ({ids}{more})."
            )
        if self.is_completed:
            return f"{head}: ready — {done}/{docs} documents completed, {segments}."
        others = ", ".join(
            f"{count} {status}"
            for status, count in sorted(self.status_counts().items())
            if status != IndexingStatus.completed.value
        )
        state = f"{done}/{docs} documents completed ({others}), {segments}"
        if self.is_failed:
            listed = failures(self)  # server text: redacted and bounded to be shown
            end = "" if listed.endswith(".") else "."
            return f"{head}: FAILED — {state}. Failed: {listed}{end}"
        if self.is_paused:
            return f"{head}: paused — {state}. A paused document resumes only from Dify's console."
        return f"{head}: still indexing — {state}, {self.progress:.0%} done."


class IndexingStatusPayload(BaseModel):
    """The wire envelope of ``indexing-status``: ``{"data": [document, ...]}``.

    A ``data`` that is not a list, or a document without a string ``id``, is a shape error.
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    data: tuple[DocumentIndexingStatus, ...]


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
    indexing_status: _Status = None
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


class DifyDocument(BaseModel):
    """A document as the list and detail endpoints report it (all other keys kept as extras).

    ``display_status`` is Dify's user-facing state: ``available`` means completed, enabled and
    not archived — the strictest notion of "retrievable". Only ``id`` must be well formed;
    other fields of an unexpected type are kept as None (``name`` as ``""``).
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow")

    id: str
    name: Annotated[str, _or_default("")] = ""
    indexing_status: _Status = None
    display_status: _Text = None
    enabled: _Flag = None
    archived: _Flag = None
    error: _Text = None
    created_at: _Stamp = None
    completed_at: _Stamp = None
    word_count: _OptionalCount = None
    tokens: _OptionalCount = None
    segment_count: _OptionalCount = None
    doc_form: _Text = None
    need_summary: _Flag = None
    summary_index_status: _Text = None

    @property
    def is_summarizing(self) -> bool:
        """Dify is still making this document's summaries (a dataset with summary indexing:
        ``need_summary`` with ``summary_index_status`` set, e.g. ``"SUMMARIZING"``)."""
        return bool(self.need_summary) and self.summary_index_status is not None


class DocumentList(BaseModel):
    """One page of ``GET /datasets/{id}/documents``."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    data: tuple[DifyDocument, ...]
    has_more: Annotated[bool, _or_default(False)] = False
    limit: _Count = 0
    total: _Count = 0
    page: Annotated[int, Field(ge=1), _or_default(1)] = 1


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
