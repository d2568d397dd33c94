"""What a tool call tells the client while it runs: progress, and that it is still alive.

MCP clients time a request out (60 s in the SDKs and the Inspector) unless progress arrives;
a document stuck in ``indexing`` moves nothing for minutes. So a call that waits sends a
notification at least every ``interval`` seconds even when nothing moved.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import anyio
from mcp.server.mcpserver import Context

from dify_ingest_tools.events import IndexingEvent

__all__ = ["PROGRESS_INTERVAL", "ProgressReporter", "watch_disconnect"]

logger = logging.getLogger("dify_ingest_tools")

PROGRESS_INTERVAL: Final = 10.0
"""Seconds a waiting call may go without a progress notification."""

_FULL = 100 * 100  # hundredths of a percent


class ProgressReporter:
    """Turns a call's `IndexingEvent`s into MCP progress notifications, and keeps them coming.

    Progress is the batch's indexed share in percent (``total=100``). MCP requires every
    notification to carry a larger value than the last, so a change that does not move the
    percentage (a stage change, a finished document, a keep-alive) still advances it by 0.01,
    up to 100. Sends nothing unless the client gave a progress token (the SDK drops them).
    """

    def __init__(self, ctx: Context[Any, Any]) -> None:
        self._ctx = ctx
        self._last = -1  # hundredths of a percent last sent
        self._described: str | None = None  # what the last event said
        self._started = self._sent_at = time.monotonic()

    async def __call__(self, event: IndexingEvent) -> None:
        percent = 100.0 * event.status.progress if event.status is not None else 0.0
        self._described = event.describe()
        await self._send(int(percent * 100), self._described)

    async def keep_alive(self, interval: float) -> None:
        """Run until cancelled: a notification whenever ``interval`` s passed without one."""
        while True:
            await anyio.sleep(max(0.0, self._sent_at + interval - time.monotonic()))
            now = time.monotonic()
            if now - self._sent_at < interval:
                continue  # an event was sent meanwhile
            if self._last >= _FULL:
                self._sent_at = now  # nothing larger than 100 % can be sent
                continue
            waited = f"still waiting ({now - self._started:.0f} s)"
            await self._send(
                self._last + 1, f"{waited}: {self._described}" if self._described else waited
            )

    async def _send(self, units: int, message: str) -> None:
        units = min(max(units, self._last + 1), _FULL)
        if units <= self._last:
            return
        self._last, self._sent_at = units, time.monotonic()
        try:
            await self._ctx.report_progress(units / 100, 100.0, message)
        except Exception:  # the client went away; the call itself decides what happens next
            logger.debug("could not send a progress notification", exc_info=True)


async def watch_disconnect(request: Any, period: float, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` once the HTTP client behind ``request`` has disconnected.

    Over streamable HTTP a dropped connection does not end the call by itself (the 2025
    protocol lets a client resume a stream), so a wait would poll Dify until its timeout for
    nobody. Checking every ``period`` seconds ends it within a poll interval instead.
    """
    while True:
        if await request.is_disconnected():
            break
        await anyio.sleep(period)
    logger.info("the client disconnected during a tool call; stopping it")
    scope.cancel()
