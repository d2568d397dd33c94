"""What every LlamaIndex adapter shares: the client it talks through, and the event relay."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from llama_index.core.tools import ToolMetadata
from pydantic import SecretStr

from dify_ingest_tools.agent.tool_defs import ToolDefinition
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.bridge import ClientBridge, DifyKnowledgeClient, unpicklable
from dify_ingest_tools.events import IndexingEvent
from dify_ingest_tools.llama_index.events import emit

__all__ = [
    "BATCH_KEY",
    "DATASET_ID_KEY",
    "DOCUMENT_ID_KEY",
    "ERROR_KEY",
    "STATUS_KEY",
    "VERDICT_KEY",
    "AnyClient",
    "EventRelay",
    "Work",
    "connect",
    "tool_metadata",
]

logger = logging.getLogger("dify_ingest_tools")

T = TypeVar("T")

AnyClient: TypeAlias = "AsyncDifyKnowledgeClient | DifyKnowledgeClient"
Work: TypeAlias = Callable[[AsyncDifyKnowledgeClient], Coroutine[Any, Any, T]]
"""What `ClientBridge.call` / `ClientBridge.acall` run: one coroutine on the client's loop."""

# Node metadata written by the uploader and the waiter (flat values: vector stores and
# metadata filters only take str / int / float / None). A key named after a Dify field holds
# Dify's value for it (`dify_indexing_status`: "completed", "error", "paused", ...); our own
# reading of it has a key of its own (`dify_indexing_verdict`: "ready", "failed", ...).
DATASET_ID_KEY = "dify_dataset_id"
DOCUMENT_ID_KEY = "dify_document_id"
BATCH_KEY = "dify_batch"
STATUS_KEY = "dify_indexing_status"
VERDICT_KEY = "dify_indexing_verdict"
ERROR_KEY = "dify_indexing_error"


def connect(
    client: AnyClient | None, api_key: str | SecretStr | None, base_url: str | None
) -> tuple[ClientBridge, bool]:
    """The bridge to talk through, and whether this adapter created (and so owns) the client.

    Without ``client`` a `DifyKnowledgeClient` is built (from the arguments or the
    ``DIFY_API_KEY`` / ``DIFY_API_BASE_URL`` environment variables): it serves both blocking
    and async callers, on its own loop.
    """
    if client is not None:
        if api_key is not None or base_url is not None:
            raise ValueError(
                "pass either client=... or api_key=/base_url=, not both: the client already "
                "holds its key and URL"
            )
        if not isinstance(client, (AsyncDifyKnowledgeClient, DifyKnowledgeClient)):
            raise TypeError(
                "client must be a DifyKnowledgeClient or an AsyncDifyKnowledgeClient, "
                f"got {type(client).__name__}"
            )
        return ClientBridge(client), False
    return ClientBridge(DifyKnowledgeClient(api_key, base_url)), True


def close_owned(bridge: ClientBridge, owned: bool) -> None:
    """Close the client if the adapter created it (a client passed in is the caller's)."""
    if owned and isinstance(bridge.client, DifyKnowledgeClient):
        bridge.client.close()


class HoldsClient:
    """`client` and `close()` for the adapters, which keep ``_bridge`` and ``_owns_client``."""

    if TYPE_CHECKING:
        _bridge: ClientBridge
        _owns_client: bool

    @property
    def client(self) -> AnyClient:
        """The Dify client; pass it to the other components and to `DifyRetriever`."""
        return self._bridge.client

    def close(self) -> None:
        """Close the client if this object created it (from ``api_key`` / ``base_url``)."""
        close_owned(self._bridge, self._owns_client)

    def __getstate__(self) -> dict[Any, Any]:
        raise unpicklable(self)


class EventRelay:
    """Hands a wait's `IndexingEvent`s to LlamaIndex's dispatcher, in the caller's context.

    The wait runs on the client's loop. For a `DifyKnowledgeClient` that loop lives in a
    worker thread whose contextvars are not the caller's, and LlamaIndex reads the active span
    (``BaseEvent.span_id``) and the ``instrument_tags`` from contextvars. So every event is
    built and dispatched inside a copy of the caller's context:

    * async callers (``loop`` given) get the events on their own loop, through
      ``call_soon_threadsafe``: handlers run in the caller's thread while it awaits, and all
      of them have run before the awaited call returns (the loop runs callbacks in order);
    * blocking callers (``loop=None``) are parked until the wait ends, so events are
      dispatched from the client's thread, inside the caller's context, the way LlamaIndex's
      own ``sync_to_async`` runs a function in an executor thread.

    Create one per call, in the caller's thread.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._context = contextvars.copy_context()
        self._loop = loop
        self._thread = threading.get_ident()

    def __call__(self, event: IndexingEvent) -> None:
        if self._loop is None or threading.get_ident() == self._thread:
            self._context.run(emit, event)
            return
        try:
            self._loop.call_soon_threadsafe(emit, event, context=self._context)
        except RuntimeError:
            # The caller's loop is closed: the call was abandoned and nobody listens any more.
            logger.debug(
                "dropped a %s event of batch %s: the caller is gone", event.kind, event.batch
            )


@dataclass
class _DefinedMetadata(ToolMetadata):
    """`ToolMetadata` whose parameters are the tool set's JSON schema, key for key (LlamaIndex's
    own would drop ``additionalProperties: false``)."""

    input_schema: dict[str, Any] = field(default_factory=dict)

    def get_parameters_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.input_schema)


def tool_metadata(definition: ToolDefinition, name: str | None = None) -> ToolMetadata:
    """A tool set definition as LlamaIndex tool metadata (under ``name``, if given)."""
    return _DefinedMetadata(
        name=name or definition.name,
        description=definition.description,
        fn_schema=definition.args_model,
        input_schema=definition.input_schema,
    )
