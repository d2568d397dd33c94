"""The agent tool set as an MCP server, on the official ``mcp`` Python SDK (2.x).

Run it with ``dify-ingest mcp`` (stdio) or ``dify-ingest mcp --transport streamable-http
--port 8000`` (a bearer token from ``$DIFY_INGEST_MCP_TOKEN``); ``dify-ingest mcp
--simulator`` serves against an embedded Dify simulator. In code, `build_server` gives the
`mcp.server.mcpserver.MCPServer` (for ``mcp.Client(server)`` in tests) and `serve` runs a
transport.

Needs the ``mcp`` extra: ``pip install "dify-ingest-tools[mcp]"``. The package is named
``mcp_server`` so it can never shadow the SDK's own ``mcp`` package.
"""

try:
    import mcp.server.mcpserver  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the package
    raise ImportError(
        "dify_ingest_tools.mcp_server needs the MCP Python SDK 2.x: "
        'pip install "dify-ingest-tools[mcp]"'
    ) from exc

from dify_ingest_tools.mcp_server._server import (
    DEFAULT_MAX_WAIT,
    PROGRESS_INTERVAL,
    SERVER_NAME,
    ProgressReporter,
    Transport,
    build_server,
    serve,
)

__all__ = [
    "DEFAULT_MAX_WAIT",
    "PROGRESS_INTERVAL",
    "SERVER_NAME",
    "ProgressReporter",
    "Transport",
    "build_server",
    "serve",
]
