"""Status answers: odd informational fields never kill a status; shape and size stay bounded.

Every case is served by a small aiohttp server on loopback and read by the real client.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyResponseError, IndexingStatus
from dify_ingest_tools._http.status_body import parse_status_body
from dify_ingest_tools.models.status import MAX_BATCH_DOCUMENTS

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
URL_ = URL("http://127.0.0.1/v1/datasets/x/documents/1/indexing-status")
Serve = Callable[[bytes], Awaitable[str]]


@pytest.fixture
async def serve_body() -> AsyncIterator[Serve]:
    """Serve one fixed JSON body on every path; yields a function returning the base URL."""
    runners: list[web.AppRunner] = []

    async def serve(body: bytes) -> str:
        async def answer(request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/v1"

    yield serve
    for runner in runners:
        await runner.cleanup()


async def fetch(serve: Serve, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    base_url = await serve(raw)
    async with AsyncDifyKnowledgeClient("k", base_url, max_retries=0) as client:
        return await client.get_indexing_status(DS, "1")


def entry(**fields: Any) -> dict[str, Any]:
    return {"id": "d1", "indexing_status": "indexing", **fields}


@pytest.mark.parametrize(
    ("fields", "attribute", "kept"),
    [
        ({"completed_at": "2026-12-01T16:00:36Z"}, "completed_at", None),
        ({"processing_started_at": {"seconds": 1}}, "processing_started_at", None),
        ({"paused_at": [1]}, "paused_at", None),
        ({"stopped_at": 1e400}, "stopped_at", None),  # overflows to infinity
        ({"completed_segments": 1.5}, "completed_segments", 0),
        ({"total_segments": -3}, "total_segments", 0),
        ({"total_segments": "many"}, "total_segments", 0),
        ({"completed_segments": None}, "completed_segments", 0),
        ({"error": {"nested": "text"}}, "error", None),
        ({"completed_at": 1796140836.5}, "completed_at", 1796140836.5),
        ({"total_segments": "8"}, "total_segments", 8),
    ],
)
async def test_an_odd_informational_field_is_kept_as_unknown_not_fatal(
    serve_body: Serve, fields: dict[str, Any], attribute: str, kept: Any
) -> None:
    status = await fetch(serve_body, {"data": [entry(**fields)]})
    (document,) = status.documents
    assert getattr(document, attribute) == kept
    assert document.indexing_status is IndexingStatus.indexing
    assert status.verdict == "working"


async def test_a_nan_timestamp_is_dropped_so_a_fingerprint_equals_itself(
    serve_body: Serve,
) -> None:
    status = await fetch(
        serve_body,
        b'{"data": [{"id": "d1", "indexing_status": "indexing", '
        b'"completed_at": NaN, "paused_at": -Infinity}]}',
    )
    (document,) = status.documents
    assert document.completed_at is None and document.paused_at is None
    assert status.fingerprint() == status.fingerprint()


@pytest.mark.parametrize("value", [None, 7, ["completed"], {"s": "completed"}, True])
async def test_a_null_or_non_string_status_is_unknown_and_still_working(
    serve_body: Serve, value: Any
) -> None:
    status = await fetch(
        serve_body,
        {"data": [entry(indexing_status=value), entry(id="d2", indexing_status="completed")]},
    )
    unknown = status.document("d1")
    assert unknown.indexing_status is None and unknown.status_name == "unknown"
    assert not unknown.is_terminal and not status.is_completed and not status.is_terminal
    assert status.verdict == "working"
    assert status.status_counts() == {"unknown": 1, "completed": 1}
    assert "1 unknown" in status.summary()


async def test_a_missing_status_is_unknown_too(serve_body: Serve) -> None:
    status = await fetch(serve_body, {"data": [{"id": "d1"}]})
    assert status.documents[0].indexing_status is None and status.verdict == "working"


async def test_completed_stays_completed_whatever_the_counters_say(serve_body: Serve) -> None:
    body = {"data": [entry(indexing_status="completed", completed_segments=-1, total_segments=1.5)]}
    status = await fetch(serve_body, body)
    assert status.is_completed and status.progress == 1.0


@pytest.mark.parametrize(
    "body",
    [
        {"data": [{"indexing_status": "completed"}]},  # no id
        {"data": [{"id": 5, "indexing_status": "completed"}]},
        {"data": [{"id": None, "indexing_status": "completed"}]},
        {"data": {"id": "d1", "indexing_status": "completed"}},  # data not a list
        {"data": "d1"},
        {"data": ["d1"]},
        {"items": []},
        [{"id": "d1"}],
    ],
)
async def test_a_missing_id_or_a_non_list_data_is_a_shape_error(
    serve_body: Serve, body: Any
) -> None:
    with pytest.raises(DifyResponseError) as caught:
        await fetch(serve_body, body)
    assert caught.value.code == "unexpected_shape"


def many(count: int, template: str = '{{"id":"{i:07d}","indexing_status":"waiting"}}') -> bytes:
    items = ",".join(template.format(i=i) for i in range(count))
    return f'{{"data":[{items}]}}'.encode()


async def test_an_answer_with_more_documents_than_a_batch_holds_is_refused(
    serve_body: Serve,
) -> None:
    with pytest.raises(DifyResponseError) as caught:
        await fetch(serve_body, many(MAX_BATCH_DOCUMENTS + 1))
    assert caught.value.code == "too_many_documents"
    assert str(MAX_BATCH_DOCUMENTS) in caught.value.message


async def test_a_batch_at_the_cap_is_still_read(serve_body: Serve) -> None:
    status = await fetch(serve_body, many(MAX_BATCH_DOCUMENTS))
    assert len(status.documents) == MAX_BATCH_DOCUMENTS


def test_a_huge_document_list_is_refused_in_bounded_time_and_memory() -> None:
    # 740,000 documents in 33 MB (the measured attack) once took 1.7 GB and ~5 s to build.
    raw = many(740_000)
    assert len(raw) > 30_000_000
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(DifyResponseError) as caught:
            parse_status_body(raw, URL_)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "too_many_documents"
    assert peak < 120_000_000  # the decoded text (~33 MB) and at most the cap's items
    assert time.monotonic() - started < 5.0


SIX_DOCUMENTS = b",".join(b'{"id": "%d"}' % i for i in range(6))


@pytest.mark.parametrize(
    "raw",
    [
        # Items that are not documents count too: 20 ints would otherwise be 20 errors.
        b'{"data": [' + b",".join(b"1" for _ in range(6)) + b"]}",
        # A repeated key: whichever "data" the parser keeps, each is checked.
        b'{"data": [], "data": [' + SIX_DOCUMENTS + b"]}",
        # An escaped key is the same key.
        b'{"d\\u0061ta": [' + SIX_DOCUMENTS + b"]}",
        # Whitespace everywhere, other keys first.
        b' { "junk" : {"x": [1, 2, 3]} ,\n "data" :\t[ 1 , 2 , 3 , 4 , 5 , 6 ] } ',
    ],
)
def test_the_document_count_is_exact_whatever_the_layout(raw: bytes) -> None:
    with pytest.raises(DifyResponseError) as caught:
        parse_status_body(raw, URL_, limit=5)
    assert caught.value.code == "too_many_documents"


@pytest.mark.parametrize(
    "raw",
    [
        # Commas inside strings are not documents.
        b'{"data": [{"id": "a", "indexing_status": "error", "error": "a, b, c, d, e, f, g"}]}',
        b'{"junk": [1, 2, 3, 4, 5, 6, 7], "data": [{"id": "a"}]}',
        b'{"data": [{"id": "a", "extra": [1, 2, 3, 4, 5, 6, 7]}]}',
    ],
)
def test_commas_that_are_not_documents_do_not_count(raw: bytes) -> None:
    (document,) = parse_status_body(raw, URL_, limit=5)
    assert document.id == "a"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        # Broken before the limit is reached (past it, "too many" is already the truth).
        (b'{"data": [1, 2, 3, 4, 5', "invalid_json"),  # cut off
        (b'{"data": [1, 2,, 3, 4, 5, 6]}', "invalid_json"),
        (b'{"data": [1, 2] "x": [3, 4, 5, 6]}', "invalid_json"),
        (b'\xff{"data": [1, 2, 3, 4, 5, 6]}', "not_json"),  # garbage first: not Dify's JSON
        (b"[1, 2, 3, 4, 5, 6, 7]", "unexpected_shape"),
    ],
)
def test_a_broken_long_body_is_reported_as_what_it_is(raw: bytes, code: str) -> None:
    with pytest.raises(DifyResponseError) as caught:
        parse_status_body(raw, URL_, limit=5)
    assert caught.value.code == code
