"""Typed, frozen snapshots of what Dify's Knowledge API returns.

Readiness is decided on ``indexing_status`` only: Dify's segment counters are ``0/0`` until the
``indexing`` stage, can be equal before the status flips, and a re-created document shows its
*old* counters and ``completed_at`` while it waits again (recordings 01c, 01e).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    computed_field,
)
from pydantic_core import core_schema

from dify_ingest_tools._base.shown import FAILED_SHOWN, ID_LIMIT, failures, shown


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


def or_default(default: Any) -> GetPydanticSchema:
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

OptionalStatus: TypeAlias = Annotated[
    IndexingStatus | str | None, Field(union_mode="left_to_right"), or_default(None)
]
# Epoch seconds; NaN and infinities would make every fingerprint differ from itself.
Stamp: TypeAlias = Annotated[float | None, Field(allow_inf_nan=False), or_default(None)]
Count: TypeAlias = Annotated[int, Field(ge=0), or_default(0)]
OptionalText: TypeAlias = Annotated[str | None, or_default(None)]
Flag: TypeAlias = Annotated[bool | None, or_default(None)]
OptionalCount: TypeAlias = Annotated[int | None, Field(ge=0), or_default(None)]

#: More documents than this in one indexing-status answer is refused (``too_many_documents``).
#: A batch holds the documents of one create call: one through the service API, a few hundred
#: at most from the console. Checked before the documents are built, so a hostile answer costs
#: memory in proportion to this cap, not to its own size.
MAX_BATCH_DOCUMENTS = 10_000

Verdict: TypeAlias = Literal["ready", "failed", "paused", "working"]

#: What every surface (summaries, events, tool answers, sync reports) says of a document Dify
#: reported ``completed`` with 0 segments (`Outcome.empty`).
NOTHING_TO_FIND = "indexed, but produced no chunks — nothing will be found"


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
    indexing_status: OptionalStatus = None
    processing_started_at: Stamp = None
    parsing_completed_at: Stamp = None
    cleaning_completed_at: Stamp = None
    splitting_completed_at: Stamp = None
    completed_at: Stamp = None
    paused_at: Stamp = None
    error: OptionalText = None
    stopped_at: Stamp = None
    completed_segments: Count = 0
    total_segments: Count = 0

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
