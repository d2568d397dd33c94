"""What a client remembers about each knowledge base: its settings and indexing technique."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any


class DatasetSettings:
    """``GET /datasets/{id}`` answers, read once per client, and the technique used to create.

    Dataset ids are compared case-insensitively (Dify's are UUIDs).
    """

    def __init__(self) -> None:
        self._settings: dict[str, dict[str, Any]] = {}
        self._techniques: dict[str, str] = {}
        self._reading: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def read(
        self, dataset_id: str, fetch: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """The settings, from the cache or ``fetch()``: one read at a time per dataset.

        Every create without an ``indexing_technique`` needs them, so 20 concurrent creates
        into a new dataset would otherwise send 20 reads. The read runs in a task of its own
        that callers arriving meanwhile share (a failure too: it is not cached, the next
        caller reads again); a caller that is cancelled leaves it to the others.
        """
        key = dataset_id.lower()
        cached = self._settings.get(key)
        if cached is not None:
            return cached
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read(key, fetch))
            reading.add_done_callback(_retrieved)
            self._reading[key] = reading
        return await asyncio.shield(reading)

    async def _read(
        self, key: str, fetch: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        try:
            settings = await fetch()
            self._settings[key] = settings
            return settings
        finally:
            self._reading.pop(key, None)

    def after_fork_in_child(self) -> None:
        # A read in flight in the parent never ends here: its future is the parent loop's.
        self._reading = {}

    def forget(self, dataset_id: str) -> None:
        """Drop what is known of a dataset (after it was deleted)."""
        self._settings.pop(dataset_id.lower(), None)
        self._techniques.pop(dataset_id.lower(), None)

    def remember_technique(self, dataset_id: str, technique: str) -> None:
        """Note the technique a document was created with (a dataset keeps its first one)."""
        self._techniques.setdefault(dataset_id.lower(), technique)

    def known_technique(self, dataset_id: str, settings: Mapping[str, Any]) -> str | None:
        """The dataset's technique from its settings, else the one documents were created with."""
        technique = settings.get("indexing_technique") or self._techniques.get(dataset_id.lower())
        return technique if isinstance(technique, str) else None


def _retrieved(task: asyncio.Future[Any]) -> None:
    # Every caller may have been cancelled: the failure is theirs, not an unhandled one.
    if not task.cancelled():
        task.exception()
