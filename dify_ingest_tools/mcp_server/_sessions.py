"""One `DifyToolset` per MCP session: what an agent uploaded is its own.

The tool set remembers its uploads so that ``search`` waits for them; shared by every client
of a server, one session's stalled upload made another's search wait and name a batch it
never saw. The SDK keeps per-connection state on its ``Connection`` (``state``, torn down with
``exit_stack`` when the session ends): the session's tool set lives there.
"""

from __future__ import annotations

from typing import Any, Final

from mcp.server.connection import Connection
from mcp.server.mcpserver import Context

from dify_ingest_tools.agent.toolkit import DifyToolset

__all__ = ["session_toolset"]

_STATE_KEY: Final = "dify_ingest_tools.toolset"


def session_toolset(ctx: Context[Any, Any], template: DifyToolset) -> DifyToolset:
    """The tool set of the session ``ctx`` belongs to, made from ``template`` on first use.

    A call without a session (the 2026-07-28 protocol has none: every request stands alone)
    gets a tool set of its own, so nothing it uploads is waited for, or named, by any other.
    """
    connection = _connection(ctx)
    if connection is None:
        return template.fresh()
    toolset = connection.state.get(_STATE_KEY)
    if not isinstance(toolset, DifyToolset):
        toolset = template.fresh()
        connection.state[_STATE_KEY] = toolset
        connection.exit_stack.callback(connection.state.pop, _STATE_KEY, None)
    return toolset


def _connection(ctx: Context[Any, Any]) -> Connection | None:
    # mcp 2.3's MCPServer context has no public path to the connection (the low-level
    # `mcp.server.context.Context.connection` is not built by the runner yet); the per-request
    # ServerSession holds it. Without it a call gets a fresh tool set: nothing is shared.
    connection = getattr(ctx.session, "_connection", None)
    return connection if isinstance(connection, Connection) else None
