"""`build_server`: the tool set as an MCP server (official ``mcp`` SDK, 2.x), and `serve`.

Named ``mcp_server`` (not ``mcp``) so that nothing inside this package can ever be confused
with the SDK's top-level ``mcp`` package.

Each tool's input schema is exactly the tool set's argument model (JSON schema), its output
schema the tool set's result model; the text content is the same answer the LangChain and
LlamaIndex tools give. Answers an agent can act on (an unknown batch, a timeout, a failed or
paused document) are ordinary results with ``outcome`` saying which; a call the tools cannot
answer is a tool error (``isError: true``) whose text says why. ``wait_for_indexing`` (and any
call that waits) sends ``notifications/progress`` when the client gave a progress token, at
least every `PROGRESS_INTERVAL` seconds, and waits at most `DEFAULT_MAX_WAIT` seconds by
default: under the 60 s after which common clients give up on a request.

Each session has its own tool set (`session_toolset`): its uploads, and what ``search`` waits
for, are nobody else's. Over HTTP a call whose client disconnects is stopped.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Final, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import WithJsonSchema

from dify_ingest_tools._version import __version__
from dify_ingest_tools.agent.answers import DifyToolError
from dify_ingest_tools.agent.tool_defs import ToolDefinition
from dify_ingest_tools.agent.tool_results import ToolResult
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.mcp_server._http import (
    StaticTokenVerifier,
    auth_settings,
    is_loopback,
    serve_http,
)
from dify_ingest_tools.mcp_server._progress import (
    PROGRESS_INTERVAL,
    ProgressReporter,
    watch_disconnect,
)
from dify_ingest_tools.mcp_server._sessions import session_toolset

__all__ = [
    "DEFAULT_MAX_WAIT",
    "PROGRESS_INTERVAL",
    "SERVER_NAME",
    "ProgressReporter",
    "Transport",
    "build_server",
    "serve",
]

logger = logging.getLogger("dify_ingest_tools")

SERVER_NAME = "dify-knowledge"
Transport = Literal["stdio", "streamable-http"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

DEFAULT_MAX_WAIT: Final = 50.0
"""The longest wait a call makes unless configured: the MCP SDKs and the Inspector give up on
a request after 60 s, and "still indexing, call again" is an answer the model can use."""
# How often a call checks that its HTTP client is still there (a poll interval at most).
_DISCONNECT_CHECK: Final = 0.5

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


def _tool(
    definition: ToolDefinition,
    template: DifyToolset,
    client: AsyncDifyKnowledgeClient,
    progress_interval: float,
) -> Tool:
    check_every = min(_DISCONNECT_CHECK, float(template.wait_options["poll_interval"]))

    async def call(ctx: Context[Any, Any], **arguments: Any) -> CallToolResult:
        toolset = session_toolset(ctx, template)
        # Left out and null mean the same: the tool set applies its own default (or says the
        # argument is required).
        given = {name: value for name, value in arguments.items() if value is not None}
        reporter = ProgressReporter(ctx)
        request = ctx.request_context.request
        with anyio.CancelScope() as call_scope:
            async with anyio.create_task_group() as helpers:
                helpers.start_soon(reporter.keep_alive, progress_interval)
                if callable(getattr(request, "is_disconnected", None)):
                    helpers.start_soon(watch_disconnect, request, check_every, call_scope)
                try:
                    result: ToolResult | DifyToolError = await toolset.run(
                        client, definition.base_name, given, on_event=reporter
                    )
                except DifyToolError as error:
                    result = error
                helpers.cancel_scope.cancel()
            return _result(result)
        # The client went away mid-call: nobody reads this.
        return CallToolResult(
            content=[TextContent(type="text", text="The client disconnected.")], is_error=True
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
    tool.parameters = dict(definition.input_schema)
    return tool


def _result(result: ToolResult | DifyToolError) -> CallToolResult:
    if isinstance(result, DifyToolError):
        # A result of our own, not the SDK's ToolError: that would prefix "Error executing
        # tool ...", and the model is to read the very words the other frameworks give.
        return CallToolResult(content=[TextContent(type="text", text=str(result))], is_error=True)
    return CallToolResult(
        content=[TextContent(type="text", text=result.text)], structured_content=result.data
    )


def build_server(
    toolset: DifyToolset,
    client: AsyncDifyKnowledgeClient,
    *,
    log_level: LogLevel = "WARNING",
    progress_interval: float = PROGRESS_INTERVAL,
    auth_token: str | None = None,
) -> MCPServer[Any]:
    """An `MCPServer` serving the five tools of ``toolset`` through ``client``.

    Shared by every transport and by in-memory tests (``mcp.Client(server)``). The client
    must live on the loop the server runs on.

    Args:
        toolset: The settings every session's tool set copies (`DifyToolset.fresh`): each
            session remembers its own uploads.
        client: The client every session talks to Dify through.
        log_level: Logging of the SDK (to stderr).
        progress_interval: Seconds a waiting call may go without a progress notification.
        auth_token: Over streamable HTTP, the bearer token every request must carry.

    Raises:
        ValueError: ``progress_interval`` is not positive, or the token is unusable.
    """
    if not progress_interval > 0:
        raise ValueError("progress_interval must be > 0")
    tools = [
        _tool(definition, toolset, client, progress_interval)
        for definition in toolset.definitions()
    ]
    auth: dict[str, Any] = {}
    if auth_token is not None:
        auth = {"token_verifier": StaticTokenVerifier(auth_token), "auth": auth_settings()}
    return MCPServer(
        SERVER_NAME,
        title="Dify knowledge base",
        instructions=_INSTRUCTIONS,
        version=__version__,
        tools=tools,
        log_level=log_level,
        **auth,
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
    log_level: LogLevel = "WARNING",
    auth_token: str | None = None,
    allowed_hosts: Iterable[str] = (),
    progress_interval: float = PROGRESS_INTERVAL,
    on_listening: Callable[[str], None] | None = None,
    **toolset_options: Any,
) -> None:
    """Serve the tools until the client disconnects (stdio) or the process is stopped (HTTP).

    Args:
        transport: ``"stdio"`` (stdout carries only the protocol) or ``"streamable-http"``.
        host: The interface for streamable HTTP. Any other than a loopback address needs
            ``auth_token``.
        port: The port for streamable HTTP (0: a free one).
        api_key: The Knowledge API key (default: ``DIFY_API_KEY``).
        base_url: The API root with ``/v1`` (default: ``DIFY_API_BASE_URL``).
        dataset_id: Bind the tools to one knowledge base (default: ``DIFY_DATASET_ID``).
        datasets: When not bound, the knowledge bases the tools may use.
        simulator: Serve against an embedded Dify simulator (no key needed; a ``demo``
            knowledge base the tools are bound to).
        log_level: Logging of the SDK (to stderr).
        auth_token: Streamable HTTP: the bearer token every request must carry (at least 16
            printable characters); requests without it are answered 401.
        allowed_hosts: Streamable HTTP: Host headers to accept besides the loopback names and
            the bound address (``name`` or ``name:port``), e.g. a reverse proxy's hostname.
        progress_interval: Seconds a waiting call may go without a progress notification.
        on_listening: Streamable HTTP: called with the server's URL once it listens.
        **toolset_options: Further `DifyToolset` settings (``allow_replace``, ...;
            ``max_wait_seconds`` defaults to `DEFAULT_MAX_WAIT`).

    Raises:
        ValueError: A non-loopback ``host`` without ``auth_token``, an unusable token or
            allowed host, or an unknown transport.
        OSError: The HTTP server cannot listen on ``host:port``.
    """
    if transport not in ("stdio", "streamable-http"):
        raise ValueError(f"unknown transport {transport!r}: use stdio or streamable-http")
    if transport == "streamable-http" and auth_token is None and not is_loopback(host):
        raise ValueError(
            f"refusing to serve on {host} without an auth token: anyone who reaches it could "
            "use the Dify key; pass auth_token, or bind 127.0.0.1"
        )
    toolset_options.setdefault("max_wait_seconds", DEFAULT_MAX_WAIT)
    async with contextlib.AsyncExitStack() as stack:
        if simulator:
            from dify_ingest_tools.testing import DifySimulator

            sim = DifySimulator(time_scale=0.2, seed=None)
            demo = sim.create_dataset("demo")
            base_url = await stack.enter_async_context(sim.serve())
            # A dataset id from the environment means nothing to the embedded simulator.
            api_key, dataset_id, datasets = sim.api_key, demo, None
        client = AsyncDifyKnowledgeClient(api_key, base_url)
        await stack.enter_async_context(client)
        toolset = DifyToolset(dataset_id=dataset_id, datasets=datasets, **toolset_options)
        if transport == "stdio":
            server = build_server(
                toolset, client, log_level=log_level, progress_interval=progress_interval
            )
            await server.run_stdio_async()
            return
        server = build_server(
            toolset,
            client,
            log_level=log_level,
            progress_interval=progress_interval,
            auth_token=auth_token,
        )
        await serve_http(
            server,
            host=host,
            port=port,
            allowed_hosts=allowed_hosts,
            log_level=log_level,
            on_listening=on_listening,
        )
