"""The marks this library writes on the Dify documents it owns (design.md §12b).

A knowledge base is shared: people upload in the console, other folders sync into it, stores
write to it. Whatever ``sync`` and ``upload --owner`` write carries three metadata fields, so
the knowledge base itself says whose a document is, where it came from and what it held:

* `OWNER_FIELD`: the owner tag (``sync --owner NAME``, default the folder's name);
* `SOURCE_FIELD`: the file's path relative to the synced folder (``guides/setup.md``);
* `HASH_FIELD`: the SHA-256 of the file's bytes when it was uploaded.

Only documents whose owner tag names the writer are updated or deleted by it. Dify returns
list items with their ``doc_metadata`` (values as strings, recording 12), so reading every
mark costs list pages only, which Dify does not rate limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dify_ingest_tools.models.documents import MetadataEntry, MetadataType

if TYPE_CHECKING:
    from dify_ingest_tools.models.documents import DifyDocument

OWNER_FIELD = "dify_ingest_owner"
SOURCE_FIELD = "dify_ingest_source"
HASH_FIELD = "dify_ingest_sha256"
#: The fields and their Dify types, for `ensure_metadata_fields`.
MARK_FIELDS: Mapping[str, MetadataType] = {
    OWNER_FIELD: "string",
    SOURCE_FIELD: "string",
    HASH_FIELD: "string",
}


@dataclass(frozen=True)
class Mark:
    """What a document's metadata says about who wrote it (all None: nobody we know)."""

    owner: str | None = None
    source: str | None = None
    content_hash: str | None = None

    @classmethod
    def of(cls, document: DifyDocument) -> Mark:
        """The mark of a document (a list item or a detail), from its ``doc_metadata``."""
        return cls.from_entries((document.model_extra or {}).get("doc_metadata"))

    @classmethod
    def from_entries(cls, raw: Any) -> Mark:
        values: dict[str, str] = {}
        for entry in MetadataEntry.parse_list(raw):
            if entry.name in MARK_FIELDS and not entry.is_built_in and entry.value is not None:
                values[entry.name] = str(entry.value)
        return cls(
            owner=values.get(OWNER_FIELD) or None,
            source=values.get(SOURCE_FIELD) or None,
            content_hash=values.get(HASH_FIELD) or None,
        )

    def values(self) -> dict[str, str]:
        """The fields to write (``set_documents_metadata(..., partial_update=True)``)."""
        pairs = (
            (OWNER_FIELD, self.owner),
            (SOURCE_FIELD, self.source),
            (HASH_FIELD, self.content_hash),
        )
        return {name: value for name, value in pairs if value is not None}
