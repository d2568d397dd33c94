"""Serving a simulator: from a thread with its own loop, until cancelled, and described.

`DifySimulator.serve_in_thread` runs here; `serve_forever` and `describe` are what
``dify-ingest simulate`` runs and prints.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .simulator import DifySimulator

__all__ = ["describe", "serve_forever", "serve_in_thread", "url_host"]


@contextmanager
def serve_in_thread(
    serve: Callable[[str, int], AbstractAsyncContextManager[str]], host: str, port: int
) -> Iterator[str]:
    """Run ``serve(host, port)`` on a thread's own event loop; yield its base URL."""
    ready = threading.Event()
    state = _ThreadState()

    async def main() -> None:
        state.loop = asyncio.get_running_loop()
        state.stop = asyncio.Event()
        async with serve(host, port) as base_url:
            state.base_url = base_url
            ready.set()
            await state.stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the caller's thread below
            state.error = exc
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="dify-simulator", daemon=True)
    thread.start()
    ready.wait()
    if state.base_url is None:
        thread.join()
        assert state.error is not None
        raise state.error
    try:
        yield state.base_url
    finally:
        state.request_stop()
        thread.join()
    if state.error is not None:
        raise state.error


class _ThreadState:
    """What the serving thread hands back to the caller."""

    def __init__(self) -> None:
        self.base_url: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.error: BaseException | None = None

    def request_stop(self) -> None:
        """Ask the serving loop (blocked on ``stop``) to shut down; callable from any thread."""
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)


def url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def serve_forever(
    sim: DifySimulator,
    host: str = "127.0.0.1",
    port: int = 5001,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``sim`` until cancelled (what ``dify-ingest simulate`` runs).

    A dataset named ``demo`` is created first when the simulator has none.

    Args:
        sim: The simulator.
        host: The interface to listen on.
        port: The port (Dify's API listens on 5001); 0 picks a free one.
        on_ready: Called with the base URL once listening, e.g. to print :func:`describe`.
    """
    if not sim.dataset_ids:
        sim.create_dataset()
    async with sim.serve(host, port) as base_url:
        if on_ready is not None:
            on_ready(base_url)
        await asyncio.Event().wait()


def describe(sim: DifySimulator) -> str:
    """Human-readable connection details: base URL, API key and datasets."""
    with sim._lock:
        datasets = [(d.id, d.name) for d in sim._core.store.datasets.values()]
    base_url = sim.base_url or "(not serving)"
    lines = [
        "Dify simulator (Knowledge API as recorded from Dify 1.14.1)",
        f"  base URL : {base_url}",
        f"  API key  : {sim.api_key}",
    ]
    if datasets:
        lines.append("  datasets :")
        lines.extend(f"    {dataset_id}  {name}" for dataset_id, name in datasets)
    else:
        lines.append("  datasets : (none)")
    lines += [
        "",
        f"  export DIFY_API_BASE_URL={base_url}",
        f"  export DIFY_API_KEY={sim.api_key}",
    ]
    return "\n".join(lines)
