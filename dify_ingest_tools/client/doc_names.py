"""Names and metadata of the documents retrieval hits come from, looked up and cached.

Dify's retrieve records carry ``segment.document`` with every field null (keyword search on
1.14.1, recordings 06 and 12): only ``segment.document_id`` says where a hit comes from. So
`retrieve` asks the document list (or one document's detail) for the rest, once per unknown
document, and keeps the answers in a small LRU with a TTL. A lookup never fails a retrieve:
whatever cannot be learnt in time stays None.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dify_ingest_tools.errors import DifyError, DifyNotFoundError
from dify_ingest_tools.models.documents import DifyDocument, DocumentList

logger = logging.getLogger("dify_ingest_tools")

#: Entries kept (least recently used dropped first) and how long one is trusted: names change
#: only on a rename, and this client's own creates, updates and deletes invalidate at once.
MAX_ENTRIES = 4096
TTL = 300.0
#: One retrieve's lookups end within this many seconds (one attempt each, no retries).
LOOKUP_SECONDS = 5.0
#: One unknown document is fetched by its detail; more, by the newest pages of the list first
#: (one request names up to 100 documents).
DETAIL_AT_MOST = 1
LIST_PAGE_SIZE = 100
LIST_PAGES = 3
#: Documents the list did not show, fetched one by one afterwards (the rest stay unnamed).
DETAILS_AFTER_LIST = 8

_Key = tuple[str, str]


@dataclass(frozen=True)
class DocumentInfo:
    """What retrieval hits are labelled with: the document's name and Dify metadata.

    Attributes:
        name: The document's name; None when Dify did not say (a deleted document).
        doc_metadata: The document's metadata fields as ``{name: value}`` (Dify's built-in
            fields left out); empty when it has none.
    """

    name: str | None
    doc_metadata: Mapping[str, Any]

    @classmethod
    def of(cls, document: DifyDocument) -> DocumentInfo:
        return cls(name=document.name or None, doc_metadata=_metadata(document))


UNKNOWN = DocumentInfo(name=None, doc_metadata={})


class DocumentSource(Protocol):
    """The two reads a lookup needs; each is one attempt bounded by ``deadline``."""

    def deadline(self, seconds: float) -> float:
        """The instant ``seconds`` from now, on the clock the reads' deadlines use."""
        ...

    def list_page(self, dataset_id: str, page: int, deadline: float) -> Awaitable[DocumentList]:
        """One page (``LIST_PAGE_SIZE`` documents, newest first) of the dataset's list."""
        ...

    def detail(self, dataset_id: str, document_id: str, deadline: float) -> Awaitable[DifyDocument]:
        """One document's detail."""
        ...


class DocumentNames:
    """A bounded, expiring cache of `DocumentInfo` per ``(dataset, document)``.

    Concurrent lookups of the same document share one request. Not thread-safe: it lives on
    its client's event loop.
    """

    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[_Key, tuple[float, DocumentInfo]] = OrderedDict()
        self._pending: dict[_Key, asyncio.Future[DocumentInfo | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, dataset_id: str, document_id: str) -> DocumentInfo | None:
        """The cached info, or None when unknown or expired."""
        key = _key(dataset_id, document_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, info = entry
        if self.clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return info

    def put(self, dataset_id: str, document_id: str, info: DocumentInfo) -> None:
        key = _key(dataset_id, document_id)
        self._entries[key] = (self.clock() + self.ttl, info)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, dataset_id: str, document_id: str | None = None) -> None:
        """Drop one document (after a create, update or delete), or a whole dataset's."""
        if document_id is not None:
            self._entries.pop(_key(dataset_id, document_id), None)
            return
        dataset = dataset_id.lower()
        for key in [key for key in self._entries if key[0] == dataset]:
            del self._entries[key]

    async def resolve(
        self, dataset_id: str, document_ids: Iterable[str], source: DocumentSource
    ) -> dict[str, DocumentInfo]:
        """Info for each id that could be learnt (cached, shared, or looked up now).

        Never raises a Dify or connection error; ids that could not be named are left out.
        """
        found: dict[str, DocumentInfo] = {}
        shared: dict[str, asyncio.Future[DocumentInfo | None]] = {}
        mine: dict[str, asyncio.Future[DocumentInfo | None]] = {}
        loop = asyncio.get_running_loop()
        for document_id in dict.fromkeys(document_ids):
            info = self.get(dataset_id, document_id)
            key = _key(dataset_id, document_id)
            if info is not None:
                found[document_id] = info
            elif key in self._pending:
                shared[document_id] = self._pending[key]
            else:
                mine[document_id] = self._pending[key] = loop.create_future()
        if mine:
            try:
                learnt = await self._look_up(dataset_id, list(mine), source)
                for document_id, future in mine.items():
                    future.set_result(learnt.get(document_id))
                found.update(learnt)
            finally:
                # Whatever happened (cancellation included), nobody waits on these for ever.
                for document_id, future in mine.items():
                    key = _key(dataset_id, document_id)
                    if self._pending.get(key) is future:
                        del self._pending[key]
                    if not future.done():
                        future.set_result(None)
        for document_id, future in shared.items():
            info = await asyncio.shield(future)
            if info is not None:
                found[document_id] = info
        return found

    async def _look_up(
        self, dataset_id: str, wanted: list[str], source: DocumentSource
    ) -> dict[str, DocumentInfo]:
        deadline = source.deadline(LOOKUP_SECONDS)
        learnt: dict[str, DocumentInfo] = {}
        missing = {document_id.lower(): document_id for document_id in wanted}
        try:
            if len(missing) > DETAIL_AT_MOST:
                await self._from_list(dataset_id, missing, learnt, source, deadline)
            details = list(missing.values())
            if len(wanted) > DETAIL_AT_MOST:
                details = details[:DETAILS_AFTER_LIST]
            if details:
                answers = await asyncio.gather(
                    *(source.detail(dataset_id, document_id, deadline) for document_id in details),
                    return_exceptions=True,
                )
                for document_id, answer in zip(details, answers, strict=True):
                    if isinstance(answer, DifyDocument):
                        learnt[document_id] = self._keep(dataset_id, document_id, answer)
                    elif isinstance(answer, DifyNotFoundError):
                        # Deleted since it was indexed: remember that, do not ask again.
                        self.put(dataset_id, document_id, UNKNOWN)
                        learnt[document_id] = UNKNOWN
                    elif isinstance(answer, Exception):
                        _log(dataset_id, answer)
                    elif isinstance(answer, BaseException):
                        raise answer
        except Exception as error:  # a lookup never fails the retrieve it labels
            _log(dataset_id, error)
        return learnt

    async def _from_list(
        self,
        dataset_id: str,
        missing: dict[str, str],
        learnt: dict[str, DocumentInfo],
        source: DocumentSource,
        deadline: float,
    ) -> None:
        """Read the newest pages of the list while they can name what is missing."""
        for page in range(1, LIST_PAGES + 1):
            listing = await source.list_page(dataset_id, page, deadline)
            for document in listing.data:
                # Every listed document is worth keeping: the next hits are likely among them.
                info = DocumentInfo.of(document)
                self.put(dataset_id, document.id, info)
                wanted = missing.pop(document.id.lower(), None)
                if wanted is not None:
                    learnt[wanted] = info
            if not missing or not listing.has_more or not listing.data:
                return
            if len(missing) <= DETAILS_AFTER_LIST:
                return  # cheaper one by one than page after page

    def _keep(self, dataset_id: str, document_id: str, document: DifyDocument) -> DocumentInfo:
        info = DocumentInfo.of(document)
        self.put(dataset_id, document_id, info)
        return info


def _metadata(document: DifyDocument) -> dict[str, Any]:
    """``{name: value}`` of the document's own metadata fields.

    Dify lists them as ``[{id, name, type, value}]`` and adds its five built-in fields (``id ==
    "built-in"``) even while they are disabled; the list shows numbers as strings (``"5"``)
    where the detail shows ``5``, so number fields are read back as numbers.
    """
    raw = (document.model_extra or {}).get("doc_metadata")
    if not isinstance(raw, list):
        return {}
    fields: dict[str, Any] = {}
    for item in raw:
        if not isinstance(item, dict) or item.get("id") == "built-in":
            continue
        name, value = item.get("name"), item.get("value")
        if isinstance(name, str):
            fields[name] = _number(value) if item.get("type") == "number" else value
    return fields


def _number(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def _key(dataset_id: str, document_id: str) -> _Key:
    return dataset_id.lower(), document_id.lower()


def _log(dataset_id: str, error: Exception) -> None:
    # Only the error's type: its text is the server's (or could carry request details), and
    # the hits are fine without names. Anything but a Dify error is a surprise: say so louder.
    logger.log(
        logging.INFO if isinstance(error, DifyError) else logging.WARNING,
        "could not name the documents of retrieval hits in dataset %s (%s); names stay unset",
        dataset_id,
        type(error).__name__,
    )
