"""The read path of the store core: finding documents by key, caller id and Dify id (with
the caches that spare Dify the same GETs), the search gate, reads and searches.

`StoreReads` holds the state every path shares; `dify_ingest_tools.agent.store.StoreCore`
adds the write path (ownership checks, conflicts, metadata) on top of it.

Retrieval records carry no document metadata on a real Dify (``segment.document`` is all
null), so hits are joined with the document's detail: one GET per document, cached (bounded,
with a time to live) and refreshed by the store's own writes.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dify_ingest_tools._base.filters import metadata_conditions
from dify_ingest_tools.agent.store_mapping import (
    ID_FIELD,
    Hit,
    Known,
    Named,
    field_name_for,
    is_marked,
    known_from,
)
from dify_ingest_tools.client.pending import PendingScope, PendingView
from dify_ingest_tools.errors import DifyNotFoundError
from dify_ingest_tools.models.documents import DifyDocument, MetadataEntry, MetadataField
from dify_ingest_tools.models.retrieval import RetrievedChunk

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient

_LIST_PAGE = 100
_MAX_SCAN_PAGES = 200

T = TypeVar("T")
A = TypeVar("A")


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


async def bounded(limit: int, func: Callable[[A], Awaitable[T]], items: Iterable[A]) -> list[T]:
    """``func`` over ``items`` with at most ``limit`` calls in flight; results in order."""
    gate = asyncio.Semaphore(limit)

    async def run(item: A) -> T:
        async with gate:
            return await func(item)

    return list(await asyncio.gather(*(run(item) for item in items)))


class StoreReads:
    """The state and the read path of `StoreCore` (see it for the arguments)."""

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
        # client's pending registry under this scope (`client.pending`).
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
            found = await bounded(self.concurrency, lambda i: self._find_by_name(client, i), ids)
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
        known = known_from(document)
        self._details.put(dify_id, known)
        return known

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
        self,
        client: AsyncDifyKnowledgeClient,
        ids: Sequence[str],
        *,
        gate: Mapping[str, Any] | None = None,
    ) -> list[tuple[Known, str]]:
        """``(document, text from its segments)`` for the ids that exist, in input order.

        With ``gate`` (wait options), first waits for the writes made with ``wait=False``.
        """
        if gate is not None:
            await self.gate(client, gate)
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
        read_all = await bounded(self.concurrency, read, order)
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
        gate: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Retrieve ``k`` chunks and join each with its document's id and metadata.

        With ``gate`` (wait options), first waits for the writes made with ``wait=False``.
        """
        if gate is not None:
            await self.gate(client, gate)
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
        knowns = await bounded(self.concurrency, lambda d: self.known(client, d), dify_ids)
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
            documents.extend(known_from(item) for item in listing.data)
            if len(listing.data) < _LIST_PAGE:
                break
        return [d for d in documents if d.manifest]
