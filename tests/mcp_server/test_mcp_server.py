"""``dify-ingest mcp`` as a real subprocess, driven by the official MCP client SDK.

Over stdio and over streamable HTTP (a free port on 127.0.0.1): the tools and their schemas,
every tool called, progress notifications during a wait, errors as ``isError`` results, the
API key (a recognisable canary) absent from every message and log line, and misbehaving
clients (garbage on stdin, a disconnect in the middle of a wait) ending the server cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import pytest

pytest.importorskip("mcp.server.mcpserver")

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from dify_ingest_tools.agent.tool_schemas import TOOL_NAMES
from dify_ingest_tools.testing import DifySimulator, DocumentScript

ROOT = Path(__file__).resolve().parents[2]
SECRET = "dataset-CANARY-mcp-5ecret-0123456789"
SERVER = [sys.executable, "-m", "dify_ingest_tools.cli", "mcp"]


class Dify:
    def __init__(self, sim: DifySimulator, url: str, dataset_id: str) -> None:
        self.sim, self.url, self.dataset_id = sim, url, dataset_id

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
        env.update(
            DIFY_API_KEY=SECRET,
            DIFY_API_BASE_URL=self.url,
            DIFY_DATASET_ID=self.dataset_id,
            DIFY_INGEST_LEDGER=os.environ["DIFY_INGEST_LEDGER"],  # the session's throwaway one
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            **extra,
        )
        return env


@pytest.fixture
def dify() -> Iterator[Dify]:
    sim = DifySimulator(api_key=SECRET, time_scale=0.1)
    dataset_id = sim.create_dataset("mcp")
    sim.script("stuck.md", DocumentScript(stall_at="indexing"))
    with sim.serve_in_thread() as url:
        yield Dify(sim, url, dataset_id)


def texts(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def exercise(client: Client) -> list[str]:
    """Every tool once, plus a progress-reporting wait and a tool error; returns what was seen."""
    seen: list[str] = []
    listed = await client.list_tools()
    assert [tool.name for tool in listed.tools] == list(TOOL_NAMES)
    for tool in listed.tools:
        assert tool.input_schema["type"] == "object"
        assert "dataset_id" not in tool.input_schema["properties"]  # bound by DIFY_DATASET_ID
        assert tool.output_schema is not None and "answer" in tool.output_schema["properties"]
        assert tool.description
    schema = {tool.name: tool.input_schema for tool in listed.tools}
    assert schema["upload_text"]["required"] == ["name", "text"]
    assert schema["search"]["properties"]["query"]["maxLength"] == 250
    seen.append(json.dumps([tool.model_dump(mode="json") for tool in listed.tools]))

    upload = await client.call_tool("upload_text", {"name": "policy.md", "text": "restocking fee"})
    assert not upload.is_error and upload.structured_content is not None
    batch = upload.structured_content["batch"]
    assert f"batch {batch}" in texts(upload)

    status = await client.call_tool("indexing_status", {"batch": batch})
    assert not status.is_error and status.structured_content["batch"] == batch

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    wait = await client.call_tool(
        "wait_for_indexing", {"batch": batch, "timeout_seconds": 30}, progress_callback=on_progress
    )
    assert not wait.is_error, texts(wait)
    assert wait.structured_content["outcome"] == "ready" and "is READY" in texts(wait)
    assert progress, "no progress notification during the wait"
    values = [value for value, _, _ in progress]
    assert values == sorted(set(values)) and values[-1] == 100.0  # strictly increasing
    assert all(total == 100.0 and message for _, total, message in progress)

    found = await client.call_tool("search", {"query": "restocking"})
    assert found.structured_content["outcome"] == "found" and "policy.md" in texts(found)
    listed_docs = await client.call_tool("list_documents", {})
    assert "policy.md" in texts(listed_docs)

    unknown = await client.call_tool("indexing_status", {"batch": "20990101000000000000"})
    assert not unknown.is_error and unknown.structured_content["outcome"] == "not_found"
    bad = await client.call_tool("search", {"query": "   "})
    assert bad.is_error and "query: must contain some text" in texts(bad)
    extra = await client.call_tool("list_documents", {"page": 0})
    assert extra.is_error and "page" in texts(extra)

    for result in (upload, status, wait, found, listed_docs, unknown, bad, extra):
        seen.append(result.model_dump_json())
    seen += [message or "" for _, _, message in progress]
    return seen


async def test_stdio_server_serves_every_tool_to_the_official_client(
    dify: Dify, tmp_path: Path
) -> None:
    params = StdioServerParameters(command=SERVER[0], args=SERVER[1:], env=dify.env(), cwd=ROOT)
    log = tmp_path / "stderr.log"
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            seen = await exercise(client)
    assert SECRET not in "\n".join(seen)
    assert SECRET not in log.read_text()


def raw_server(dify: Dify, stderr: TextIO) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        SERVER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=dify.env(),
        cwd=ROOT,
    )


def test_garbage_on_stdin_ends_the_server_cleanly(dify: Dify, tmp_path: Path) -> None:
    with (tmp_path / "stderr.log").open("w+") as errlog:
        server = raw_server(dify, errlog)
        out, _ = server.communicate(b'not json\n{"jsonrpc": 1}\n\x00\xff\xfe\n[]\n', timeout=30)
        errlog.seek(0)
        log = errlog.read()
    assert server.returncode == 0, log
    for line in out.splitlines():  # stdout carries protocol only
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert SECRET not in log and "Traceback" not in log


def test_a_client_that_disconnects_mid_wait_ends_the_server_cleanly(
    dify: Dify, tmp_path: Path
) -> None:
    with (tmp_path / "stderr.log").open("w+") as errlog:
        server = raw_server(dify, errlog)
        assert server.stdin is not None and server.stdout is not None

        def send(message: dict[str, Any]) -> None:
            assert server.stdin is not None
            server.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
            server.stdin.flush()

        hello = {"protocolVersion": "2025-11-25", "capabilities": {}}
        send({"id": 1, "method": "initialize", "params": {**hello, "clientInfo": {"name": "t"}}})
        assert json.loads(server.stdout.readline())["id"] == 1
        send({"method": "notifications/initialized"})
        upload = {"name": "upload_text", "arguments": {"name": "stuck.md", "text": "forever"}}
        send({"id": 2, "method": "tools/call", "params": upload})
        batch = json.loads(server.stdout.readline())["result"]["structuredContent"]["batch"]
        wait = {
            "name": "wait_for_indexing",
            "arguments": {"batch": batch, "timeout_seconds": 100},
            "_meta": {"progressToken": "w"},
        }
        send({"id": 3, "method": "tools/call", "params": wait})
        first = json.loads(server.stdout.readline())
        assert first["method"] == "notifications/progress"  # the wait is under way
        started = time.monotonic()
        server.stdin.close()  # the client goes away
        assert server.wait(timeout=20) == 0
        assert time.monotonic() - started < 15
        server.stdout.close()
        errlog.seek(0)
        log = errlog.read()
    assert SECRET not in log and "Traceback" not in log


# -- streamable HTTP ------------------------------------------------------------------------------


def start(
    args: list[str], out: TextIO, err: TextIO, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*SERVER, *args], stdout=out, stderr=err, env=env, cwd=ROOT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, server: subprocess.Popen[bytes], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited before listening"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


async def test_streamable_http_server_serves_tools_survives_a_disconnect_and_stops(
    dify: Dify, tmp_path: Path
) -> None:
    port = free_port()
    args = ["--transport", "streamable-http", "--host", "127.0.0.1", "--port", str(port)]
    out_log, err_log = (tmp_path / "stdout.log").open("w+"), (tmp_path / "stderr.log").open("w+")
    server = start(args, out_log, err_log, dify.env())
    try:
        await anyio.to_thread.run_sync(wait_for_port, port, server)
        url = f"http://127.0.0.1:{port}/mcp"
        async with Client(url) as client:
            seen = await exercise(client)
            stuck = await client.call_tool("upload_text", {"name": "stuck.md", "text": "x"})
            batch = stuck.structured_content["batch"]
        # A client that leaves in the middle of a wait: the server goes on serving others.
        async with Client(url) as leaving:
            with anyio.move_on_after(1.0):
                await leaving.call_tool(
                    "wait_for_indexing", {"batch": batch, "timeout_seconds": 100}
                )
        async with Client(url) as after:
            assert len((await after.list_tools()).tools) == len(TOOL_NAMES)
    finally:
        server.send_signal(signal.SIGINT)
        code = await anyio.to_thread.run_sync(lambda: server.wait(timeout=20))
        out_log.seek(0), err_log.seek(0)
        logs = out_log.read() + err_log.read()
        out_log.close(), err_log.close()
    assert code in (0, 130), logs
    assert SECRET not in "\n".join(seen) and SECRET not in logs
    assert "Traceback" not in logs


async def test_simulator_mode_needs_no_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
    env["DIFY_INGEST_LEDGER"] = os.environ["DIFY_INGEST_LEDGER"]  # the session's throwaway one
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    params = StdioServerParameters(
        command=SERVER[0], args=[*SERVER[1:], "--simulator"], env=env, cwd=ROOT
    )
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            upload = await client.call_tool("upload_text", {"name": "a.md", "text": "demo text"})
            batch = upload.structured_content["batch"]
            wait = await client.call_tool("wait_for_indexing", {"batch": batch})
            assert wait.structured_content["outcome"] == "ready", texts(wait)
            found = await client.call_tool("search", {"query": "demo"})
            assert "a.md" in texts(found)


async def test_build_server_in_memory_serves_the_same_tools(dify: Dify) -> None:
    """The same checks, with the server in this process (``Client(server)``)."""
    from dify_ingest_tools import AsyncDifyKnowledgeClient
    from dify_ingest_tools.agent.toolkit import DifyToolset
    from dify_ingest_tools.mcp_server import build_server

    async with AsyncDifyKnowledgeClient(SECRET, dify.url) as dify_client:
        toolset = DifyToolset(dataset_id=dify.dataset_id, poll_interval=0.05)
        async with Client(build_server(toolset, dify_client)) as client:
            seen = await exercise(client)
    assert SECRET not in "\n".join(seen)


async def test_upload_text_replaces_a_persons_document_only_with_allow_replace(
    dify: Dify, tmp_path: Path
) -> None:
    handbook, _ = dify.sim.add_document(dify.dataset_id, "handbook.md", "Holidays: 25 days.")
    seen: dict[str, Any] = {}
    for flags in ([], ["--allow-replace"]):
        params = StdioServerParameters(
            command=SERVER[0], args=[*SERVER[1:], *flags], env=dify.env(), cwd=ROOT
        )
        with (tmp_path / "stderr.log").open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
                seen[" ".join(flags)] = await client.call_tool(
                    "upload_text", {"name": "handbook.md", "text": "Holidays: 30 days."}
                )
    refused, replaced = seen[""], seen["--allow-replace"]
    assert refused.is_error and "belongs to someone else" in texts(refused)
    assert "'handbook.md'" in texts(refused) and handbook in texts(refused)
    assert not replaced.is_error and replaced.structured_content["document_id"] == handbook
    assert len(dify.sim.requests_for(route="create_by_text")) == 1  # the replacing upload only


# -- sessions, in memory --------------------------------------------------------------------------


async def test_a_search_waits_on_at_most_five_pending_batches_and_names_the_rest(
    dify: Dify,
) -> None:
    from dify_ingest_tools import AsyncDifyKnowledgeClient
    from dify_ingest_tools.agent.toolkit import DifyToolset
    from dify_ingest_tools.mcp_server import build_server

    dify.sim.default_script = DocumentScript(stall_at="indexing")
    toolset = DifyToolset(
        dataset_id=dify.dataset_id,
        search_wait_seconds=0.3,
        poll_interval=0.05,
        max_poll_interval=0.05,
    )
    async with (
        AsyncDifyKnowledgeClient(SECRET, dify.url) as dify_client,
        Client(build_server(toolset, dify_client), mode="legacy") as client,
    ):
        batches = []
        for n in range(201):
            upload = await client.call_tool("upload_text", {"name": f"d{n}.md", "text": "x"})
            batches.append(upload.structured_content["batch"])
        before = len(dify.sim.requests)
        found = await client.call_tool("search", {"query": "x"})
        polls = [r for r in dify.sim.requests[before:] if r.route == "indexing_status"]
    polled = {batch for batch in batches if any(batch in r.path for r in polls)}
    assert polled == set(batches[-5:])  # the newest five, and no other
    assert len(polls) < 201  # was 1,105 for one search
    assert found.structured_content["still_indexing"] == batches[-5:]
    text = texts(found)
    assert "196 older upload(s) made through these tools were not checked" in text
    assert "and 191 more" in text and batches[0] not in text  # named by number, not listed


async def test_a_sessions_tool_set_lives_and_ends_with_the_session(dify: Dify) -> None:
    import gc

    from dify_ingest_tools import AsyncDifyKnowledgeClient
    from dify_ingest_tools.agent.toolkit import DifyToolset
    from dify_ingest_tools.mcp_server import build_server

    def toolsets() -> int:
        gc.collect()
        return sum(isinstance(thing, DifyToolset) for thing in gc.get_objects())

    template = DifyToolset(dataset_id=dify.dataset_id, search_wait_seconds=0)
    async with AsyncDifyKnowledgeClient(SECRET, dify.url) as dify_client:
        server = build_server(template, dify_client)
        start = toolsets()
        async with Client(server, mode="legacy") as a, Client(server, mode="legacy") as b:
            upload = await a.call_tool("upload_text", {"name": "stuck.md", "text": "x"})
            batch = upload.structured_content["batch"]
            assert toolsets() == start + 1  # A's own
            other = await b.call_tool("search", {"query": "x"})
            assert batch not in texts(other) and other.structured_content["still_indexing"] == []
            own = await a.call_tool("search", {"query": "x"})
            assert own.structured_content["still_indexing"] == [batch]
            assert toolsets() == start + 2  # and B's
        assert toolsets() == start  # both sessions ended: their memory with them
        assert template.fresh() is not template


# -- the command line ---------------------------------------------------------------------------


async def test_mcp_takes_api_key_and_base_url_like_every_other_command(
    dify: Dify, tmp_path: Path
) -> None:
    env = {k: v for k, v in dify.env().items() if k not in ("DIFY_API_KEY", "DIFY_API_BASE_URL")}
    args = [*SERVER[1:], "--api-key", SECRET, "--base-url", dify.url]
    params = StdioServerParameters(command=SERVER[0], args=args, env=env, cwd=ROOT)
    log = tmp_path / "stderr.log"
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            upload = await client.call_tool("upload_text", {"name": "k.md", "text": "key"})
            assert not upload.is_error, texts(upload)
    assert dify.sim.requests_for(route="create_by_text")[-1].authorized
    assert SECRET not in log.read_text()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "no Dify API key: pass --api-key KEY or set DIFY_API_KEY"),
        (["--api-key", SECRET, "--base-url", "ftp://dify.example/v1"], "--base-url must be"),
        (["--api-key", SECRET, "--poll-interval", "nan"], "--poll-interval"),
    ],
)
def test_mcp_refuses_a_missing_key_or_a_bad_option_in_one_line(
    dify: Dify, args: list[str], said: str
) -> None:
    env = {k: v for k, v in dify.env().items() if k not in ("DIFY_API_KEY", "DIFY_API_BASE_URL")}
    done = subprocess.run(
        [*SERVER, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and said in done.stderr, done.stderr
    assert SECRET not in done.stderr and done.stdout == ""
