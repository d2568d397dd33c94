"""Misconfigured and hostile servers for the CLI tests, and a way to run the CLI as a process.

The CLI runs `asyncio.run` itself, so these servers live on their own thread and loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@contextmanager
def aiohttp_server(handler: Handler) -> Iterator[str]:
    """Serve ``handler`` for every request on 127.0.0.1; yields ``http://127.0.0.1:PORT``."""
    loop = asyncio.new_event_loop()

    async def start() -> web.ServerRunner:
        runner = web.ServerRunner(web.Server(handler), shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop.run_until_complete(start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers; yields ``http://127.0.0.1:PORT``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def unused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment without any DIFY_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
    env["DIFY_INGEST_LEDGER"] = os.environ["DIFY_INGEST_LEDGER"]  # the session's throwaway one
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dify_ingest_tools.cli ARGS`` to completion (bounded in time)."""
    return subprocess.run(
        [sys.executable, "-m", "dify_ingest_tools.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
    )


def one_error_line(stderr: str) -> str:
    """The single line a failing command prints; fails the test on anything more."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dify-ingest"), stderr
    return lines[0]
