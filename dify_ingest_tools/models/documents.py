"""Typed snapshots of the document endpoints: list and detail, updates, metadata, segments.

Shapes follow the recordings of a real Dify 1.14.1 (``recorded/09`` to ``16``). Unknown keys
are kept (``extra="allow"``) so a newer server's fields are not lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dify_ingest_tools.models.created import CreatedDocument
from dify_ingest_tools.models.status import (
    Count,
    Flag,
    OptionalCount,
    OptionalStatus,
    OptionalText,
    Stamp,
    or_default,
)

MetadataType: TypeAlias = Literal["string", "number", "time"]
"""The field types Dify accepts (``boolean`` is refused with a 400, recording 12)."""

MetadataValue: TypeAlias = "str | int | float | None"

DocumentAction: TypeAlias = Literal["enable", "disable", "archive", "un_archive"]
"""The actions of ``PATCH /datasets/{id}/documents/status/{action}``."""

#: Names Dify reserves for its built-in fields: creating a field with one of them is refused
#: ("Metadata name already exists in Built-in fields.", recording 12).
BUILT_IN_METADATA_FIELDS = frozenset(
    {"document_name", "uploader", "upload_date", "last_update_date", "source"}
)


class UpdatedDocument(CreatedDocument):
    """What ``update-by-text`` / ``PATCH .../documents/{id}`` returned.

    ``batch`` is the document's **original** creation batch, which can hold other documents
    (recordings 09, 10): wait on the document (`wait_for_documents`), not on the batch.
    The document is re-indexed in place: same id, ``indexing_status`` back to ``waiting``.
    """


class MetadataField(BaseModel):
    """A metadata field of a knowledge base (``/datasets/{id}/metadata``).

    ``count`` (documents with a value) is only in list answers.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow")

    id: str
    name: str
    type: str
    count: int | None = None


class MetadataFieldList(BaseModel):
    """``GET /datasets/{id}/metadata``: the custom fields and the built-in switch."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow")

    fields: tuple[MetadataField, ...] = Field(default=(), alias="doc_metadata")
    built_in_field_enabled: bool = False

    @field_validator("fields", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return () if value is None else value

    def by_name(self, name: str) -> MetadataField | None:
        """The field called ``name``, or None."""
        return next((field for field in self.fields if field.name == name), None)


class MetadataEntry(BaseModel):
    """One ``doc_metadata`` entry of a document: ``{id, name, type, value}``.

    Built-in entries carry ``id == "built-in"``. Values come back as Dify stored them in a
    document's detail (a number as a number), but as strings in document-list items
    (recording 12): `typed_value` converts by ``type``.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow")

    id: str = ""
    name: str
    type: str = "string"
    value: Any = None

    @property
    def is_built_in(self) -> bool:
        return self.id == "built-in"

    @property
    def typed_value(self) -> Any:
        """The value as its field type says: ``"5"`` of a number field becomes ``5``."""
        value = self.value
        if self.type == "number" and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return value
            return int(number) if number.is_integer() and "." not in value else number
        return value

    @classmethod
    def parse_list(cls, raw: Any) -> list[MetadataEntry]:
        """The entries of a ``doc_metadata`` value (null means none)."""
        if not isinstance(raw, list):
            return []
        return [cls.model_validate(item) for item in raw if isinstance(item, Mapping)]


class DifySegment(BaseModel):
    """One chunk of a document (``GET .../documents/{id}/segments``).

    While a document is splitting its segments say ``status: waiting`` and ``enabled:
    false``; only ``completed`` and enabled segments are retrieved (recording 13).
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow")

    id: str
    position: int = 0
    document_id: str | None = None
    content: str = ""
    answer: str | None = None
    word_count: int | None = None
    tokens: int | None = None
    keywords: tuple[str, ...] | None = None
    enabled: bool | None = None
    status: str | None = None
    hit_count: int | None = None
    completed_at: float | None = None


class SegmentList(BaseModel):
    """One page of a document's segments.

    ``has_more`` is Dify's ``len(data) == limit``: it can be true on the last full page.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow")

    data: tuple[DifySegment, ...]
    doc_form: str | None = None
    total: int = 0
    has_more: bool = False
    limit: int = 20
    page: int = 1


class DifyDocument(BaseModel):
    """A document as the list and detail endpoints report it (all other keys kept as extras).

    ``display_status`` is Dify's user-facing state: ``available`` means completed, enabled and
    not archived — the strictest notion of "retrievable". Only ``id`` must be well formed;
    other fields of an unexpected type are kept as None (``name`` as ``""``).
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow")

    id: str
    name: Annotated[str, or_default("")] = ""
    indexing_status: OptionalStatus = None
    display_status: OptionalText = None
    enabled: Flag = None
    archived: Flag = None
    error: OptionalText = None
    created_at: Stamp = None
    completed_at: Stamp = None
    word_count: OptionalCount = None
    tokens: OptionalCount = None
    segment_count: OptionalCount = None
    doc_form: OptionalText = None
    need_summary: Flag = None
    summary_index_status: OptionalText = None

    @property
    def is_summarizing(self) -> bool:
        """Dify is still making this document's summaries (a dataset with summary indexing:
        ``need_summary`` with ``summary_index_status`` set, e.g. ``"SUMMARIZING"``)."""
        return bool(self.need_summary) and self.summary_index_status is not None


class DocumentList(BaseModel):
    """One page of ``GET /datasets/{id}/documents``."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    data: tuple[DifyDocument, ...]
    has_more: Annotated[bool, or_default(False)] = False
    limit: Count = 0
    total: Count = 0
    page: Annotated[int, Field(ge=1), or_default(1)] = 1
