"""How a caller's document maps onto a Dify document: the store core's one vocabulary.

The store core (`dify_ingest_tools.agent.store`) and both adapters (`DifyVectorStore`,
`DifyIndex`) name documents, read their metadata and tell their owner through these;
nothing here does I/O.

* **key**: the Dify document *name*. Re-writing a key updates that Dify document in place
  (``update-by-text``: same id, re-indexed), never creates a second one. By default the key
  is the caller's id; a store can key by source instead (one Dify document per file).
* **id** and **metadata**: two metadata fields of the document. ``lc_id`` holds the caller's
  id; ``lc_manifest`` holds a JSON string with the exact metadata (types kept: Dify's list
  items give numbers as strings, and it has no booleans). Each scalar metadata value is also
  written to a field of its own so Dify can filter on it; keys that collide with Dify's
  built-in fields (``source``, ``document_name``, ...) or with those two fields are prefixed
  ``lc_`` (``source`` -> ``lc_source``).
* **ownership**: those two fields are the store's mark. A key that names a document without
  them (uploaded in the console, synced by ``sync``, written by the agent tools) is someone
  else's: a write raises `DifyDocumentConflictError` before anything of the batch is sent,
  unless the store was built with ``overwrite_foreign=True``, and deletes never reach it (an
  id that resolves only to such a document is missing). Reads still see every document.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dify_ingest_tools.errors import DifyDocumentConflictError
from dify_ingest_tools.models.documents import (
    BUILT_IN_METADATA_FIELDS,
    DifyDocument,
    MetadataEntry,
    MetadataField,
)

ID_FIELD = "lc_id"
MANIFEST_FIELD = "lc_manifest"
_RESERVED = frozenset({ID_FIELD, MANIFEST_FIELD}) | BUILT_IN_METADATA_FIELDS
# Dify keeps at most 200 characters of a create-by-text name (its upload file's name).
MAX_KEY_LENGTH = 200


def field_name_for(key: str) -> str:
    """The Dify metadata field a metadata key is written to."""
    return f"lc_{key}" if key in _RESERVED or key.startswith("lc_") else key


@dataclass(frozen=True)
class StoredDocument:
    """One document to write: its key (the Dify name), id, text, metadata.

    ``manifest`` holds extra JSON-able facts kept with the metadata (e.g. LlamaIndex hashes).
    """

    key: str
    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    manifest: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Known:
    """What the store knows of a Dify document: its caller id, metadata and manifest."""

    dify_id: str
    key: str
    id: str
    metadata: dict[str, Any]
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk, joined with its document."""

    content: str
    score: float | None
    document: Known
    segment_id: str | None


@dataclass(frozen=True)
class Named:
    """The Dify document a key names, and whether it carries a store's mark."""

    dify_id: str
    marked: bool


def is_marked(document: DifyDocument) -> bool:
    """Whether a store wrote this document: its list item or detail has ``lc_id`` or
    ``lc_manifest`` (list items give every value as a string)."""
    for entry in MetadataEntry.parse_list((document.model_extra or {}).get("doc_metadata")):
        if entry.name in (ID_FIELD, MANIFEST_FIELD) and not entry.is_built_in and entry.value:
            return True
    return False


def fit_key(key: str) -> str:
    """A Dify name for ``key``: itself, or a shortened form with a hash when too long."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: MAX_KEY_LENGTH - 17]}~{digest}"


def json_safe(value: Any) -> Any:
    """``value`` as JSON would give it back (unknown types as strings)."""
    return json.loads(json.dumps(value, default=str))


def known_from(document: DifyDocument) -> Known:
    """What a list item or detail of a Dify document says of it (its manifest, if a store's)."""
    raw = (document.model_extra or {}).get("doc_metadata")
    entries = MetadataEntry.parse_list(raw)
    values = {entry.name: entry for entry in entries}
    manifest: dict[str, Any] = {}
    found = values.get(MANIFEST_FIELD)
    if found is not None and isinstance(found.value, str):
        try:
            loaded = json.loads(found.value)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            manifest = loaded
    if manifest:
        metadata = dict(manifest.get("metadata") or {})
        caller_id = str(manifest.get("id") or document.name)
    else:
        # Not written by a store: its own fields are its metadata, its name its id.
        metadata = {
            entry.name: entry.typed_value
            for entry in entries
            if not entry.is_built_in and entry.name not in (ID_FIELD, MANIFEST_FIELD)
        }
        id_entry = values.get(ID_FIELD)
        caller_id = str(id_entry.value) if id_entry and id_entry.value else document.name
    return Known(document.id, document.name, caller_id, metadata, manifest)


def field_values(document: StoredDocument) -> dict[str, Any]:
    """The metadata a write sets: the mark (``lc_id``, ``lc_manifest``) and a field for each
    string or number value."""
    manifest = {"id": document.id, "metadata": dict(document.metadata), **document.manifest}
    values: dict[str, Any] = {
        ID_FIELD: document.id,
        MANIFEST_FIELD: json.dumps(json_safe(manifest), ensure_ascii=False),
    }
    for key, value in document.metadata.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            continue  # kept in the manifest only: Dify stores strings and numbers
        name = field_name_for(str(key))
        if len(name) <= 255:
            values[name] = value
    return values


def fit_values(values: Mapping[str, Any], fields: Mapping[str, MetadataField]) -> dict[str, Any]:
    """``values`` as the dataset's ``fields`` can hold them (a number field gets no string)."""
    fitted: dict[str, Any] = {}
    for name, value in values.items():
        kind = fields[name].type
        if kind == "number" and isinstance(value, str):
            continue  # a number field cannot hold this string; the manifest has it
        fitted[name] = value if kind == "number" else str(value)
    return fitted


def conflict_error(
    dataset_id: str, foreign: Sequence[tuple[str, Named]]
) -> DifyDocumentConflictError:
    """The refusal of a write whose keys name documents no store wrote (``foreign``)."""
    (name, named), others = foreign[0], [key for key, _ in foreign[1:]]
    more = ""
    if others:
        shown = ", ".join(repr(key) for key in others[:5])
        more = f" (and {len(others)} more: {shown}{', ...' if len(others) > 5 else ''})"
    message = (
        f"Knowledge base {dataset_id} already has a document named {name!r} "
        f"(document {named.dify_id}){more} that no store wrote: it carries no "
        f"{ID_FIELD}/{MANIFEST_FIELD} metadata (a console upload, a sync, the agent "
        "tools?). Nothing was written. Use another id or key, or build the store with "
        "overwrite_foreign=True to replace it."
    )
    return DifyDocumentConflictError(
        message, dataset_id=dataset_id, document_id=named.dify_id, name=name
    )
