"""Test helpers that need LlamaIndex (imported only by modules that skip without it)."""

from __future__ import annotations

import threading
from typing import Any

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from pydantic import Field, PrivateAttr

from dify_ingest_tools.llama_index import DifyIndexingEvent


class Recorder(BaseEventHandler):
    """Keeps every Dify event, with the thread it was handled on."""

    events: list[DifyIndexingEvent] = Field(default_factory=list)
    _threads: list[int] = PrivateAttr(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, DifyIndexingEvent):
            self.events.append(event)
            self._threads.append(threading.get_ident())

    @property
    def threads(self) -> set[int]:
        return set(self._threads)

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]
