"""Hostile bodies stay bounded: decoded size caps, deep nesting, huge texts, echoed keys.

Every test talks real HTTP to a hostile server on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import pickle
import tracemalloc
import zlib
from typing import Any

import pytest
from aiohttp import web

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAPIError,
    DifyAuthenticationError,
    DifyError,
    DifyNotFoundError,
    DifyResponseError,
    DifyServerError,
    IndexingEvent,
)
from tests.hostile import BATCH, DS, HostileServers, servers, serving_in_thread, status_response

__all__ = ["servers"]

SECRET = "dataset-TOPSECRET0123456789abcdef"
ODD_SECRET = "k3y_0nly-this-client-knows"  # not shaped like a Dify key: redacted by identity
MB = 1024 * 1024


def gzip_bomb(decoded_bytes: int) -> bytes:
    """``decoded_bytes`` of JSON-ish filler, gzip-compressed (about 1,000 : 1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * MB
    parts = [packer.compress(b'{"data": [')]
    parts += [packer.compress(block) for _ in range(decoded_bytes // MB)]
    parts.append(packer.compress(b"]}") + packer.flush())
    return b"".join(parts)


BOMB = gzip_bomb(64 * MB)


@pytest.mark.parametrize("status", [200, 500])
async def test_gzip_bomb_with_a_content_length_is_cut_at_the_decoded_limit(
    servers: HostileServers, status: int
) -> None:
    async def bomb(request: web.Request) -> web.Response:
        return web.Response(
            status=status,
            body=BOMB,  # aiohttp declares Content-Length: the compressed size, ~64 KB
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    base_url = await servers.serve(bomb)
    async with AsyncDifyKnowledgeClient(
        "k", base_url, max_response_bytes=4 * MB, max_retries=2
    ) as client:
        tracemalloc.start()
        try:
            with pytest.raises(DifyResponseError) as caught:
                await client.get_indexing_status(DS, BATCH)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(BOMB) < MB
    assert caught.value.code == "response_too_large"
    assert "once decoded (gzip)" in caught.value.message
    assert peak < 32 * MB  # 64 MB inflated would need 64 MB at least
    assert len(servers.seen) == 1  # an oversized answer is not transient


async def test_a_small_gzip_answer_still_decodes(servers: HostileServers) -> None:
    async def gzipped(request: web.Request) -> web.Response:
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        body = packer.compress(status_response().body) + packer.flush()  # type: ignore[arg-type]
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    base_url = await servers.serve(gzipped)
    async with AsyncDifyKnowledgeClient("k", base_url) as client:
        status = await client.get_indexing_status(DS, BATCH)
    assert status.documents[0].total_segments == 3


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, DifyAPIError),
        (401, DifyAuthenticationError),
        (404, DifyNotFoundError),
        (500, DifyServerError),
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
async def test_deeply_nested_error_bodies_are_typed_errors_not_recursion_errors(
    servers: HostileServers, status: int, expected: type[DifyAPIError], content_type: str
) -> None:
    async def nested(request: web.Request) -> web.Response:
        return web.Response(status=status, body=b"[" * 100_000, content_type=content_type)

    base_url = await servers.serve(nested)
    async with AsyncDifyKnowledgeClient("k", base_url, max_retries=0) as client:
        for call in (
            client.get_indexing_status(DS, BATCH),
            client.retrieve(DS, "q"),
            client.delete_document(DS, DS),
        ):
            with pytest.raises(expected) as caught:
                await call
            assert len(str(caught.value)) < 5_000
            assert "[cut," in repr(caught.value.body)


async def test_a_20_mb_error_message_is_cut_everywhere_it_is_shown(
    servers: HostileServers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dify_ingest_tools")
    huge = "boom " * (4 * MB)
    calls = [0]

    async def verbose(request: web.Request) -> web.Response:
        calls[0] += 1
        if request.path.endswith("/retrieve") or calls[0] == 1:
            envelope = {"code": "internal_server_error", "message": huge, "status": 500}
            return web.Response(
                status=500, text=json.dumps(envelope), content_type="application/json"
            )
        return web.Response(
            body=b'{"data": [{"id": "d", "indexing_status": "completed", '
            b'"completed_segments": 1, "total_segments": 1}]}',
            content_type="application/json",
        )

    base_url = await servers.serve(verbose)
    events: list[IndexingEvent] = []
    async with AsyncDifyKnowledgeClient(
        "k", base_url, max_retries=1, backoff_base=0.001, backoff_max=0.002
    ) as client:
        status = await client.wait_for_indexing(
            DS,
            BATCH,
            timeout=10,
            poll_interval=0.01,
            max_poll_interval=0.02,
            on_event=events.append,
        )
        assert status.is_completed
        with pytest.raises(DifyServerError) as caught:
            await client.retrieve(DS, "q")
    error = caught.value
    shown = [str(error), repr(error), error.message, json.dumps(error.body)]
    shown += [event.model_dump_json() for event in events]
    shown += [record.getMessage() for record in caplog.records]
    assert any(event.kind == "retrying" for event in events)
    for text in shown:
        assert len(text) < 20_000, text[:200]
    assert "…[cut, 20971520 characters]" in error.message
    assert error.from_dify and error.code == "internal_server_error"


def echo_handler(status: int, style: str) -> Any:
    async def echo(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if style == "json":
            text = json.dumps(
                {
                    "code": "bad",
                    "message": f"rejected header {auth}",
                    "status": status,
                    "headers": dict(request.headers),
                }
            )
            return web.Response(status=status, text=text, content_type="application/json")
        if style == "html":
            text = f"<html><title>{status} denied for Authorization: {auth}</title></html>"
            return web.Response(status=status, text=text, content_type="text/html")
        return web.Response(status=status, text=f"you sent {auth} and Bearer sk-someone-else")

    return echo


@pytest.mark.parametrize(
    ("status", "style"),
    [(401, "json"), (400, "text"), (502, "html"), (500, "json"), (200, "html"), (200, "text")],
)
@pytest.mark.parametrize("key", [SECRET, ODD_SECRET])
async def test_an_echoed_api_key_is_redacted_from_errors_logs_and_events(
    servers: HostileServers, caplog: pytest.LogCaptureFixture, status: int, style: str, key: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="dify_ingest_tools")
    base_url = await servers.serve(echo_handler(status, style))
    events: list[IndexingEvent] = []
    failures: list[DifyError] = []
    async with AsyncDifyKnowledgeClient(
        key, base_url, max_retries=1, backoff_base=0.001, backoff_max=0.002
    ) as client:
        for call in (
            client.get_indexing_status(DS, BATCH),
            client.retrieve(DS, "q"),
            client.wait_for_indexing(
                DS,
                BATCH,
                timeout=5,
                contact_timeout=0.2,
                poll_interval=0.01,
                max_poll_interval=0.02,
                on_event=events.append,
            ),
        ):
            with pytest.raises(DifyError) as caught:
                await call
            failures.append(caught.value)
    texts: list[str] = []
    for error in failures:
        texts += [str(error), repr(error), repr(pickle.loads(pickle.dumps(error)))]
        texts += [repr(getattr(error, "body", None)), str(getattr(error, "hint", ""))]
    texts += [event.model_dump_json() for event in events]
    texts += [record.getMessage() for record in caplog.records]
    assert any("[redacted]" in text for text in texts)
    for text in texts:
        assert key not in text
        assert "sk-someone-else" not in text
        assert "Bearer " + key[:8] not in text


def test_cli_output_never_shows_an_echoed_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dify_ingest_tools import cli

    with serving_in_thread(echo_handler(401, "json")) as base_url:
        monkeypatch.setenv("DIFY_API_KEY", ODD_SECRET)
        code = cli.main(["status", DS, BATCH, "--base-url", base_url])
        captured = capsys.readouterr()
    assert code == 3
    assert "[redacted]" in captured.err
    assert ODD_SECRET not in captured.out + captured.err
