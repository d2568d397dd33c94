"""``dify-ingest mcp --transport streamable-http`` under attack and abuse, as a real subprocess.

A bearer token checked by the SDK's own hook (no token, a wrong one: 401), Host/Origin checks
on every bind, a refusal to bind a reachable interface without a token, sessions that keep
their uploads to themselves, a client killed mid-wait (polling stops), and progress that keeps
coming while a document is stuck. Driven by the official client (both protocol eras) and by
raw HTTP where the test needs a header no client would send.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp.server.mcpserver")

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from dify_ingest_tools.testing import RequestRecord
from tests.mcp_server.test_mcp_server import ROOT, SECRET, SERVER, Dify, dify, texts

__all__ = ["dify"]  # the fixture, imported to be used here

TOKEN = "mcp-test-token-Zq8xV1b2N3m4K5j6"
LEGACY, MODERN = "legacy", "auto"  # the 2025 handshake (sessions) / 2026-07-28 (none)
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
QUICK = ["--poll-interval", "0.2", "--max-poll-interval", "0.2"]


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text()


@contextmanager
def served(dify: Dify, tmp_path: Path, *args: str, token: str | None = TOKEN) -> Iterator[Served]:
    """The server on a free port; its URL read from the line it prints at start."""
    log = tmp_path / f"stderr-{time.monotonic_ns()}.log"
    env = dify.env(**({"DIFY_INGEST_MCP_TOKEN": token} if token else {}))
    with log.open("w") as err:
        process = subprocess.Popen(
            [*SERVER, "--transport", "streamable-http", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=ROOT,
        )
    try:
        url = ""
        deadline = time.monotonic() + 30
        while not url and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            for line in log.read_text().splitlines():
                if line.startswith("dify-ingest mcp: serving http://"):
                    url = line.split()[3]
            time.sleep(0.05)
        assert url, f"no address printed: {log.read_text()}"
        yield Served(url, process, log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the assertion below
            process.kill()
            process.wait()
    logs = log.read_text()
    assert SECRET not in logs and TOKEN not in logs
    assert "Traceback" not in logs, logs


@asynccontextmanager
async def connect(url: str, mode: str = MODERN, token: str | None = TOKEN) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


async def post(url: str, body: dict[str, Any], **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(url, json=body, headers={**ACCEPT, **headers})


def status_polls(records: list[RequestRecord], batch: str) -> list[RequestRecord]:
    return [r for r in records if r.route == "indexing_status" and batch in r.path]


# -- the bearer token ----------------------------------------------------------------------------


async def test_http_requests_without_the_right_bearer_token_are_refused_401(
    dify: Dify, tmp_path: Path
) -> None:
    with served(dify, tmp_path) as server:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-of-the-same-size!!"},
            {"Authorization": f"Bearer {TOKEN}x"},  # a longer one that starts right
            {"Authorization": f"Bearer {TOKEN[:-1]}"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
        ):
            answer = await post(server.url, INIT, **headers)
            assert answer.status_code == 401, (headers, answer.text)
            assert "Bearer" in answer.headers["www-authenticate"]
        # The official client without the token gets nowhere either (the SDK reports the 401
        # as a generic "error response" inside exception groups).
        with pytest.raises(Exception):  # noqa: B017
            async with connect(server.url, token=None) as client:
                await client.list_tools()
        ok = await post(server.url, INIT, Authorization=f"Bearer {TOKEN}")
        assert ok.status_code == 200, ok.text
        async with connect(server.url) as client:
            upload = await client.call_tool("upload_text", {"name": "t.md", "text": "tokens"})
            assert not upload.is_error, texts(upload)
    assert dify.sim.requests_for(route="create_by_text")  # only the authorised call reached Dify
    assert len(dify.sim.requests_for(route="create_by_text")) == 1


def run_cli(dify: Dify, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER, *args],
        env={**dify.env(), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--host", "0.0.0.0"], {}, "refusing --host 0.0.0.0 without an auth token"),
        (["--host", "::"], {"DIFY_INGEST_MCP_TOKEN": "   "}, "refusing --host ::"),
        (["--host", "my-laptop.example"], {}, "refusing --host my-laptop.example"),
        (
            ["--host", "0.0.0.0", "--auth-token-env", "OTHER"],
            {"DIFY_INGEST_MCP_TOKEN": TOKEN},
            "set $OTHER",
        ),
        (["--host", "0.0.0.0"], {"DIFY_INGEST_MCP_TOKEN": "short"}, "too short"),
        (["--host", "0.0.0.0"], {"DIFY_INGEST_MCP_TOKEN": TOKEN + "\x1b[2J"}, "printable"),
        (["--allowed-host", "*"], {}, "not a host name"),
        (["--allowed-host", "evil.example/path"], {}, "not a host name"),
        (["--allowed-host", "::1"], {}, "IPv6 in brackets"),
    ],
)
def test_a_reachable_bind_without_a_token_or_a_confused_option_exits_2_in_one_line(
    dify: Dify, args: list[str], env: dict[str, str], said: str
) -> None:
    done = run_cli(dify, "--transport", "streamable-http", "--port", "0", *args, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dify-ingest: "), done.stderr
    assert said in lines[0]
    assert TOKEN not in done.stderr and SECRET not in done.stderr and "\x1b" not in done.stderr


# -- DNS rebinding -------------------------------------------------------------------------------


async def test_host_and_origin_headers_are_checked_on_every_bind(
    dify: Dify, tmp_path: Path
) -> None:
    bearer = f"Bearer {TOKEN}"
    for bind in ("127.0.0.1", "0.0.0.0"):  # the second only with a token, as here
        with served(dify, tmp_path, "--host", bind, "--allowed-host", "mcp.example.com") as server:
            port = server.url.rsplit(":", 1)[1].split("/")[0]
            url = f"http://127.0.0.1:{port}/mcp"
            if bind == "0.0.0.0":
                assert server.url.startswith("http://0.0.0.0:")
            refused = await post(url, INIT, Authorization=bearer, Host="evil.example")
            assert refused.status_code == 421, (bind, refused.text)
            refused = await post(url, INIT, Authorization=bearer, Host=f"evil.example:{port}")
            assert refused.status_code == 421
            foreign = await post(url, INIT, Authorization=bearer, Origin="http://evil.example")
            assert foreign.status_code == 403, foreign.text
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", "mcp.example.com"):
                ok = await post(url, INIT, Authorization=bearer, Host=host)
                assert ok.status_code == 200, (bind, host, ok.text)
            ok = await post(url, INIT, Authorization=bearer, Origin="https://mcp.example.com")
            assert ok.status_code == 200
            # Without the token a good Host header is no way in either.
            assert (await post(url, INIT, Host=f"127.0.0.1:{port}")).status_code == 401


async def test_the_server_prints_its_address_and_says_when_it_has_no_token(
    dify: Dify, tmp_path: Path
) -> None:
    with served(dify, tmp_path, token=None) as server:
        async with connect(server.url, token=None) as client:
            assert (await client.list_tools()).tools
        line = next(s for s in server.logs().splitlines() if "serving" in s)
    assert line == f"dify-ingest mcp: serving {server.url} (no token: any local user can call it)"
    with served(dify, tmp_path) as server:
        line = next(s for s in server.logs().splitlines() if "serving" in s)
    assert line.endswith("(token required: $DIFY_INGEST_MCP_TOKEN)")


# -- sessions ------------------------------------------------------------------------------------


async def test_one_sessions_stalled_upload_neither_slows_nor_shows_in_anothers_search(
    dify: Dify, tmp_path: Path
) -> None:
    with served(dify, tmp_path, "--search-wait", "1", *QUICK) as server:
        async with connect(server.url, LEGACY) as a, connect(server.url, LEGACY) as b:
            stuck = await a.call_tool("upload_text", {"name": "stuck.md", "text": "forever"})
            batch_a = stuck.structured_content["batch"]
            mine = await b.call_tool("upload_text", {"name": "b.md", "text": "banana bread"})
            batch_b = mine.structured_content["batch"]
            ready = await b.call_tool("wait_for_indexing", {"batch": batch_b})
            assert ready.structured_content["outcome"] == "ready", texts(ready)

            before = len(dify.sim.requests)
            found = await b.call_tool("search", {"query": "banana"})
            during_b = dify.sim.requests[before:]
            assert found.structured_content["outcome"] == "found", texts(found)
            assert found.structured_content["still_indexing"] == []
            assert batch_a not in found.model_dump_json() and "Note" not in texts(found)
            assert status_polls(during_b, batch_a) == []  # B did not wait on A's upload

            before = len(dify.sim.requests)
            own = await a.call_tool("search", {"query": "banana"})
            during_a = dify.sim.requests[before:]
            assert own.structured_content["still_indexing"] == [batch_a]  # A's gate: its own
            assert f"batch {batch_a}" in texts(own) and batch_b not in texts(own)
            assert status_polls(during_a, batch_a)
            assert status_polls(during_a, batch_b) == []


# -- a client that goes away ---------------------------------------------------------------------


def waiting_client(dify: Dify, url: str, mode: str, batch: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "mcp_wait_client.py"), url, mode, batch],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**dify.env(), "MCP_TEST_TOKEN": TOKEN},
        cwd=ROOT,
    )


@pytest.mark.parametrize("mode", [LEGACY, MODERN])
async def test_a_client_killed_mid_wait_stops_the_polling_within_a_poll_interval(
    dify: Dify, tmp_path: Path, mode: str
) -> None:
    arrivals: list[tuple[float, RequestRecord]] = []
    lock = threading.Lock()

    def listen(record: RequestRecord) -> None:
        with lock:
            arrivals.append((time.monotonic(), record))

    dify.sim.add_request_listener(listen)
    with served(dify, tmp_path, *QUICK) as server:
        async with connect(server.url) as client:
            stuck = await client.call_tool("upload_text", {"name": "stuck.md", "text": "x"})
        batch = stuck.structured_content["batch"]
        waiting = waiting_client(dify, server.url, mode, batch)
        assert waiting.stdout is not None
        first = await anyio.to_thread.run_sync(waiting.stdout.readline)
        assert first.startswith(b"progress"), first  # the wait is under way
        await anyio.sleep(0.6)  # a few polls at 0.2 s
        waiting.kill()  # no goodbye: the connection just drops
        gone = time.monotonic()
        waiting.wait()
        waiting.stdout.close()
        await anyio.sleep(2.5)  # a wait still running would poll ~12 more times
        with lock:
            polls = [(at, r) for at, r in arrivals if r.route == "indexing_status"]
        before = [r for at, r in polls if at < gone and batch in r.path]
        after = [at - gone for at, r in polls if at >= gone and batch in r.path]
        assert len(before) >= 2
        # At most the poll under way, and one poll interval (0.2 s) plus a check (0.2 s).
        assert all(delay < 1.0 for delay in after), after
        assert len(after) <= 2, after
        # The server itself carries on.
        async with connect(server.url) as client:
            assert (await client.list_tools()).tools


# -- progress while nothing moves ----------------------------------------------------------------


@pytest.mark.parametrize("mode", [LEGACY, MODERN])
async def test_a_wait_on_a_stuck_document_keeps_sending_progress_and_answers_in_time(
    dify: Dify, tmp_path: Path, mode: str
) -> None:
    with served(dify, tmp_path, "--progress-interval", "0.3", *QUICK) as server:
        async with connect(server.url, mode) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            # The default cap stays under the 60 s after which clients give up on a request.
            assert "limit is 50 s" in (tools["wait_for_indexing"].description or "")
            stuck = await client.call_tool("upload_text", {"name": "stuck.md", "text": "x"})
            batch = stuck.structured_content["batch"]
            seen: list[tuple[float, str | None]] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                seen.append((value, message))

            wait = await client.call_tool(
                "wait_for_indexing",
                {"batch": batch, "timeout_seconds": 2.5},
                progress_callback=on_progress,
            )
    assert not wait.is_error, texts(wait)
    assert wait.structured_content["outcome"] == "timeout", texts(wait)
    values = [value for value, _ in seen]
    assert values == sorted(set(values)), values  # strictly increasing
    kept_alive = [message for _, message in seen if message and "still waiting" in message]
    assert len(kept_alive) >= 3, seen
    assert all(message.startswith("still waiting (") for message in kept_alive)
    assert batch in kept_alive[-1]  # what the last change said, repeated


def test_a_port_in_use_exits_3_naming_it(dify: Dify) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(dify, "--transport", "streamable-http", "--port", str(port), env={})
    assert done.returncode == 3, done.stderr
    assert done.stderr == (
        f"dify-ingest: cannot listen on 127.0.0.1:{port}: port {port} is already in use; pick "
        "another with --port, or --port 0 for a free one\n"
    )
