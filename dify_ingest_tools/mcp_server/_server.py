"""`build_server`: the tool set as an MCP server (official ``mcp`` SDK, 2.x), and `serve`.

Named ``mcp_server`` (not ``mcp``) so that nothing inside this package can ever be confused
with the SDK's top-level ``mcp`` package.

Each tool's input schema is exactly the tool set's argument model (JSON schema), its output
schema the tool set's result model; the text content is the same answer the LangChain and
LlamaIndex tools give. Answers an agent can act on (an unknown batch, a timeout, a failed or
paused document) are ordinary results with ``outcome`` saying which; a call the tools cannot
answer is a tool error (``isError: true``) whose text says why. ``wait_for_indexing`` (and any
call that waits) sends ``notifications/progress`` when the client gave a progress token.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import WithJsonSchema

from .._version import __version__
from ..answers import DifyToolError
from ..client import AsyncDifyKnowledgeClient
from ..events import IndexingEvent
from ..toolkit import DifyToolset, ToolDefinition

__all__ = ["SERVER_NAME", "Transport", "build_server", "serve"]

logger = logging.getLogger("dify_ingest_tools")

SERVER_NAME = "dify-knowledge"
Transport = Literal["stdio", "streamable-http"]

_INSTRUCTIONS = (
    "Tools for one job on a Dify knowledge base: upload_text (returns a batch), then "
    "indexing_status or wait_for_indexing on that batch until it is READY, then search. "
    "list_documents finds documents you did not upload. A document is not searchable until "
    "its batch is READY; a wait that runs out of time is an answer, not a failure: wait again."
)

_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_ANNOTATIONS = {
    # Upload is an upsert by name in Dify: the same name replaces (re-indexes) a document.
    "upload_text": ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
    ),
    "indexing_status": _READ_ONLY,
    "wait_for_indexing": _READ_ONLY,
    "search": _READ_ONLY,
    "list_documents": _READ_ONLY,
}


class ProgressReporter:
    """Turns a wait's `IndexingEvent`s into MCP progress notifications.

    Progress is the batch's indexed share in percent (``total=100``). MCP requires every
    notification to carry a larger value than the last, so a change that does not move the
    percentage (a stage change, a finished document) still advances it by 0.01, up to 100.
    """

    def __init__(self, ctx: Context[Any, Any]) -> None:
        self._ctx = ctx
        self._last = -1  # hundredths of a percent last sent

    async def __call__(self, event: IndexingEvent) -> None:
        percent = 100.0 * event.status.progress if event.status is not None else 0.0
        units = min(max(int(percent * 100), self._last + 1), 100 * 100)
        if units <= self._last:
            return
        self._last = units
        try:
            await self._ctx.report_progress(units / 100, 100.0, event.describe())
        except Exception:  # the client went away; the wait itself decides what happens next
            logger.debug("could not send a progress notification", exc_info=True)


def _tool(
    definition: ToolDefinition, toolset: DifyToolset, client: AsyncDifyKnowledgeClient
) -> Tool:
    async def call(ctx: Context[Any, Any], **arguments: Any) -> CallToolResult:
        # Left out and null mean the same: the tool set applies its own default (or says the
        # argument is required).
        given = {name: value for name, value in arguments.items() if value is not None}
        try:
            result = await toolset.run(
                client, definition.base_name, given, on_event=ProgressReporter(ctx)
            )
        except DifyToolError as error:
            # A result of our own, not the SDK's ToolError: that would prefix "Error executing
            # tool ...", and the model is to read the very words the other frameworks give.
            return CallToolResult(
                content=[TextContent(type="text", text=str(error))], is_error=True
            )
        return CallToolResult(
            content=[TextContent(type="text", text=result.text)],
            structured_content=result.data,
        )

    # The SDK derives argument handling from the signature: every argument is passed through
    # untouched (the tool set validates it, with messages written for the model) and the
    # advertised schema is replaced by the tool set's own below.
    parameters = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context),
        *(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[Any, WithJsonSchema({})],
            )
            for name in definition.args_model.model_fields
        ),
    ]
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=Annotated[CallToolResult, definition.output_model]
    )
    tool = Tool.from_function(
        call,
        name=definition.name,
        title=definition.name.replace("_", " ").capitalize(),
        description=definition.description,
        context_kwarg="ctx",
        annotations=_ANNOTATIONS[definition.base_name],
        structured_output=True,
    )
    tool.parameters = definition.args_model.model_json_schema()
    return tool


def build_server(
    toolset: DifyToolset,
    client: AsyncDifyKnowledgeClient,
    *,
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING",
) -> MCPServer[Any]:
    """An `MCPServer` serving the five tools of ``toolset`` through ``client``.

    Shared by every transport and by in-memory tests (``mcp.Client(server)``). The client
    must live on the loop the server runs on.
    """
    tools = [_tool(definition, toolset, client) for definition in toolset.definitions()]
    return MCPServer(
        SERVER_NAME,
        title="Dify knowledge base",
        instructions=_INSTRUCTIONS,
        version=__version__,
        tools=tools,
        log_level=log_level,
    )


async def serve(
    *,
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    base_url: str | None = None,
    dataset_id: str | None = None,
    datasets: Iterable[str] | None = None,
    simulator: bool = False,
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING",
    **toolset_options: Any,
) -> None:
    """Serve the tools until the client disconnects (stdio) or the process is stopped (HTTP).

    Args:
        transport: ``"stdio"`` (stdout carries only the protocol) or ``"streamable-http"``.
        host: The interface for streamable HTTP (keep 127.0.0.1 unless you add auth).
        port: The port for streamable HTTP.
        api_key: The Knowledge API key (default: ``DIFY_API_KEY``).
        base_url: The API root with ``/v1`` (default: ``DIFY_API_BASE_URL``).
        dataset_id: Bind the tools to one knowledge base (default: ``DIFY_DATASET_ID``).
        datasets: When not bound, the knowledge bases the tools may use.
        simulator: Serve against an embedded Dify simulator (no key needed; a ``demo``
            knowledge base the tools are bound to).
        log_level: Logging of the SDK (to stderr).
        **toolset_options: Further `DifyToolset` settings (``max_wait_seconds``,
            ``allow_replace``, ...).
    """
    async with contextlib.AsyncExitStack() as stack:
        if simulator:
            from ..testing import DifySimulator

            sim = DifySimulator(time_scale=0.2, seed=None)
            demo = sim.create_dataset("demo")
            base_url = await stack.enter_async_context(sim.serve())
            # A dataset id from the environment means nothing to the embedded simulator.
            api_key, dataset_id, datasets = sim.api_key, demo, None
        client = AsyncDifyKnowledgeClient(api_key, base_url)
        await stack.enter_async_context(client)
        toolset = DifyToolset(dataset_id=dataset_id, datasets=datasets, **toolset_options)
        server = build_server(toolset, client, log_level=log_level)
        if transport == "stdio":
            await server.run_stdio_async()
        elif transport == "streamable-http":
            await server.run_streamable_http_async(host=host, port=port)
        else:
            raise ValueError(f"unknown transport {transport!r}: use stdio or streamable-http")
