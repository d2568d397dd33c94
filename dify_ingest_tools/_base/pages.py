"""`PageBound`: when a loop over Dify's list pages stops (documents, segments).

A loop that trusts ``has_more`` alone never ends against a server that always says true (one
did: 5,232 pages and 855 MB for one ``dify-ingest documents``). Every loop over list pages
stops at the first of: ``has_more`` false, an empty page, a page that shows nothing new (a
server that ignores ``page``), as many items as Dify's ``total`` says there are, or its own
page count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class _Item(Protocol):
    @property
    def id(self) -> str: ...


_T = TypeVar("_T", bound=_Item)


class _Page(Protocol):
    @property
    def data(self) -> Sequence[_Item]: ...

    @property
    def has_more(self) -> bool: ...

    @property
    def total(self) -> int: ...


class PageBound:
    """Counts one page loop and says whether to read the next page.

    Args:
        max_pages: The most pages the loop reads, whatever the server says.

    Attributes:
        pages: Pages read so far.
        seen: Distinct items seen so far.
        capped: True when the loop stopped at ``max_pages`` while the server still said
            there was more (the caller may say so).
    """

    def __init__(self, max_pages: int) -> None:
        if max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        self.max_pages = max_pages
        self.pages = 0
        self.capped = False
        self._ids: set[str] = set()
        self._fresh = False

    @property
    def seen(self) -> int:
        return len(self._ids)

    def new_items(self, items: Sequence[_T]) -> list[_T]:
        """The items of a page just read (its ``data``) not seen on an earlier page."""
        self.pages += 1
        fresh = []
        for item in items:
            if item.id not in self._ids:
                self._ids.add(item.id)
                fresh.append(item)
        self._fresh = bool(fresh)
        return fresh

    def more(self, page: _Page) -> bool:
        """Whether to read the page after ``page`` (call `new_items` on it first)."""
        if not page.has_more or not page.data or not self._fresh:
            return False
        # A total of 0 beside a full page is a server that does not send one: not a bound.
        if page.total > 0 and self.seen >= page.total:
            return False
        if self.pages >= self.max_pages:
            self.capped = True
            return False
        return True
