"""Hostile strings from Dify stay out of terminals and models: bounded, escaped, redacted.

A real aiohttp server (`tests.hostile_names.HostileDify`) answers every endpoint with 1 MB
names and passages that carry an ANSI clear-screen, a BEL, a CR/LF and the client's key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient
from dify_ingest_tools.agent.tool_answers import STRUCTURED_FACTOR
from dify_ingest_tools.agent.toolkit import DifyToolset

from .cli_servers import aiohttp_server, run_cli
from .hostile import HostileServers
from .hostile_names import BATCH, DOC, DS, KEY, RAW_CONTROLS, HostileDify, strings

QUICK = {"poll_interval": 0.01, "max_poll_interval": 0.05, "not_found_grace": 0.0}


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[HostileDify, AsyncDifyKnowledgeClient]]:
    dify = HostileDify()
    servers = HostileServers()
    base_url = await servers.serve(dify, prefix="/v1")
    try:
        async with AsyncDifyKnowledgeClient(KEY, base_url, ledger="off") as client:
            yield dify, client
    finally:
        await servers.close()


def assert_clean(text: str, data: dict[str, Any], budget: int) -> None:
    assert len(text) <= budget, len(text)
    assert len(json.dumps(data, ensure_ascii=False)) <= STRUCTURED_FACTOR * budget
    assert KEY not in text and KEY not in json.dumps(data)
    for raw in RAW_CONTROLS:
        assert raw not in text, repr(raw)
    assert "forged\nline" not in text  # an LF from Dify never starts a line of its own
    for value in strings({k: v for k, v in data.items() if k != "answer"}):
        assert not any(raw in value for raw in (*RAW_CONTROLS, "\n")), value[:80]
    assert data.get("answer", text) == text


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("search", {"query": "refunds"}),
        ("list_documents", {}),
        ("indexing_status", {"batch": BATCH}),
        ("wait_for_indexing", {"batch": BATCH, "timeout_seconds": 5}),
        ("upload_text", {"name": "a.md", "text": "alpha", "wait_seconds": 0}),
    ],
)
@pytest.mark.parametrize("budget", [4000, 1000])
async def test_every_tool_answer_from_a_hostile_dify_is_bounded_escaped_and_redacted(
    hostile: tuple[HostileDify, AsyncDifyKnowledgeClient],
    tool: str,
    arguments: dict[str, Any],
    budget: int,
) -> None:
    _, client = hostile
    tools = DifyToolset(dataset_id=DS, answer_chars=budget, hit_chars=min(800, budget), **QUICK)
    result = await tools.run(client, tool, arguments)
    assert_clean(result.text, result.data, budget)


async def test_a_search_with_1_mb_names_still_shows_passages(
    hostile: tuple[HostileDify, AsyncDifyKnowledgeClient],
) -> None:
    _, client = hostile
    tools = DifyToolset(dataset_id=DS, **QUICK)
    result = await tools.run(client, "search", {"query": "refunds"})
    assert result.data["hits"], result.text
    hit = result.data["hits"][0]
    assert hit["truncated"] and "passage passage" in hit["content"]
    # In an answer CR and LF are spaces (a model reads lines); other controls are escapes.
    assert hit["document_name"].startswith("\\x1b[2J\\x1b[31m\\x07 forged line [redacted] \\u202e")
    assert len(hit["document_name"]) <= 120


async def test_a_listed_page_that_does_not_fit_keeps_its_documents_with_shorter_names(
    hostile: tuple[HostileDify, AsyncDifyKnowledgeClient],
) -> None:
    _, client = hostile
    tools = DifyToolset(dataset_id=DS, **QUICK)
    result = await tools.run(client, "list_documents", {})
    # The server sent 25 documents for a page of 20: the page's 20 are listed.
    assert len(result.data["documents"]) == 20
    assert "ask for page 2" in result.text


# -- the CLI ------------------------------------------------------------------------------------


def assert_printed_clean(output: str, *, limit: int, line_limit: int = 2_100) -> None:
    assert len(output) <= limit, len(output)
    assert KEY not in output
    for raw in RAW_CONTROLS:
        assert raw not in output, repr(raw)
    assert all(len(line) <= line_limit for line in output.splitlines())
    assert not any(line.startswith("line ") for line in output.splitlines())  # no forged line


@pytest.mark.parametrize(
    "command",
    [
        ("search", "--dataset", DS, "refunds"),
        ("search", "--dataset", DS, "--json", "refunds"),
        ("documents", "--dataset", DS),
        ("documents", "--dataset", DS, "--json"),
        ("status", DS, BATCH),
        ("wait", DS, BATCH, "--timeout", "5", "--poll-interval", "0.05", "--no-progress"),
    ],
    ids=["search", "search-json", "documents", "documents-json", "status", "wait"],
)
def test_the_cli_never_prints_raw_server_bytes(command: tuple[str, ...], tmp_path: Path) -> None:
    dify = HostileDify()
    with aiohttp_server(dify) as root:
        done = run_cli(
            *command,
            DIFY_API_KEY=KEY,
            DIFY_API_BASE_URL=f"{root}/v1",
            DIFY_INGEST_LEDGER=str(tmp_path / "ledger.db"),
        )
    assert "Traceback" not in done.stderr, done.stderr
    if "--json" in command:  # strings cut to 10,000 characters; JSON escapes the controls
        assert_printed_clean(done.stdout, limit=3_000_000, line_limit=10_200)
    else:
        assert_printed_clean(done.stdout, limit=60_000)
    assert_printed_clean(done.stderr, limit=5_000)
    assert done.stdout.strip()


def test_wait_pending_prints_hostile_errors_escaped_and_cut(tmp_path: Path) -> None:
    dify = HostileDify(stuck=False)  # every document failed: the wait ends
    upload = tmp_path / "a.md"
    upload.write_text("alpha")
    env = {"DIFY_API_KEY": KEY, "DIFY_INGEST_LEDGER": str(tmp_path / "ledger.db")}
    with aiohttp_server(dify) as root:
        env["DIFY_API_BASE_URL"] = f"{root}/v1"
        uploaded = run_cli("upload", "--dataset", DS, str(upload), **env)
        assert uploaded.returncode == 0, uploaded.stderr
        done = run_cli("wait", "--pending", "--poll-interval", "0.05", "--no-progress", **env)
    assert "Traceback" not in done.stderr, done.stderr
    assert "error:" in done.stdout
    assert_printed_clean(done.stdout, limit=60_000)
    assert_printed_clean(done.stderr, limit=5_000)
    assert_printed_clean(uploaded.stdout, limit=5_000)


def test_documents_stops_at_difys_total_when_has_more_never_turns_false() -> None:
    dify = HostileDify(total=120)  # 25 a page: 5 pages hold them all
    with aiohttp_server(dify) as root:
        done = run_cli(
            "documents", "--dataset", DS, DIFY_API_KEY=KEY, DIFY_API_BASE_URL=root + "/v1"
        )
    assert done.returncode == 0, done.stderr
    assert dify.list_pages == 5
    assert done.stdout.startswith("125 document(s)")


def test_documents_stops_when_a_page_shows_nothing_new() -> None:
    dify = HostileDify(total=10**9, same_page=True)  # ignores ``page``: the same 25 for ever
    with aiohttp_server(dify) as root:
        done = run_cli(
            "documents", "--dataset", DS, DIFY_API_KEY=KEY, DIFY_API_BASE_URL=root + "/v1"
        )
    assert done.returncode == 0, done.stderr
    assert dify.list_pages == 2
    assert done.stdout.startswith("25 document(s)")


def test_documents_stops_at_its_page_count_without_a_total() -> None:
    dify = HostileDify(total=0, per_page=1, big=False)  # new documents for ever, no total
    with aiohttp_server(dify) as root:
        done = run_cli(
            "documents",
            "--dataset",
            DS,
            DIFY_API_KEY=KEY,
            DIFY_API_BASE_URL=root + "/v1",
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert dify.list_pages == 1_000
    assert "stopped after 1000 pages" in done.stdout


def test_a_file_name_with_terminal_escapes_is_printed_escaped(tmp_path: Path) -> None:
    hostile = tmp_path / "a\x1b[2Jb\x07c\rd.md"
    hostile.write_text("alpha")
    dify = HostileDify(stuck=False)
    with aiohttp_server(dify) as root:
        done = run_cli(
            "upload",
            "--dataset",
            DS,
            str(hostile),
            DIFY_API_KEY=KEY,
            DIFY_API_BASE_URL=f"{root}/v1",
            DIFY_INGEST_LEDGER=str(tmp_path / "ledger.db"),
        )
    assert "Traceback" not in done.stderr, done.stderr
    assert "\\x1b[2J" in done.stdout + done.stderr
    assert_printed_clean(done.stdout, limit=5_000)
    assert_printed_clean(done.stderr, limit=5_000)


@pytest.mark.parametrize(
    ("total", "same_page", "pages", "segments"),
    [(250, False, 3, 300), (10**9, True, 2, 100)],
    ids=["stops-at-total", "stops-at-a-page-with-nothing-new"],
)
async def test_all_segments_stops_when_has_more_never_turns_false(
    total: int, same_page: bool, pages: int, segments: int
) -> None:
    dify = HostileDify(total=total, same_page=same_page)
    servers = HostileServers()
    base_url = await servers.serve(dify, prefix="/v1")
    try:
        async with AsyncDifyKnowledgeClient(KEY, base_url, ledger="off") as client:
            found = await client.all_segments(DS, DOC)
    finally:
        await servers.close()
    assert (dify.segment_pages, len(found)) == (pages, segments)
