"""`DifyKnowledgeToolSpec`: the whole agent job (upload → status → wait → search, and a
document list) as LlamaIndex tools, rendering the tool set of `dify_ingest_tools.agent.toolkit`.

The answers are the tool set's, word for word the same as the LangChain toolkit's and the MCP
server's. A call the tools cannot answer (bad arguments, a dataset outside the allow-list, a
key Dify rejects) raises `DifyToolError`, which LlamaIndex's agents hand to the model as a
tool output with ``is_error=True``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.tools import FunctionTool, ToolMetadata
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from pydantic import SecretStr

from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.llama_index._common import (
    AnyClient,
    EventRelay,
    HoldsClient,
    connect,
    tool_metadata,
)

__all__ = ["DifyKnowledgeToolSpec"]


class DifyKnowledgeToolSpec(HoldsClient, BaseToolSpec):
    """Agent tools for a Dify knowledge base: ``upload_text``, ``indexing_status``,
    ``wait_for_indexing``, ``search`` and ``list_documents``.

    ``to_tool_list()`` gives one `FunctionTool` per function with the tool set's name,
    description and argument schema, each with a blocking and a native async implementation
    (``tool.call(...)`` / ``await tool.acall(...)``), both on the client's event loop. The
    tools share one `DifyToolset`, so ``search`` first waits (bounded) for what
    ``upload_text`` sent.

    Args:
        api_key: A Knowledge API key (default: ``DIFY_API_KEY``); never in a tool output.
        base_url: The API root ending in ``/v1`` (default: ``DIFY_API_BASE_URL``).
        client: A `DifyKnowledgeClient` (sync and async tools) or an
            `AsyncDifyKnowledgeClient` (async tools only) instead of ``api_key``.
        **settings: The tool set's settings (`ToolsetSettings`, declared once there):
            ``dataset_id`` (bind the tools to one knowledge base: no ``dataset_id``
            argument) or ``datasets`` (the only knowledge bases the model may name),
            ``max_wait_seconds``, ``search_wait_seconds``, ``top_k``, ``hit_chars``,
            ``poll_interval``, ``allow_replace``, ...
    """

    spec_functions: list[SPEC_FUNCTION_TYPE] = [  # noqa: RUF012 (BaseToolSpec's declaration)
        ("upload_text", "aupload_text"),
        ("indexing_status", "aindexing_status"),
        ("wait_for_indexing", "await_for_indexing"),
        ("search", "asearch"),
        ("list_documents", "alist_documents"),
    ]

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        client: AnyClient | None = None,
        **settings: Any,
    ) -> None:
        self.toolset = DifyToolset(**settings)
        self._bridge, self._owns_client = connect(client, api_key, base_url)

    @property
    def dataset_id(self) -> str | None:
        """The knowledge base the tools are bound to, if any."""
        return self.toolset.dataset_id

    def __repr__(self) -> str:
        bound = f", dataset_id={self.dataset_id!r}" if self.dataset_id else ""
        return f"{type(self).__name__}(client={self.client!r}{bound})"

    def to_tool_list(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """The tools, with the tool set's names, descriptions and argument schemas."""
        mapping = {
            definition.name: tool_metadata(definition) for definition in self.toolset.definitions()
        }
        return super().to_tool_list(spec_functions, {**mapping, **(func_to_metadata_mapping or {})})

    # -- the tools (blocking, then async) --------------------------------------------------------

    def upload_text(self, name: str, text: str, wait_seconds: float = 0.0, **arguments: Any) -> str:
        """Upload a text document; the answer gives its document id and batch."""
        fields = dict(arguments, name=name, text=text, wait_seconds=wait_seconds)
        return self._call("upload_text", fields)

    async def aupload_text(
        self, name: str, text: str, wait_seconds: float = 0.0, **arguments: Any
    ) -> str:
        """Async `upload_text`."""
        return await self._acall(
            "upload_text", dict(arguments, name=name, text=text, wait_seconds=wait_seconds)
        )

    def indexing_status(self, batch: str, **arguments: Any) -> str:
        """Whether an upload is indexed yet, without waiting."""
        return self._call("indexing_status", dict(arguments, batch=batch))

    async def aindexing_status(self, batch: str, **arguments: Any) -> str:
        """Async `indexing_status`."""
        return await self._acall("indexing_status", dict(arguments, batch=batch))

    def wait_for_indexing(self, batch: str, **arguments: Any) -> str:
        """Wait (bounded by the tool's cap) until an upload is indexed."""
        return self._call("wait_for_indexing", dict(arguments, batch=batch))

    async def await_for_indexing(self, batch: str, **arguments: Any) -> str:
        """Async `wait_for_indexing`."""
        return await self._acall("wait_for_indexing", dict(arguments, batch=batch))

    def search(self, query: str, **arguments: Any) -> str:
        """Search the knowledge base (after a bounded wait for this spec's uploads)."""
        return self._call("search", dict(arguments, query=query))

    async def asearch(self, query: str, **arguments: Any) -> str:
        """Async `search`."""
        return await self._acall("search", dict(arguments, query=query))

    def list_documents(self, **arguments: Any) -> str:
        """The knowledge base's documents: name, id and status."""
        return self._call("list_documents", arguments)

    async def alist_documents(self, **arguments: Any) -> str:
        """Async `list_documents`."""
        return await self._acall("list_documents", arguments)

    # -- one implementation for both -------------------------------------------------------------

    def _arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        # Python callers may repeat the bound dataset; the model's schema has no such field.
        given = arguments.get("dataset_id")
        if self.dataset_id is not None and (given is None or given == self.dataset_id):
            arguments.pop("dataset_id", None)
        return arguments

    def _call(self, tool: str, arguments: dict[str, Any]) -> str:
        relay = EventRelay(None)
        args = self._arguments(arguments)

        async def work(client: AsyncDifyKnowledgeClient) -> str:
            return (await self.toolset.run(client, tool, args, on_event=relay)).text

        return self._bridge.call(work)

    async def _acall(self, tool: str, arguments: dict[str, Any]) -> str:
        relay = EventRelay(asyncio.get_running_loop())
        args = self._arguments(arguments)

        async def work(client: AsyncDifyKnowledgeClient) -> str:
            return (await self.toolset.run(client, tool, args, on_event=relay)).text

        return await self._bridge.acall(work)
