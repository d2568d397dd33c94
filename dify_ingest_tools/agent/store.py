"""`StoreCore`: a Dify knowledge base used as a keyed document store, read-after-write.

The framework-neutral engine behind `DifyVectorStore` (LangChain) and `DifyIndex`
(LlamaIndex). Every method takes the `AsyncDifyKnowledgeClient` to run on, so the adapters
can call it from sync and async code alike (`ClientBridge`).

How a caller's document maps onto Dify:

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
* Retrieval records carry no document metadata on a real Dify (``segment.document`` is all
  null), so hits are joined with the document's detail: one GET per document, cached (bounded,
  with a time to live) and refreshed by this store's own writes.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from dify_ingest_tools._base.filters import metadata_conditions
from dify_ingest_tools.client.pending import PendingScope, PendingView
from dify_ingest_tools.errors import (
    DifyDocumentConflictError,
    DifyDocumentNotAvailableError,
    DifyNotFoundError,
)
from dify_ingest_tools.models.created import CreatedDocument
from dify_ingest_tools.models.documents import (
    BUILT_IN_METADATA_FIELDS,
    DifyDocument,
    MetadataEntry,
    MetadataField,
)
from dify_ingest_tools.models.retrieval import RetrievedChunk

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient

__all__ = [
    "ID_FIELD",
    "MANIFEST_FIELD",
    "Hit",
    "Named",
    "StoreCore",
    "StoredDocument",
    "field_name_for",
    "find_named",
    "is_marked",
]

ID_FIELD = "lc_id"
MANIFEST_FIELD = "lc_manifest"
_RESERVED = frozenset({ID_FIELD, MANIFEST_FIELD}) | BUILT_IN_METADATA_FIELDS
# Dify keeps at most 200 characters of a create-by-text name (its upload file's name).
MAX_KEY_LENGTH = 200
_LIST_PAGE = 100
_MAX_SCAN_PAGES = 200

T = TypeVar("T")
A = TypeVar("A")


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


async def find_named(
    client: AsyncDifyKnowledgeClient, dataset_id: str, name: str
) -> DifyDocument | None:
    """The list item of the document named exactly ``name``, or None.

    Dify's ``keyword`` is a substring match on names; list pages are not rate limited.
    """
    for page in range(1, _MAX_SCAN_PAGES + 1):
        listing = await client.list_documents(dataset_id, keyword=name, page=page, limit=_LIST_PAGE)
        for item in listing.data:
            if item.name == name:
                return item
        if len(listing.data) < _LIST_PAGE:
            return None
    return None


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _known_from(document: DifyDocument) -> Known:
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


class _Cache:
    """An LRU map with a time to live (``ttl=None``: entries never expire)."""

    def __init__(self, size: int, ttl: float | None) -> None:
        self._items: OrderedDict[str, tuple[float, Known]] = OrderedDict()
        self._size = size
        self._ttl = ttl

    def get(self, key: str) -> Known | None:
        item = self._items.get(key)
        if item is None:
            return None
        stored_at, value = item
        if self._ttl is not None and time.monotonic() - stored_at > self._ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: Known) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        self._items.pop(key, None)


async def _bounded(limit: int, func: Callable[[A], Awaitable[T]], items: Iterable[A]) -> list[T]:
    """``func`` over ``items`` with at most ``limit`` calls in flight; results in order."""
    gate = asyncio.Semaphore(limit)

    async def run(item: A) -> T:
        async with gate:
            return await func(item)

    return list(await asyncio.gather(*(run(item) for item in items)))


class StoreCore:
    """Writes, reads, searches and deletes documents of one knowledge base by key and id.

    Args:
        dataset_id: The knowledge base UUID (it must exist).
        key_is_id: Documents are keyed by their id (so an id lookup is a name lookup).
        indexing_technique: For creates (by default the dataset's own).
        process_rule: Chunking rules for creates and text updates (default: automatic).
        concurrency: Writes and lookups in flight at once.
        cache_size: Documents whose id and metadata are remembered.
        cache_ttl: Seconds a remembered document is trusted (None: until this store
            changes it). Other writers' changes show up after this long.
        overwrite_foreign: Let writes replace documents that carry no store's mark (by
            default such a write raises `DifyDocumentConflictError`). Deletes never touch
            them either way.
    """

    def __init__(
        self,
        dataset_id: str,
        *,
        key_is_id: bool = True,
        indexing_technique: str | None = None,
        process_rule: Mapping[str, Any] | None = None,
        concurrency: int = 4,
        cache_size: int = 1024,
        cache_ttl: float | None = 300.0,
        overwrite_foreign: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.dataset_id = dataset_id
        self.key_is_id = key_is_id
        self.indexing_technique = indexing_technique
        self.process_rule = dict(process_rule) if process_rule is not None else None
        self.concurrency = concurrency
        self.overwrite_foreign = overwrite_foreign
        self._details = _Cache(cache_size, cache_ttl)
        # Key -> the marked document it names: only marked ones are remembered, so a key
        # that named someone else's document is looked up again (it may be gone, or ours now).
        self._by_key: OrderedDict[str, str] = OrderedDict()
        self._by_key_size = max(cache_size * 8, 1024)
        self._fields: dict[str, MetadataField] = {}
        # Documents written with wait=False, which the search gate waits for, live in the
        # client's pending registry under this scope (`_pending`).
        self._scope = PendingScope("store")

    # -- lookups ----------------------------------------------------------------------------

    def _remember_key(self, key: str, dify_id: str) -> None:
        self._by_key[key] = dify_id
        self._by_key.move_to_end(key)
        while len(self._by_key) > self._by_key_size:
            self._by_key.popitem(last=False)

    def _pending(self, client: AsyncDifyKnowledgeClient) -> PendingView:
        """This store's view of the client's pending registry."""
        return client._pending.view(self._scope)

    def _forget(self, client: AsyncDifyKnowledgeClient, dify_id: str) -> None:
        self._details.drop(dify_id)
        self._pending(client).forget_document(self.dataset_id, dify_id)  # gone: for every scope
        for key in [k for k, v in self._by_key.items() if v == dify_id]:
            del self._by_key[key]

    async def _find_by_name(self, client: AsyncDifyKnowledgeClient, key: str) -> Named | None:
        """The Dify document named exactly ``key``, and whether it is a store's."""
        cached = self._by_key.get(key)
        if cached is not None:
            self._by_key.move_to_end(key)
            return Named(cached, True)
        item = await find_named(client, self.dataset_id, key)
        if item is None:
            return None
        marked = is_marked(item)
        if marked:
            self._remember_key(key, item.id)
        return Named(item.id, marked)

    async def _scan(self, client: AsyncDifyKnowledgeClient) -> dict[str, str]:
        """Caller id -> Dify id for every document of the dataset written by a store."""
        found: dict[str, str] = {}
        for page in range(1, _MAX_SCAN_PAGES + 1):
            listing = await client.list_documents(self.dataset_id, page=page, limit=_LIST_PAGE)
            for item in listing.data:
                entries = MetadataEntry.parse_list((item.model_extra or {}).get("doc_metadata"))
                for entry in entries:
                    if entry.name == ID_FIELD and entry.value:
                        found[str(entry.value)] = item.id
                if is_marked(item):
                    self._remember_key(item.name, item.id)
            if len(listing.data) < _LIST_PAGE:
                break
        return found

    async def resolve_ids(
        self, client: AsyncDifyKnowledgeClient, ids: Sequence[str], *, owned: bool = False
    ) -> dict[str, str]:
        """Caller id -> Dify document id, for the ids that exist.

        With ``owned``, only documents a store wrote: an id naming someone else's document
        is missing. (Keyed by something else than the id, ids are only ever found in the
        ``lc_id`` mark, so every document found is a store's.)
        """
        if self.key_is_id:
            found = await _bounded(self.concurrency, lambda i: self._find_by_name(client, i), ids)
            pairs = zip(ids, found, strict=True)
            return {
                i: named.dify_id
                for i, named in pairs
                if named is not None and (named.marked or not owned)
            }
        scanned = await self._scan(client)
        return {i: scanned[i] for i in ids if i in scanned}

    async def known(self, client: AsyncDifyKnowledgeClient, dify_id: str) -> Known | None:
        """The document's id and metadata (cached), or None when it no longer exists."""
        cached = self._details.get(dify_id)
        if cached is not None:
            return cached
        try:
            document = await client.get_document(self.dataset_id, dify_id)
        except DifyNotFoundError as error:
            if error.resource in ("dataset", "route"):
                raise
            self._forget(client, dify_id)
            return None
        known = _known_from(document)
        self._details.put(dify_id, known)
        return known

    # -- writes -----------------------------------------------------------------------------

    def _field_values(self, document: StoredDocument) -> dict[str, Any]:
        manifest = {"id": document.id, "metadata": dict(document.metadata), **document.manifest}
        values: dict[str, Any] = {
            ID_FIELD: document.id,
            MANIFEST_FIELD: json.dumps(_json_safe(manifest), ensure_ascii=False),
        }
        for key, value in document.metadata.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                continue  # kept in the manifest only: Dify stores strings and numbers
            name = field_name_for(str(key))
            if len(name) <= 255:
                values[name] = value
        return values

    async def _fields_for(
        self, client: AsyncDifyKnowledgeClient, values: Iterable[Mapping[str, Any]]
    ) -> dict[str, MetadataField]:
        wanted: dict[str, Any] = {}
        for entry in values:
            for name, value in entry.items():
                wanted.setdefault(name, "string" if isinstance(value, str) else "number")
        missing = {name: kind for name, kind in wanted.items() if name not in self._fields}
        if missing:
            self._fields.update(await client.ensure_metadata_fields(self.dataset_id, missing))
        return self._fields

    @staticmethod
    def _fit(values: Mapping[str, Any], fields: Mapping[str, MetadataField]) -> dict[str, Any]:
        fitted: dict[str, Any] = {}
        for name, value in values.items():
            kind = fields[name].type
            if kind == "number" and isinstance(value, str):
                continue  # a number field cannot hold this string; the manifest has it
            fitted[name] = value if kind == "number" else str(value)
        return fitted

    def _conflict(self, foreign: Sequence[tuple[str, Named]]) -> DifyDocumentConflictError:
        (name, named), others = foreign[0], [key for key, _ in foreign[1:]]
        more = ""
        if others:
            shown = ", ".join(repr(key) for key in others[:5])
            more = f" (and {len(others)} more: {shown}{', ...' if len(others) > 5 else ''})"
        message = (
            f"Knowledge base {self.dataset_id} already has a document named {name!r} "
            f"(document {named.dify_id}){more} that no store wrote: it carries no "
            f"{ID_FIELD}/{MANIFEST_FIELD} metadata (a console upload, a sync, the agent "
            "tools?). Nothing was written. Use another id or key, or build the store with "
            "overwrite_foreign=True to replace it."
        )
        return DifyDocumentConflictError(
            message, dataset_id=self.dataset_id, document_id=named.dify_id, name=name
        )

    async def _write_one(
        self,
        client: AsyncDifyKnowledgeClient,
        document: StoredDocument,
        existing: Named | None,
        retry_timeout: float,
    ) -> CreatedDocument:
        if existing is not None:
            try:
                return await client.update_document_by_text(
                    self.dataset_id,
                    existing.dify_id,
                    text=document.text,
                    name=document.key,
                    process_rule=self.process_rule,
                    retry_unavailable=True,
                    retry_timeout=retry_timeout,
                )
            except DifyNotFoundError as error:
                if error.resource != "document":
                    raise
                # Deleted meanwhile by someone else: create it again, unless someone else's
                # document took the name since (a create would replace it: an upsert by name).
                self._forget(client, existing.dify_id)
                again = await self._find_by_name(client, document.key)
                if again is not None and not again.marked and not self.overwrite_foreign:
                    raise self._conflict([(document.key, again)]) from error
            except DifyDocumentNotAvailableError:
                # A document whose indexing failed cannot be updated, but a create under its
                # name re-indexes it (same document, new batch); anything else is reported.
                detail = await client.get_document(self.dataset_id, existing.dify_id)
                if detail.display_status != "error":
                    raise
        created = await client.create_document_by_text(
            self.dataset_id,
            document.key,
            document.text,
            indexing_technique=self.indexing_technique,
            process_rule=self.process_rule,
        )
        # Ours from now on, even before its mark is written (a retry after a failed metadata
        # write must not find it foreign).
        self._remember_key(document.key, created.document_id)
        return created

    async def write(
        self,
        client: AsyncDifyKnowledgeClient,
        documents: Sequence[StoredDocument],
        *,
        wait: bool,
        wait_options: Mapping[str, Any],
    ) -> list[CreatedDocument]:
        """Create or update each document by key, set its metadata, and wait if asked.

        Later documents with the same key win. Returns one result per distinct key.

        Raises:
            DifyDocumentConflictError: A key names a document no store wrote (and
                ``overwrite_foreign`` is off); raised before anything is written.
        """
        latest: dict[str, StoredDocument] = {}
        for document in documents:
            if not document.key or len(document.key) > MAX_KEY_LENGTH:
                raise ValueError(
                    f"a document key (the Dify document name) must be 1 to {MAX_KEY_LENGTH} "
                    f"characters, got {document.key[:40]!r}"
                )
            latest.pop(document.key, None)
            latest[document.key] = document
        chosen = list(latest.values())
        if not chosen:
            return []
        # Every key is looked up before anything is written: a refused batch leaves nothing
        # half-written.
        existing = await _bounded(
            self.concurrency, lambda d: self._find_by_name(client, d.key), chosen
        )
        if not self.overwrite_foreign:
            foreign = [
                (d.key, named)
                for d, named in zip(chosen, existing, strict=True)
                if named is not None and not named.marked
            ]
            if foreign:
                raise self._conflict(foreign)
        timeout = float(wait_options.get("timeout", 600.0))
        results = await _bounded(
            self.concurrency,
            lambda pair: self._write_one(client, pair[0], pair[1], timeout),
            list(zip(chosen, existing, strict=True)),
        )
        written = list(zip(results, chosen, strict=True))
        values = {r.document_id: self._field_values(d) for r, d in written}
        fields = await self._fields_for(client, values.values())
        await client.set_documents_metadata(
            self.dataset_id,
            {dify_id: self._fit(v, fields) for dify_id, v in values.items()},
            create_fields=False,
            fields=fields,
        )
        for result, document in written:
            manifest = {"id": document.id, "metadata": dict(document.metadata)}
            manifest.update(document.manifest)
            known = Known(
                result.document_id,
                document.key,
                document.id,
                _json_safe(dict(document.metadata)),
                _json_safe(manifest),
            )
            self._details.put(result.document_id, known)
        if wait:
            await client.wait_for_documents(self.dataset_id, results, **wait_options)
        else:
            view = self._pending(client)
            for result in results:
                view.remember(result)
        return results

    async def delete(self, client: AsyncDifyKnowledgeClient, ids: Sequence[str]) -> int:
        """Delete the documents with these caller ids; missing ones are skipped.

        Only documents a store wrote are deleted: an id naming someone else's document is
        missing. Returns how many were deleted.
        """
        found = await self.resolve_ids(client, list(dict.fromkeys(ids)), owned=True)

        async def drop(dify_id: str) -> int:
            try:
                await client.delete_document(self.dataset_id, dify_id)
            except DifyNotFoundError as error:
                if error.resource in ("dataset", "route"):
                    raise
                return 0
            finally:
                self._forget(client, dify_id)
            return 1

        counts = await _bounded(self.concurrency, drop, list(dict.fromkeys(found.values())))
        return sum(counts)

    # -- reads ------------------------------------------------------------------------------

    async def gate(self, client: AsyncDifyKnowledgeClient, wait_options: Mapping[str, Any]) -> None:
        """Wait for this store's writes made with ``wait=False`` (failed ones are dropped)."""
        view = self._pending(client)
        pending = view.uploads(self.dataset_id)
        if not pending:
            return
        # A search need not wait on documents indexed with no chunks: nothing more will come.
        options = {**wait_options, "raise_on_error": False, "on_empty": "accept"}
        view.seen(await client.wait_for_documents(self.dataset_id, pending, **options))

    async def get(
        self, client: AsyncDifyKnowledgeClient, ids: Sequence[str]
    ) -> list[tuple[Known, str]]:
        """``(document, text from its segments)`` for the ids that exist, in input order."""
        found = await self.resolve_ids(client, list(dict.fromkeys(ids)))

        async def read(dify_id: str) -> tuple[Known, str] | None:
            known = await self.known(client, dify_id)
            if known is None:
                return None
            try:
                segments = await client.all_segments(self.dataset_id, dify_id)
            except DifyNotFoundError:
                self._forget(client, dify_id)
                return None
            return known, "\n".join(segment.content for segment in segments)

        order = [found[i] for i in dict.fromkeys(ids) if i in found]
        read_all = await _bounded(self.concurrency, read, order)
        return [item for item in read_all if item is not None]

    async def search(
        self,
        client: AsyncDifyKnowledgeClient,
        query: str,
        *,
        k: int,
        score_threshold: float | None = None,
        filter: Mapping[str, Any] | None = None,
        retrieval_model: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Retrieve ``k`` chunks and join each with its document's id and metadata."""
        conditions = metadata_conditions(filter, field_name_for) if filter is not None else None
        chunks = await client.retrieve(
            self.dataset_id,
            query,
            top_k=k,
            score_threshold=score_threshold,
            retrieval_model=retrieval_model,
            metadata_filter=conditions,
        )
        dify_ids = list(dict.fromkeys(c.document_id for c in chunks if c.document_id))
        knowns = await _bounded(self.concurrency, lambda d: self.known(client, d), dify_ids)
        by_id = {d: known for d, known in zip(dify_ids, knowns, strict=True) if known is not None}
        return [self._hit(chunk, by_id) for chunk in chunks if chunk.document_id in by_id]

    @staticmethod
    def _hit(chunk: RetrievedChunk, by_id: Mapping[str, Known]) -> Hit:
        assert chunk.document_id is not None
        return Hit(chunk.content, chunk.score, by_id[chunk.document_id], chunk.segment_id)

    async def scan_known(self, client: AsyncDifyKnowledgeClient) -> list[Known]:
        """Every document of the dataset written by a store (from list items, no details)."""
        documents: list[Known] = []
        for page in range(1, _MAX_SCAN_PAGES + 1):
            listing = await client.list_documents(self.dataset_id, page=page, limit=_LIST_PAGE)
            documents.extend(_known_from(item) for item in listing.data)
            if len(listing.data) < _LIST_PAGE:
                break
        return [d for d in documents if d.manifest]


def new_id() -> str:
    """A fresh caller id (what LangChain stores generate when none is given)."""
    return str(uuid.uuid4())
