"""What a client remembers about each knowledge base: its settings and indexing technique."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DatasetSettings"]


class DatasetSettings:
    """``GET /datasets/{id}`` answers, read once per client, and the technique used to create.

    Dataset ids are compared case-insensitively (Dify's are UUIDs).
    """

    def __init__(self) -> None:
        self._settings: dict[str, dict[str, Any]] = {}
        self._techniques: dict[str, str] = {}

    def cached(self, dataset_id: str) -> dict[str, Any] | None:
        """The dataset's settings if they were read before."""
        return self._settings.get(dataset_id.lower())

    def store(self, dataset_id: str, settings: dict[str, Any]) -> None:
        self._settings[dataset_id.lower()] = settings

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
