"""`DifyIndexingToolSpec`: lets an agent check, or wait for, Dify's indexing of an upload.

Both tools answer in one paragraph the model can act on, word for word the text of the
LangChain tools, the toolkit and the MCP server (``dify_ingest_tools.agent.answers``). A ready,
working, paused or failed batch, a wait that runs out of time, a stall and a batch or
dataset Dify does not know are answers, not errors. Everything else (a wrong key, a rate
limit, Dify unreachable, a malformed id) raises, as LlamaIndex tools do: `DifyToolError` for
Dify's errors, ``ValueError`` for invalid arguments, each with the answer's text as its
message (Dify's status, code and message, and what to do next; never the key or the server's
URL). LlamaIndex's agents turn the exception into a tool output with ``is_error=True`` and
that message as its content.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.tools import FunctionTool, ToolMetadata
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from pydantic import SecretStr

from dify_ingest_tools.agent.answers import DifyToolError
from dify_ingest_tools.agent.error_answers import answer_error
from dify_ingest_tools.agent.tool_calls import target_dataset
from dify_ingest_tools.agent.tool_defs import DEFAULTS
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.llama_index._common import (
    AnyClient,
    EventRelay,
    HoldsClient,
    Work,
    connect,
    tool_metadata,
)
from dify_ingest_tools.readiness.policy import OnEmpty, OnPaused

__all__ = ["DifyIndexingToolSpec", "DifyToolError"]

# The spec function -> the tool set's tool it renders (the spec's names predate the tool set).
_RENDERS = {"get_indexing_status": "indexing_status", "wait_for_indexing": "wait_for_indexing"}


class DifyIndexingToolSpec(HoldsClient, BaseToolSpec):
    """Agent tools over Dify's indexing status: ``get_indexing_status`` and ``wait_for_indexing``.

    The tool set's ``indexing_status`` (named ``get_indexing_status`` here) and
    ``wait_for_indexing`` tools: the same descriptions, argument schemas and answers.
    ``to_tool_list()`` gives one `FunctionTool` per function, each with a blocking and a
    native async implementation (``tool.call(...)`` / ``await tool.acall(...)``); both run on
    the client's event loop, sharing its session and poll loops. The defaults are the tool
    set's (`ToolsetSettings`).

    Args:
        api_key: A Knowledge API key (default: ``DIFY_API_KEY``); never in a tool output.
        base_url: The API root ending in ``/v1`` (default: ``DIFY_API_BASE_URL``).
        client: A `DifyKnowledgeClient` (sync and async tools) or an
            `AsyncDifyKnowledgeClient` (async tools only) instead of ``api_key``.
        dataset_id: Bind the tools to one knowledge base: the model then only sees ``batch``
            (and ``timeout_seconds``).
        max_timeout_seconds: The longest wait a model may ask for, so it cannot freeze the
            agent.
        default_timeout_seconds: The wait when the model gives no ``timeout_seconds``.
        poll_interval: First gap between status polls while waiting.
        max_poll_interval: Longest gap between polls.
        stall_timeout: Answer "stalled" when nothing changes for this long (None: off).
        not_found_grace: Seconds a just-created batch may be unknown to Dify before the wait
            answers that Dify does not know it.
        on_paused: ``"fail"`` (default): a paused document ends the wait at once with a
            PAUSED answer (only Dify's console can resume it); ``"wait"`` waits on.
        on_empty: A document indexed with 0 chunks is answered EMPTY ("indexed, but produced
            no chunks — nothing will be found"); ``"warn"`` also logs it.
        summaries: Waits also wait for the documents' summaries (summary indexing datasets).
    """

    spec_functions: list[SPEC_FUNCTION_TYPE] = [  # noqa: RUF012 (BaseToolSpec's declaration)
        ("get_indexing_status", "aget_indexing_status"),
        ("wait_for_indexing", "await_for_indexing"),
    ]

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        client: AnyClient | None = None,
        dataset_id: str | None = None,
        max_timeout_seconds: float = DEFAULTS.max_wait_seconds,
        default_timeout_seconds: float = DEFAULTS.default_wait_seconds,
        poll_interval: float = DEFAULTS.poll_interval,
        max_poll_interval: float = DEFAULTS.max_poll_interval,
        stall_timeout: float | None = DEFAULTS.stall_timeout,
        not_found_grace: float = DEFAULTS.not_found_grace,
        on_paused: OnPaused = DEFAULTS.on_paused,
        on_empty: OnEmpty = DEFAULTS.on_empty,
        summaries: bool = DEFAULTS.summaries,
    ) -> None:
        if max_timeout_seconds <= 0:
            raise ValueError("max_timeout_seconds must be > 0")
        self.toolset = DifyToolset(
            dataset_id=dataset_id,
            max_wait_seconds=max_timeout_seconds,
            default_wait_seconds=default_timeout_seconds,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            stall_timeout=stall_timeout,
            not_found_grace=not_found_grace,
            on_paused=on_paused,
            on_empty=on_empty,
            summaries=summaries,
        )
        self.dataset_id = self.toolset.dataset_id
        self.max_timeout_seconds = self.toolset.max_wait_seconds
        self.default_timeout_seconds = self.toolset.default_wait_seconds
        self._bridge, self._owns_client = connect(client, api_key, base_url)

    def __repr__(self) -> str:
        bound = f", dataset_id={self.dataset_id!r}" if self.dataset_id else ""
        return f"{type(self).__name__}(client={self.client!r}{bound})"

    # -- what the model sees -----------------------------------------------------------------

    def to_tool_list(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """The tools, with names, descriptions and argument schemas written for the model.

        With a pre-bound ``dataset_id`` the schemas have no ``dataset_id`` argument.
        """
        mapping = {**self._metadata(), **(func_to_metadata_mapping or {})}
        return super().to_tool_list(spec_functions, mapping)

    def _metadata(self) -> dict[str, ToolMetadata]:
        return {
            name: tool_metadata(self.toolset.definition(tool), name)
            for name, tool in _RENDERS.items()
        }

    # -- the tools -----------------------------------------------------------------------------

    def get_indexing_status(self, batch: str, *, dataset_id: str | None = None) -> str:
        """Whether the batch is indexed yet, without waiting (one paragraph for the model)."""
        work = self._call("indexing_status", {"batch": batch}, dataset_id, EventRelay(None))
        return self._bridge.call(work)

    async def aget_indexing_status(self, batch: str, *, dataset_id: str | None = None) -> str:
        """Async `get_indexing_status`."""
        relay = EventRelay(asyncio.get_running_loop())
        return await self._bridge.acall(
            self._call("indexing_status", {"batch": batch}, dataset_id, relay)
        )

    def wait_for_indexing(
        self, batch: str, timeout_seconds: float | None = None, *, dataset_id: str | None = None
    ) -> str:
        """Wait (bounded) until the batch is indexed; a timeout or a failure is an answer."""
        args = _wait_args(batch, timeout_seconds)
        work = self._call("wait_for_indexing", args, dataset_id, EventRelay(None))
        return self._bridge.call(work)

    async def await_for_indexing(
        self, batch: str, timeout_seconds: float | None = None, *, dataset_id: str | None = None
    ) -> str:
        """Async `wait_for_indexing`."""
        relay = EventRelay(asyncio.get_running_loop())
        args = _wait_args(batch, timeout_seconds)
        return await self._bridge.acall(self._call("wait_for_indexing", args, dataset_id, relay))

    # -- one implementation for both -------------------------------------------------------------

    def _call(
        self, tool: str, arguments: dict[str, Any], dataset_id: str | None, relay: EventRelay
    ) -> Work[str]:
        """The tool set's call; a bound dataset is checked here (a Python keyword, not an
        argument of the model's schema)."""
        try:
            target = target_dataset(self.dataset_id, dataset_id)
        except ValueError as error:
            raise ValueError(answer_error(error, dataset_id=dataset_id).text) from error
        if self.dataset_id is None:
            arguments = {"dataset_id": target, **arguments}

        async def work(client: AsyncDifyKnowledgeClient) -> str:
            try:
                result = await self.toolset.run(client, tool, arguments, on_event=relay)
            except DifyToolError as error:
                if isinstance(error.error, DifyError):
                    raise
                # Invalid arguments raise ValueError, as LlamaIndex tools do.
                raise ValueError(str(error)) from error
            return result.text

        return work


def _wait_args(batch: str, timeout_seconds: float | None) -> dict[str, Any]:
    """Left out, ``timeout_seconds`` takes the tool's default."""
    if timeout_seconds is None:
        return {"batch": batch}
    return {"batch": batch, "timeout_seconds": timeout_seconds}
