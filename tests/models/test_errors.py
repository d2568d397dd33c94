"""Every error row of the contract maps to its class, with status, code and Dify's message."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAPIError,
    DifyAuthenticationError,
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyPermissionError,
    DifyRateLimitError,
    DifyResponseError,
    DifyServerError,
    DifyTimeoutError,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools._http.responses import error_from_response, parse_retry_after
from dify_ingest_tools.errors import RATE_LIMIT_MESSAGE
from dify_ingest_tools.testing import DifySimulator, Fault
from tests.conftest import FAST, load_recording

BATCH = "20261128154005508280"


def _recorded_errors(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "request" in node and "response" in node:
            if node["response"]["status"] >= 400:
                yield node
            return
        for value in node.values():
            yield from _recorded_errors(value)
    elif isinstance(node, list):
        for value in node:
            yield from _recorded_errors(value)


RECORDINGS = [
    "02b_synchronous_create_rejections.json",
    "03_not_found_cases.json",
    "03b_method_and_path_variants.json",
    "04_auth_failures.json",
    "04b_dataset_api_access_disabled.json",
    "05_multiple_files_per_batch.json",
    "06_retrieve.json",
    "08_dataset_and_document_detail.json",
]

EXPECTED_CLASS = {
    400: DifyAPIError,
    401: DifyAuthenticationError,
    403: DifyPermissionError,
    404: DifyNotFoundError,
    405: DifyAPIError,
}


@pytest.mark.parametrize("recording", RECORDINGS)
def test_every_recorded_error_maps_to_its_class(recording: str) -> None:
    exchanges = list(_recorded_errors(load_recording(recording)))
    assert exchanges, recording
    for exchange in exchanges:
        response = exchange["response"]
        body = response["body"]
        text = body if isinstance(body, str) else __import__("json").dumps(body)
        error = error_from_response(
            response["status"], text, response["headers"], url="http://x/v1", method="GET"
        )
        assert type(error) is EXPECTED_CLASS[response["status"]], exchange["request"]["path"]
        assert error.status == response["status"]
        if isinstance(body, dict):
            assert error.code == body["code"]
            assert error.message == body["message"]
        else:  # Werkzeug's HTML 404: a not-found error, never a JSON crash
            assert error.code == "not_found"
            assert error.resource == "route"  # type: ignore[attr-defined]
            assert "404 Not Found" in error.message


def test_not_found_variants_are_told_apart() -> None:
    def resource(message: str) -> str:
        body = f'{{"code": "not_found", "message": "{message}", "status": 404}}'
        error = error_from_response(404, body)
        assert isinstance(error, DifyNotFoundError)
        return error.resource

    assert resource("Dataset not found.") == "dataset"
    assert resource("Dataset not found. You have requested this URI [/v1/x] but...") == "dataset"
    assert resource("Documents not found.") == "documents"
    assert resource("Document not found.") == "document"
    assert resource("Document Not Exists.") == "document"
    assert resource("Something else") == "unknown"
    dataset = error_from_response(404, '{"code":"not_found","message":"Dataset not found."}')
    assert isinstance(dataset, DifyNotFoundError)
    assert dataset.is_dataset_missing and not dataset.is_batch_missing


def test_knowledge_rate_limit_403_is_a_rate_limit_not_a_permission_error() -> None:
    body = f'{{"code": "forbidden", "message": "{RATE_LIMIT_MESSAGE}", "status": 403}}'
    error = error_from_response(403, body)
    assert isinstance(error, DifyRateLimitError)
    assert not isinstance(error, DifyPermissionError)
    assert error.is_knowledge_rate_limit and error.retry_after is None
    assert (error.status, error.code, error.message) == (403, "forbidden", RATE_LIMIT_MESSAGE)


def test_429_reads_retry_after_in_seconds_and_as_http_date() -> None:
    error = error_from_response(
        429, '{"code":"too_many_requests","message":"slow"}', {"Retry-After": "7"}
    )
    assert isinstance(error, DifyRateLimitError)
    assert error.retry_after == 7.0 and not error.is_knowledge_rate_limit
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    dated = error_from_response(429, "Too Many Requests", {"retry-after": when})
    assert isinstance(dated, DifyRateLimitError)
    assert dated.retry_after is not None and 25 <= dated.retry_after <= 31
    assert dated.code == "too_many_requests"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("soon", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_http_date_in_the_past_means_no_wait() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_server_errors_json_without_status_and_proxy_html() -> None:
    # Old servers omit "status" from the 500 envelope (dify#12605).
    legacy = error_from_response(500, '{"message": "Internal Server Error", "code": "unknown"}')
    assert isinstance(legacy, DifyServerError)
    assert (legacy.code, legacy.message) == ("unknown", "Internal Server Error")
    html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    proxy = error_from_response(502, html, {"Content-Type": "text/html"})
    assert isinstance(proxy, DifyServerError)
    assert (proxy.status, proxy.code, proxy.message) == (502, "bad_gateway", "502 Bad Gateway")
    bare = error_from_response(503, "")
    assert (bare.code, bare.message) == ("service_unavailable", "Service Unavailable")
    odd = error_from_response(599, "<p>broken</p>")
    assert isinstance(odd, DifyServerError) and odd.message == "broken"


def test_errors_describe_themselves_and_pickle() -> None:
    error = error_from_response(
        404,
        '{"code":"not_found","message":"Documents not found.","status":404}',
        url="http://host/v1/datasets/x/documents/1/indexing-status",
        method="GET",
    )
    assert "Documents not found." in str(error)
    assert "HTTP 404" in str(error) and "GET http://host/v1/" in str(error)
    assert "status=404" in repr(error)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is DifyNotFoundError
    assert (clone.status, clone.message, clone.resource, str(clone)) == (
        404,
        "Documents not found.",
        "documents",
        str(error),
    )


def test_hierarchy() -> None:
    assert issubclass(DifyTimeoutError, DifyConnectionError)
    assert issubclass(DifyTimeoutError, TimeoutError)
    assert issubclass(IndexingTimeoutError, TimeoutError)
    for cls in (DifyAPIError, DifyConnectionError, IndexingFailedError, IndexingStalledError):
        assert issubclass(cls, DifyError)
    for cls in (DifyAuthenticationError, DifyNotFoundError, DifyServerError, DifyResponseError):
        assert issubclass(cls, DifyAPIError)
    failed = IndexingFailedError("boom")
    assert failed.last_status is None and failed.failed_documents == ()


# -- the same rows, over real HTTP against the simulator -----------------------------------


async def test_invalid_key_is_an_authentication_error(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    async with AsyncDifyKnowledgeClient("dataset-not-a-real-key", base_url) as client:
        with pytest.raises(DifyAuthenticationError) as caught:
            await client.get_indexing_status(dataset_id, BATCH)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert caught.value.message == "Access token is invalid"


async def test_unknown_dataset_and_unknown_batch(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(DifyNotFoundError) as missing_dataset:
        await client.get_indexing_status("00000000-0000-4000-8000-000000000000", BATCH)
    assert missing_dataset.value.message == "Dataset not found."
    assert missing_dataset.value.resource == "dataset"
    with pytest.raises(DifyNotFoundError) as missing_batch:
        await client.get_indexing_status(dataset_id, "20991231235959000000")
    assert (missing_batch.value.status, missing_batch.value.code) == (404, "not_found")
    assert missing_batch.value.message == "Documents not found."
    assert missing_batch.value.resource == "documents"


async def test_unknown_document(client: AsyncDifyKnowledgeClient, dataset_id: str) -> None:
    with pytest.raises(DifyNotFoundError) as caught:
        await client.get_document(dataset_id, "00000000-0000-4000-8000-000000000000")
    assert caught.value.message == "Document not found."
    assert caught.value.resource == "document"


async def test_create_on_unknown_dataset_keeps_difys_long_message(
    client: AsyncDifyKnowledgeClient,
) -> None:
    with pytest.raises(DifyNotFoundError) as caught:
        await client.create_document_by_text(
            "00000000-0000-4000-8000-000000000000", "x.txt", "hello", indexing_technique="economy"
        )
    assert caught.value.message.startswith("Dataset not found. You have requested this URI")
    assert caught.value.resource == "dataset"


async def test_wrong_base_path_gives_a_route_not_found_not_a_json_crash(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url + "/v9", **FAST) as client:
        with pytest.raises(DifyNotFoundError) as caught:
            await client.get_indexing_status(dataset_id, BATCH)
    assert caught.value.resource == "route"
    assert (caught.value.status, caught.value.code) == (404, "not_found")


async def test_api_access_disabled_is_a_permission_error(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.set_api_enabled(dataset_id, False)
    with pytest.raises(DifyPermissionError) as caught:
        await client.get_indexing_status(dataset_id, BATCH)
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert caught.value.message == "Dataset api access is not enabled."
    assert len(sim.requests_for(route="indexing_status")) == 1  # fatal: not retried


async def test_knowledge_rate_limit_over_http(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.knowledge_rate_limit(), route="retrieve", times=-1)
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, max_retries=2, **FAST) as client:
        with pytest.raises(DifyRateLimitError) as caught:
            await client.retrieve(dataset_id, "alpha")
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert caught.value.message == RATE_LIMIT_MESSAGE
    assert len(sim.requests_for(route="retrieve")) == 3  # retried: it is transient


async def test_429_over_http_carries_retry_after(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.too_many_requests(retry_after=0), route="indexing_status", times=-1)
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, max_retries=1, **FAST) as client:
        with pytest.raises(DifyRateLimitError) as caught:
            await client.get_indexing_status(dataset_id, BATCH)
    assert (caught.value.status, caught.value.retry_after) == (429, 0.0)
    assert len(sim.requests_for(route="indexing_status")) == 2


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.server_error(500), 500), (Fault.proxy_html(502), 502), (Fault.proxy_html(504), 504)],
)
async def test_server_errors_over_http(
    sim: DifySimulator, base_url: str, dataset_id: str, fault: Fault, status: int
) -> None:
    sim.inject(fault, route="indexing_status", times=-1)
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, max_retries=0) as client:
        with pytest.raises(DifyServerError) as caught:
            await client.get_indexing_status(dataset_id, BATCH)
    assert caught.value.status == status
    assert caught.value.message


async def test_bad_request_keeps_an_empty_dify_message(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(DifyAPIError) as caught:
        await client.create_document_by_file(dataset_id, b"MZ\x90\x00", filename="tool.exe")
    assert type(caught.value) is DifyAPIError
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400,
        "invalid_param",
        "",
    )
    assert "(Dify sent no message)" in str(caught.value)


async def test_empty_query_is_difys_400(client: AsyncDifyKnowledgeClient, dataset_id: str) -> None:
    with pytest.raises(DifyAPIError) as caught:
        await client.retrieve(dataset_id, "")
    assert (caught.value.status, caught.value.code) == (400, "invalid_param")
    assert caught.value.message == "Query or attachment_ids is required"


async def test_malformed_json_and_wrong_shape_are_response_errors(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.inject(Fault.malformed_json(), route="indexing_status", times=-1)
    with pytest.raises(DifyResponseError) as broken:
        await client.get_indexing_status(dataset_id, BATCH)
    assert broken.value.status == 200 and broken.value.code == "invalid_json"
    # JSON cut off mid-way is transient (a dropped connection, a proxy): retried.
    assert len(sim.requests_for(route="indexing_status")) == 1 + client.retry_policy.max_retries
    sim.clear_faults()
    sim.inject(Fault.wrong_shape(), route="indexing_status")
    with pytest.raises(DifyResponseError) as shaped:
        await client.get_indexing_status(dataset_id, BATCH)
    assert shaped.value.code == "unexpected_shape"
    # Well-formed JSON of the wrong shape will be wrong again: not retried.
    assert len(sim.requests_for(route="indexing_status")) == 2 + client.retry_policy.max_retries


async def test_dropped_connection_is_a_connection_error(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.drop_connection(), route="indexing_status", times=-1)
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, max_retries=1, **FAST) as client:
        with pytest.raises(DifyConnectionError) as caught:
            await client.get_indexing_status(dataset_id, BATCH)
    assert not isinstance(caught.value, DifyTimeoutError)
    assert "indexing-status" in caught.value.url


async def test_slow_answer_is_a_timeout_error(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    sim.inject(Fault.latency(2.0), route="indexing_status", times=-1)
    async with AsyncDifyKnowledgeClient(
        sim.api_key, base_url, timeout=0.05, max_retries=0
    ) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.get_indexing_status(dataset_id, BATCH)
    assert isinstance(caught.value, DifyTimeoutError)


async def test_refused_connection_is_a_connection_error(dataset_id: str) -> None:
    async with AsyncDifyKnowledgeClient(
        "dataset-key", "http://127.0.0.1:9/v1", max_retries=0
    ) as client:
        with pytest.raises(DifyConnectionError) as caught:
            await client.get_indexing_status(dataset_id, BATCH)
    assert caught.value.url.startswith("http://127.0.0.1:9/v1/datasets/")


def test_with_context_builds_a_new_error_and_leaves_the_original_alone() -> None:
    limited = error_from_response(
        429, '{"code":"too_many_requests","message":"Slow down."}', {"Retry-After": "7"}
    )
    assert isinstance(limited, DifyRateLimitError) and limited.hint is None
    key = "dataset-" + "q7Zw" * 6  # unlike any key another test registers for redaction
    told = limited.with_context(hint=f"Wait, then retry with {key}.", retry_after=60.0)
    assert type(told) is DifyRateLimitError and told is not limited
    assert (told.retry_after, told.hint) == (60.0, "Wait, then retry with [redacted].")
    assert (told.status, told.code, told.message) == (limited.status, limited.code, "Slow down.")
    assert "Wait, then retry" in str(told)
    assert (limited.retry_after, limited.hint) == (7.0, None)  # unchanged
    clone = pickle.loads(pickle.dumps(told))
    assert (type(clone), clone.retry_after, clone.hint, str(clone)) == (
        DifyRateLimitError,
        60.0,
        told.hint,
        str(told),
    )
    failed = IndexingFailedError("batch 1 failed")
    assert failed.with_context(last_status=None).args == ("batch 1 failed",)
    with pytest.raises(TypeError, match="carries no retry_after"):
        error_from_response(404, '{"message":"Dataset not found."}').with_context(retry_after=1)
    with pytest.raises(TypeError, match="carries no hint"):
        failed.with_context(hint="no")


def test_errors_cannot_be_changed_after_they_are_built() -> None:
    error = error_from_response(404, '{"code":"not_found","message":"Documents not found."}')
    for name, value in (("hint", "x"), ("last_status", None), ("status", 500), ("message", "")):
        with pytest.raises(AttributeError, match="cannot be changed"):
            setattr(error, name, value)
    connection = DifyConnectionError("refused", url="http://host/v1")
    with pytest.raises(AttributeError, match="cannot be changed"):
        connection.hint = "edited"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot be changed"):
        IndexingTimeoutError("late").last_status = None  # type: ignore[misc]
    assert (error.hint, error.status, connection.hint) == (None, 404, None)
    # What Python itself keeps on an exception still works (notes: Python 3.11+).
    if sys.version_info >= (3, 11):
        error.add_note("seen by the test")
        assert pickle.loads(pickle.dumps(error)).__notes__ == ["seen by the test"]
    error.__cause__ = ValueError("why")
    assert str(error.__cause__) == "why"
