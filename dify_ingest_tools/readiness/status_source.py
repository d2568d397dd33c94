"""The status requests a client's monitor polls through: ``indexing-status`` and list pages.

`HTTPStatusSource` is the `~dify_ingest_tools.readiness.monitor.StatusSource` every client
builds over its transport; the monitor sees only that narrow interface, never the client.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from pydantic import ValidationError
from yarl import URL

from dify_ingest_tools._base.inputs import check_batch, check_dataset_id
from dify_ingest_tools._http.answer_errors import shape_error, validation_error
from dify_ingest_tools._http.status_body import parse_status_body
from dify_ingest_tools._http.transport import Transport
from dify_ingest_tools.backends.shared_polls import RedisStatusCache
from dify_ingest_tools.models.documents import DocumentList
from dify_ingest_tools.models.status import BatchIndexingStatus, DocumentIndexingStatus

_URL_CACHE_SIZE = 4096
_Decoder = Callable[[bytes], tuple[DocumentIndexingStatus, ...]]
_now = datetime.now
_UTC = timezone.utc


def _document_list(raw: bytes, url: URL) -> DocumentList:
    """A list page, validated by pydantic-core straight from the bytes (sweeps read many)."""
    if not raw.strip():
        raise shape_error("DocumentList: an empty body", None, url, "GET")
    try:
        return DocumentList.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error(exc, raw, url, "GET", "DocumentList") from None


class HTTPStatusSource:
    """Fetches batch statuses and document-list pages over a client's transport.

    Args:
        transport: The client's request path.
        url: Builds an API URL from path parts (the client's base URL).
        on_status: Called with every status fetched (the client's pending registry).
        observe: Awaited with every status fetched, before ``on_status`` (the ledger hook).
        cache: Shares answers with other processes (`RedisStatusCache`), keyed by ``scope``
            (the client's server and key).
    """

    def __init__(
        self,
        transport: Transport,
        url: Callable[..., URL],
        on_status: Callable[[BatchIndexingStatus], None],
        *,
        observe: Callable[[BatchIndexingStatus], Awaitable[None]] | None = None,
        cache: RedisStatusCache | None = None,
        scope: str = "",
    ) -> None:
        self._transport = transport
        self._url = url
        self._on_status = on_status
        self._observe = observe
        self._cache = cache
        self._scope = scope
        self._status_routes: dict[tuple[str, str], tuple[URL, _Decoder]] = {}

    def validate(self, dataset_id: str, batch: str) -> None:
        """Raise `ValueError` for a malformed dataset id or batch (no request is sent)."""
        self._status_route(dataset_id, batch)

    async def fetch_status(
        self,
        dataset_id: str,
        batch: str,
        *,
        deadline: float | None = None,
        retry: bool = True,
        on_send: Callable[[], None] | None = None,
    ) -> BatchIndexingStatus:
        """One ``indexing-status`` request (with transport retries unless ``retry=False``);
        ``on_send`` is called as each attempt leaves (see `Transport.decoded`)."""
        url, decode = self._status_route(dataset_id, batch)
        # Decoded inside the retry loop: a body cut off mid-way is retried like a drop.
        if self._cache is None:
            documents = await self._transport.decoded(
                "GET", url, decode, idempotent=True, deadline=deadline, retry=retry, on_send=on_send
            )
        else:

            async def fetch() -> bytes:
                _, raw = await self._transport.decoded(
                    "GET",
                    url,
                    lambda raw: (decode(raw), raw),
                    idempotent=True,
                    deadline=deadline,
                    retry=retry,
                    on_send=on_send,
                )
                return raw  # only a body that parses is shared

            raw = await self._cache.get_or_fetch(self._scope, dataset_id, batch, fetch, deadline)
            documents = decode(raw)
        # observed_at passed, not defaulted: pydantic's default_factory call costs more.
        status = BatchIndexingStatus(
            dataset_id=dataset_id, batch=batch, documents=documents, observed_at=_now(_UTC)
        )
        try:
            if self._observe is not None:
                # First: the ledger settles what its view of the pending registry holds,
                # which `on_status` then forgets.
                await self._observe(status)
        finally:
            self._on_status(status)
        return status

    async def list_page(
        self,
        dataset_id: str,
        *,
        page: int,
        limit: int,
        status: str | None = None,
        keyword: str | None = None,
        deadline: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> DocumentList:
        """One page of ``GET /datasets/{id}/documents``.

        With a ``deadline`` (the monitor's sweeps) one attempt is made: the sweep falls back on
        its own instead of retrying. ``on_send`` as in `fetch_status`.
        """
        params = {"page": str(page), "limit": str(limit)}
        if status:
            params["status"] = status
        if keyword:
            params["keyword"] = keyword
        url = self._url("datasets", dataset_id, "documents")

        def decode(raw: bytes) -> DocumentList:
            return _document_list(raw, url)

        return await self._transport.decoded(
            "GET",
            url,
            decode,
            params=params,
            idempotent=True,
            deadline=deadline,
            retry=deadline is None,
            on_send=on_send,
        )

    def _status_route(self, dataset_id: str, batch: str) -> tuple[URL, _Decoder]:
        """The batch's status URL and the decoder of its answers (checked once, then cached)."""
        key = (dataset_id, batch)
        route = self._status_routes.get(key)
        if route is None:
            check_dataset_id(dataset_id)
            check_batch(batch)
            url = self._url("datasets", dataset_id, "documents", batch, "indexing-status")
            route = (url, functools.partial(parse_status_body, url=url))
            if len(self._status_routes) >= _URL_CACHE_SIZE:
                self._status_routes.clear()
            self._status_routes[key] = route
        return route
