"""The status requests a client's monitor polls through: ``indexing-status`` and list pages.

`HTTPStatusSource` is the `~dify_ingest_tools.monitor.StatusSource` every client builds over
its transport; the monitor sees only that narrow interface, never the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from yarl import URL

from ._inputs import check_batch, check_dataset_id
from ._status_body import parse_status_body
from ._transport import Transport, first_error, shape_error
from .models import BatchIndexingStatus, DocumentIndexingStatus, DocumentList
from .shared_polls import RedisStatusCache

__all__ = ["HTTPStatusSource"]

_URL_CACHE_SIZE = 4096


class HTTPStatusSource:
    """Fetches batch statuses and document-list pages over a client's transport.

    Args:
        transport: The client's request path.
        url: Builds an API URL from path parts (the client's base URL).
        on_status: Called with every status fetched (the client's pending-upload gate).
        observe: Awaited with every status fetched (the client's pending ledger).
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
        self._status_urls: dict[tuple[str, str], URL] = {}

    def validate(self, dataset_id: str, batch: str) -> None:
        """Raise `ValueError` for a malformed dataset id or batch (no request is sent)."""
        self._status_url(dataset_id, batch)

    async def fetch_status(
        self, dataset_id: str, batch: str, *, deadline: float | None = None, retry: bool = True
    ) -> BatchIndexingStatus:
        """One ``indexing-status`` request (with transport retries unless ``retry=False``)."""
        url = self._status_url(dataset_id, batch)

        def decode(raw: bytes) -> tuple[DocumentIndexingStatus, ...]:
            return parse_status_body(raw, url)

        # Decoded inside the retry loop: a body cut off mid-way is retried like a drop.
        if self._cache is None:
            documents = await self._transport.decoded(
                "GET", url, decode, idempotent=True, deadline=deadline, retry=retry
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
                )
                return raw  # only a body that parses is shared

            raw = await self._cache.get_or_fetch(self._scope, dataset_id, batch, fetch, deadline)
            documents = decode(raw)
        status = BatchIndexingStatus(dataset_id=dataset_id, batch=batch, documents=documents)
        self._on_status(status)
        if self._observe is not None:
            await self._observe(status)
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
    ) -> DocumentList:
        """One page of ``GET /datasets/{id}/documents``.

        With a ``deadline`` (the monitor's sweeps) one attempt is made: the sweep falls back on
        its own instead of retrying.
        """
        params = {"page": str(page), "limit": str(limit)}
        if status:
            params["status"] = status
        if keyword:
            params["keyword"] = keyword
        url = self._url("datasets", dataset_id, "documents")
        payload = await self._transport.json(
            "GET", url, params=params, idempotent=True, deadline=deadline, retry=deadline is None
        )
        try:
            return DocumentList.model_validate(payload)
        except ValidationError as exc:
            raise shape_error(f"DocumentList: {first_error(exc)}", payload, url, "GET") from None

    def _status_url(self, dataset_id: str, batch: str) -> URL:
        key = (dataset_id, batch)
        url = self._status_urls.get(key)
        if url is None:
            check_dataset_id(dataset_id)
            check_batch(batch)
            url = self._url("datasets", dataset_id, "documents", batch, "indexing-status")
            if len(self._status_urls) >= _URL_CACHE_SIZE:
                self._status_urls.clear()
            self._status_urls[key] = url
        return url
