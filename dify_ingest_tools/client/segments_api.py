"""`SegmentsAPI`: a document's segments (chunks), one page or all of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dify_ingest_tools._base.inputs import check_dataset_id, check_document_id
from dify_ingest_tools._base.pages import PageBound
from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.models.documents import DifySegment, SegmentList

if TYPE_CHECKING:
    pass


# Dify's segment list serves at most 100 per page; `all_segments` stops after this many pages.
_SEGMENT_PAGE = 100
_MAX_SEGMENT_PAGES = 1_000


class SegmentsAPI(ClientHost):
    """Reading a document's segments (``GET .../documents/{id}/segments``)."""

    async def list_segments(
        self,
        dataset_id: str,
        document_id: str,
        *,
        page: int = 1,
        limit: int = 20,
        keyword: str | None = None,
        status: str | Sequence[str] | None = None,
    ) -> SegmentList:
        """One page of a document's segments (chunks), in position order.

        Args:
            page: 1-based page number.
            limit: Page size, 1 to 100.
            keyword: Only segments containing this text (case-insensitive).
            status: Only segments in these states (``waiting``, ``indexing``,
                ``completed``, ``error``, ``re_segment``). Dify answers an unknown value
                with a 500, so it is refused here.
        """
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        if page < 1:
            raise ValueError("page must be >= 1")
        params: list[tuple[str, str]] = [("page", str(page)), ("limit", str(limit))]
        if keyword:
            params.append(("keyword", keyword))
        statuses = [status] if isinstance(status, str) else list(status or ())
        for value in statuses:
            if value not in _SEGMENT_STATUSES:
                raise ValueError(
                    f"segment status {value!r} is not one of {', '.join(_SEGMENT_STATUSES)} "
                    "(Dify answers an unknown one with a 500)"
                )
            params.append(("status", value))
        url = self._url("datasets", dataset_id, "documents", document_id, "segments")
        payload = await self._transport.json("GET", url.with_query(params), idempotent=True)
        return self._parse(SegmentList, payload, url, "GET")

    async def all_segments(
        self,
        dataset_id: str,
        document_id: str,
        *,
        keyword: str | None = None,
        status: str | Sequence[str] | None = None,
    ) -> list[DifySegment]:
        """Every segment of a document, in position order (pages of 100)."""
        segments: list[DifySegment] = []
        bound = PageBound(_MAX_SEGMENT_PAGES)
        for number in range(1, _MAX_SEGMENT_PAGES + 1):
            page = await self.list_segments(
                dataset_id,
                document_id,
                page=number,
                limit=_SEGMENT_PAGE,
                keyword=keyword,
                status=status,
            )
            segments.extend(bound.new_items(page.data[:_SEGMENT_PAGE]))
            # has_more is len(data) == limit, true on a full last page: trust total too.
            if len(page.data) < _SEGMENT_PAGE or not bound.more(page):
                break
        return segments

    async def get_segment(self, dataset_id: str, document_id: str, segment_id: str) -> DifySegment:
        """One segment (``GET .../segments/{segment_id}``)."""
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        check_document_id(segment_id)
        url = self._url("datasets", dataset_id, "documents", document_id, "segments", segment_id)
        payload = await self._transport.json("GET", url, idempotent=True)
        data = payload.get("data") if isinstance(payload, dict) else None
        return self._parse(DifySegment, data, url, "GET")


_SEGMENT_STATUSES = ("waiting", "indexing", "completed", "error", "re_segment")
