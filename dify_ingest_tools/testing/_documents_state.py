"""Per-document and per-dataset state of the maintenance endpoints (recordings 09 to 16).

Kept apart from the indexing timeline: enable/disable/archive flags, the short lock a status
change holds, when the change reaches the search index, and metadata values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: How long a status change keeps the document locked ("... is being indexed, please try
#: again later"), and so how long until the search index reflects it, in seconds before
#: ``time_scale``. Twenty recorded trials cleared within 0.4 s to 1 s (recording 14).
STATUS_TASK_SECONDS = 0.3


@dataclass
class MetaField:
    """A dataset's metadata field."""

    id: str
    name: str
    type: str


@dataclass
class DatasetMetadata:
    """A dataset's metadata fields, in creation order, and the built-in switch."""

    fields: dict[str, MetaField] = field(default_factory=dict)
    built_in_enabled: bool = False

    def by_name(self, name: str) -> MetaField | None:
        return next((f for f in self.fields.values() if f.name == name), None)


@dataclass
class DocumentState:
    """What the status actions and the metadata endpoints changed on one document.

    Attributes:
        enabled: The document's ``enabled`` flag (the detail shows a change at once).
        disabled_at: Clock reading of the last disable.
        archived: The ``archived`` flag.
        locked_until: A status change is being applied until then (another is refused).
        searchable_changes: ``(at, searchable)`` pairs: when a change reached the index.
        metadata: Field id -> ``{"name", "type", "value"}`` (kept in field order).
        updated: The document went through an update (``created_from`` becomes ``web``).
    """

    enabled: bool = True
    disabled_at: float | None = None
    archived: bool = False
    locked_until: float | None = None
    searchable_changes: list[tuple[float, bool]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    updated: bool = False

    def locked(self, now: float) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def in_index(self, now: float) -> bool:
        """Whether retrieval sees the document at ``now`` (a change lands when its task ends)."""
        visible = True
        for at, searchable in self.searchable_changes:
            if at <= now:
                visible = searchable
        return visible

    def change_index(self, now: float, seconds: float, searchable: bool) -> None:
        """Lock the document for ``seconds`` and let the index follow when that ends."""
        self.locked_until = now + seconds
        self.searchable_changes = [
            (at, value) for at, value in self.searchable_changes if at <= now
        ] + [(now + seconds, searchable)]
