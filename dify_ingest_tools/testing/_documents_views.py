"""JSON of what the maintenance endpoints change: status flags, metadata, segments."""

from __future__ import annotations

from typing import Any

from ._clock import Epoch
from ._state import Dataset, Document, Segment
from ._timeline import COMPLETED, display_status
from ._updates import document_display_status

#: Dify's built-in metadata fields (``GET .../metadata/built-in``, recording 12).
BUILT_IN_FIELDS: tuple[tuple[str, str], ...] = (
    ("document_name", "string"),
    ("uploader", "string"),
    ("upload_date", "time"),
    ("last_update_date", "time"),
    ("source", "string"),
)


def metadata_json(document: Document, epoch: Epoch, *, as_strings: bool) -> list[Any] | None:
    """A document's ``doc_metadata``: its custom values, then the five built-in entries.

    ``None`` while the document has no custom value (recording 12: after its fields were
    deleted the detail said ``null``). List items give every value as a string.
    """
    values = document.state.metadata
    if not values:
        return None
    entries: list[dict[str, Any]] = []
    for field_id, entry in values.items():
        value = entry["value"]
        if as_strings and value is not None and not isinstance(value, str):
            value = str(value)
        entries.append(
            {"id": field_id, "name": entry["name"], "type": entry["type"], "value": value}
        )
    for name, kind in BUILT_IN_FIELDS:
        entries.append(
            {
                "id": "built-in",
                "name": name,
                "type": kind,
                "value": builtin_value(document, name, epoch),
            }
        )
    return entries


def builtin_value(document: Document, name: str, epoch: Epoch) -> str:
    """The value of a built-in field (times are epoch floats as strings)."""
    if name == "document_name":
        return document.name
    if name == "uploader":
        return "admin"
    if name == "upload_date":
        return str(float(epoch.whole(document.created_at) or 0))
    if name == "last_update_date":
        return str(round(epoch.seconds(document.updated_at), 6))
    return "file_upload"


def state_json(
    document: Document,
    epoch: Epoch,
    account_id: str,
    *,
    status: str | None = None,
    as_strings: bool = True,
) -> dict[str, Any]:
    """The keys of a document object that status actions, updates and metadata change.

    Args:
        document: The document (timeline advanced).
        epoch: Clock-to-epoch mapping.
        account_id: Reported as ``disabled_by``.
        status: The ``indexing_status`` the object shows, when overridden.
        as_strings: Metadata values as strings (list items and create answers).
    """
    state = document.state
    if status is not None and status != document.timeline.status:
        shown = display_status(status, document.timeline.is_paused)
    else:
        shown = document_display_status(document)
    return {
        "created_from": "web" if state.updated else "api",
        "enabled": state.enabled,
        "disabled_at": epoch.whole(state.disabled_at) if not state.enabled else None,
        "disabled_by": account_id if not state.enabled else None,
        "archived": state.archived,
        "display_status": shown,
        "doc_metadata": metadata_json(document, epoch, as_strings=as_strings),
    }


def segment_status(document: Document, index: int) -> str:
    """A segment's ``status``: ``waiting`` while splitting, ``indexing``, then ``completed``."""
    timeline = document.timeline
    completed, _ = timeline.counts()
    if index < completed:
        return COMPLETED
    return "indexing" if timeline.status == "indexing" else "waiting"


def visible_segments(document: Document) -> tuple[Segment, ...]:
    """The segment rows that exist now (they are inserted while the document splits)."""
    if not document.timeline.started_processing:
        return ()
    _, total = document.timeline.counts()
    return document.segments[:total]


def segment_json(
    document: Document, segment: Segment, epoch: Epoch, account_id: str
) -> dict[str, Any]:
    """One item of ``GET .../segments`` (recording 13), keys in the recorded order."""
    stamps = document.timeline.stamps
    status = segment_status(document, segment.position - 1)
    done = status == COMPLETED
    enabled = done and document.state.enabled
    return {
        "id": segment.id,
        "position": segment.position,
        "document_id": document.id,
        "content": segment.content,
        "sign_content": segment.content,
        "answer": None,
        "word_count": len(segment.content),
        "tokens": 0,
        "keywords": list(segment.keywords) if done or status == "indexing" else None,
        "index_node_id": segment.index_node_id,
        "index_node_hash": segment.content_hash,
        "hit_count": 0,
        "enabled": enabled,
        "disabled_at": None,
        "disabled_by": None,
        "status": status,
        "created_by": account_id,
        "created_at": epoch.whole(stamps["splitting_completed_at"] or document.updated_at),
        "updated_at": epoch.whole(stamps["splitting_completed_at"] or document.updated_at),
        "updated_by": None,
        "indexing_at": epoch.whole(stamps["parsing_completed_at"]),
        "completed_at": epoch.whole(stamps["completed_at"]) if done else None,
        "error": None,
        "stopped_at": None,
        "child_chunks": [],
        "attachments": [],
        "summary": None,
    }


def field_json(dataset: Dataset, field_id: str, *, count: bool) -> dict[str, Any]:
    """A metadata field: ``{id, type, name}``, or ``{id, name, type, count}`` in lists."""
    field = dataset.metadata.fields[field_id]
    if not count:
        return {"id": field.id, "type": field.type, "name": field.name}
    used = sum(field_id in d.state.metadata for d in dataset.documents.values())
    return {"id": field.id, "name": field.name, "type": field.type, "count": used}
