"""An MCP client process that starts a wait and prints each progress notification.

``python tests/mcp_wait_client.py URL MODE BATCH`` (bearer token in ``$MCP_TEST_TOKEN``); the
tests kill it mid-wait to see what a client that drops its connection leaves behind.
"""

from __future__ import annotations

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, mode: str, batch: str) -> None:
    headers = {"Authorization": f"Bearer {os.environ['MCP_TEST_TOKEN']}"}

    async def progress(value: float, total: float | None, message: str | None) -> None:
        print(f"progress {value}", flush=True)

    timeout = httpx2.Timeout(30, read=300)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        await client.call_tool(
            "wait_for_indexing", {"batch": batch, "timeout_seconds": 40}, progress_callback=progress
        )
    print("finished", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
