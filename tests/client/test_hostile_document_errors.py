"""A document's ``error`` is server-provided text: redacted and bounded wherever it is shown.

A hostile server (or a proxy) answers indexing-status and the document list with a failed
document whose ``error`` holds the client's key, a ``Bearer`` credential and 5 MB of filler.
Every surface that shows it — summaries, exception messages, events, progress bars, tool
answers, framework events, CLI output — must show neither the key nor megabytes. The status
models themselves keep what the server sent (no per-field validators on the polling path).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from dify_ingest_tools import AsyncDifyKnowledgeClient, IndexingEvent, IndexingFailedError
from dify_ingest_tools.agent.answers import answer_status
from dify_ingest_tools.agent.error_answers import failure_answer
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.readiness.progress import ProgressBars
from tests.hostile import BATCH, DS, HostileServers, servers, serving_in_thread

__all__ = ["servers"]

SHAPED_KEY = "dataset-TOPSECRET0123456789abcdef"
ODD_KEY = "k3y_0nly-this-client-knows"  # not shaped like a Dify key: redacted by identity
FAILED = "5c2a1d6e-0a6b-4f57-9c57-1c1e4a9e4f11"
DONE = "0f4b3c2a-1d6e-4a9e-8c57-9c571c1e4f11"
FILLER = 5 * 1024 * 1024
#: Far more than any surface shows of one document (a few KB), far less than the filler.
BOUND = 20_000


def hostile_error(key: str) -> str:
    return (
        f"Parser crashed. Request had Authorization: Bearer {key} (key {key}). "
        + "A" * FILLER
        + f" and again {key}"
    )


def hostile_handler(key: str) -> Any:
    error = hostile_error(key)
    status_body = json.dumps(
        {
            "data": [
                {"id": FAILED, "indexing_status": "error", "error": error},
                {
                    "id": DONE,
                    "indexing_status": "completed",
                    "completed_segments": 2,
                    "total_segments": 2,
                },
            ]
        }
    ).encode()
    listing = {"id": FAILED, "name": "report.pdf", "indexing_status": "error"}
    list_body = json.dumps(
        {
            "data": [{**listing, "display_status": "error", "error": error}],
            "has_more": False,
            "limit": 100,
            "total": 1,
            "page": 1,
        }
    ).encode()

    async def handle(request: web.Request) -> web.Response:
        if request.path.endswith("/indexing-status"):
            return web.Response(body=status_body, content_type="application/json")
        if request.path == f"/v1/datasets/{DS}/documents":
            return web.Response(body=list_body, content_type="application/json")
        envelope = {"code": "not_found", "message": "Not found.", "status": 404}
        return web.json_response(envelope, status=404)

    return handle


def assert_safe(texts: list[str], key: str) -> None:
    assert texts
    for text in texts:
        assert key not in text, text[:300]
        assert len(text) < BOUND, (len(text), text[:300])
    assert any("[redacted]" in text for text in texts)
    assert any("[cut," in text or "[…]" in text for text in texts)


@pytest.mark.parametrize("key", [SHAPED_KEY, ODD_KEY])
async def test_a_documents_hostile_error_is_redacted_and_bounded_wherever_it_is_shown(
    servers: HostileServers, key: str
) -> None:
    base_url = await servers.serve(hostile_handler(key))
    events: list[IndexingEvent] = []
    bar_output = io.StringIO()
    bars = ProgressBars(file=bar_output)

    def on_event(event: IndexingEvent) -> None:
        events.append(event)
        bars(event)

    toolset = DifyToolset(dataset_id=DS, poll_interval=0.01, max_poll_interval=0.02)
    async with AsyncDifyKnowledgeClient(key, base_url, max_retries=0) as client:
        status = await client.get_indexing_status(DS, BATCH)
        try:
            with pytest.raises(IndexingFailedError) as caught:
                await client.wait_for_indexing(
                    DS, BATCH, timeout=5, poll_interval=0.01, on_event=on_event
                )
        finally:
            bars.close()
        tool_results = [
            await toolset.run(client, "indexing_status", {"batch": BATCH}),
            await toolset.run(client, "wait_for_indexing", {"batch": BATCH}),
            await toolset.run(client, "list_documents", {}),
        ]
    # The model keeps what Dify sent; only what is shown is made safe.
    assert status.document(FAILED).error == hostile_error(key)

    error = caught.value
    answer = answer_status(status)
    shown = [status.summary(), str(error), repr(error), failure_answer(error)]
    shown += [answer.text, json.dumps(answer.data), bar_output.getvalue()]
    shown += [event.describe() for event in events]
    shown += [event.error for event in events if event.error is not None]
    for result in tool_results:
        shown += [result.text, json.dumps(result.data)]
    assert_safe(shown, key)
    [failed_event] = [event for event in events if event.kind == "document_failed"]
    assert failed_event.error is not None and "[redacted]" in failed_event.error
    assert "Parser crashed" in status.summary() and "[redacted]" in status.summary()


async def test_framework_events_of_a_hostile_error_are_redacted_and_bounded(
    servers: HostileServers,
) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from dify_ingest_tools.langchain.events import custom_event_data
    from dify_ingest_tools.llama_index.events import to_llama_event

    base_url = await servers.serve(hostile_handler(ODD_KEY))
    events: list[IndexingEvent] = []
    async with AsyncDifyKnowledgeClient(ODD_KEY, base_url, max_retries=0) as client:
        await client.wait_for_indexing(
            DS, BATCH, timeout=5, poll_interval=0.01, raise_on_error=False, on_event=events.append
        )
    assert {"document_failed", "batch_failed"} <= {event.kind for event in events}
    shown = [json.dumps(custom_event_data(event)) for event in events]
    shown += [to_llama_event(event).model_dump_json() for event in events]
    assert_safe(shown, ODD_KEY)


@pytest.fixture
def hostile_url() -> Iterator[str]:
    """The hostile server on its own thread and loop, for the CLI (which runs its own)."""
    with serving_in_thread(hostile_handler(ODD_KEY)) as base_url:
        yield base_url


@pytest.mark.parametrize(
    "command",
    [
        ["status", DS, BATCH],
        ["status", DS, BATCH, "--json"],
        ["wait", DS, BATCH, "--timeout", "5", "--poll-interval", "0.01", "--progress"],
        ["wait", DS, BATCH, "--timeout", "5", "--poll-interval", "0.01", "--json"],
        ["documents", "--dataset", DS],
        ["documents", "--dataset", DS, "--json"],
    ],
    ids=["status", "status-json", "wait", "wait-json", "documents", "documents-json"],
)
def test_cli_output_of_a_hostile_error_is_redacted_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hostile_url: str,
    command: list[str],
) -> None:
    from dify_ingest_tools import cli

    monkeypatch.setenv("DIFY_API_KEY", ODD_KEY)
    code = cli.main([*command, "--base-url", hostile_url])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err[-500:]  # listed, or the batch failed
    shown = [captured.out, captured.err]
    for text in shown:
        assert ODD_KEY not in text
        assert len(text) < BOUND * 2, (len(text), text[:300])
    if command[0] != "documents" or "--json" in command:
        assert "[redacted]" in captured.out + captured.err
