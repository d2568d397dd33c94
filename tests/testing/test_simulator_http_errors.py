"""Routing, auth and access errors, reproduced from recordings 03, 03b, 04 and 04b."""

from __future__ import annotations

import pytest

from dify_ingest_tools.testing import DifySimulator
from dify_ingest_tools.testing._http import WERKZEUG_404_HTML

from .helpers import DEFAULT, Api, raw_request

UNKNOWN = "00000000-0000-4000-8000-000000000000"
MUST_START = "Authorization header must be provided and start with 'Bearer'"
REALM = 'Bearer realm="api"'


def envelope(status: int, code: str, message: str) -> dict[str, object]:
    return {"code": code, "message": message, "status": status}


@pytest.fixture
async def batch(api: Api, dataset_id: str) -> str:
    created = await api.create_text(dataset_id, "x.txt", "hello world")
    batch: str = created["batch"]
    return batch


async def test_unknown_dataset_is_a_json_404(api: Api, batch: str) -> None:
    reply = await api.get(f"/v1/datasets/{UNKNOWN}/documents/{batch}/indexing-status")
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json == envelope(404, "not_found", "Dataset not found.")


@pytest.mark.parametrize("batch_id", ["20991231235959000000", "no-such-batch"])
async def test_unknown_batch_is_documents_not_found(
    api: Api, dataset_id: str, batch_id: str
) -> None:
    reply = await api.get(f"/v1/datasets/{dataset_id}/documents/{batch_id}/indexing-status")
    assert reply.status == 404
    assert reply.json == envelope(404, "not_found", "Documents not found.")


async def test_batch_of_another_dataset_is_documents_not_found(
    sim: DifySimulator, api: Api, batch: str
) -> None:
    other = sim.create_dataset("other")
    reply = await api.get(f"/v1/datasets/{other}/documents/{batch}/indexing-status")
    assert reply.status == 404
    assert reply.json == envelope(404, "not_found", "Documents not found.")


@pytest.mark.parametrize("auth", [DEFAULT, None], ids=["with-auth", "no-auth"])
@pytest.mark.parametrize(
    "path",
    [
        "/v1/datasets/not-a-uuid/documents/20261128152717730162/indexing-status",
        "/v1/datasets/{ds}/documents/{batch}/indexing-status/",
        "/v1/datasets/{ds}/documents/{batch}/indexing_status",
        "/v1/nothing-here",
    ],
    ids=["non-uuid", "trailing-slash", "underscore", "unknown-path"],
)
async def test_unmatched_paths_get_werkzeug_html_404_before_auth(
    api: Api, dataset_id: str, batch: str, path: str, auth: object
) -> None:
    reply = await api.get(path.format(ds=dataset_id, batch=batch), auth=auth)
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Access-Control-Allow-Origin" not in reply.headers
    assert reply.text == WERKZEUG_404_HTML


async def test_auth_is_checked_before_the_dataset(api: Api, batch: str) -> None:
    reply = await api.get(f"/v1/datasets/{UNKNOWN}/documents/{batch}/indexing-status", auth=None)
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == REALM
    assert reply.json == envelope(401, "unauthorized", MUST_START)


@pytest.mark.parametrize(
    ("route", "suggestions"),
    [
        ("create-by-text", "create-by-text or {b}create_by_text or {b}create-by-file"),
        ("create-by-file", "create-by-file or {b}create_by_file or {b}create-by-text"),
    ],
)
async def test_create_routes_add_flask_restx_help_to_dataset_404(
    api: Api, route: str, suggestions: str
) -> None:
    path = f"/v1/datasets/{UNKNOWN}/document/{route}"
    if route == "create-by-text":
        reply = await api.post(path, json={"name": "x.txt", "text": "hello"})
    else:
        reply = await api.upload(UNKNOWN, [("file", "a.txt", b"hello", "text/plain")])
    base = "/v1/datasets/<uuid:dataset_id>/document/"
    message = (
        f"Dataset not found. You have requested this URI [{path}] but did you mean "
        f"{base}{suggestions.format(b=base)} ?"
    )
    assert reply.status == 404
    assert reply.json == envelope(404, "not_found", message)


@pytest.mark.parametrize("path", [f"/v1/datasets/{UNKNOWN}", f"/v1/datasets/{UNKNOWN}/documents"])
async def test_other_routes_say_plain_dataset_not_found(api: Api, path: str) -> None:
    reply = await api.get(path)
    assert reply.status == 404
    assert reply.json == envelope(404, "not_found", "Dataset not found.")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_wrong_method_on_a_known_route_is_json_405(
    api: Api, dataset_id: str, batch: str, method: str
) -> None:
    reply = await api.request(
        method, f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status"
    )
    assert reply.status == 405
    assert reply.headers["Content-Type"] == "application/json"
    assert "Access-Control-Allow-Origin" not in reply.headers
    assert reply.json == envelope(
        405, "method_not_allowed", "The method is not allowed for the requested URL."
    )


async def test_options_preflight_is_answered_without_auth(
    api: Api, dataset_id: str, batch: str
) -> None:
    reply = await api.request(
        "OPTIONS",
        f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status",
        auth=None,
        headers={
            "Origin": "http://example.test",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert reply.status == 200
    assert reply.text == ""
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Access-Control-Allow-Origin"] == "http://example.test"


async def test_query_parameters_and_upper_case_uuids_are_accepted(
    api: Api, dataset_id: str, batch: str
) -> None:
    reply = await api.get(
        f"/v1/datasets/{dataset_id.upper()}/documents/{batch}/indexing-status?page=2&limit=1"
    )
    assert reply.status == 200
    assert len(reply.json["data"]) == 1


async def test_an_encoded_space_makes_a_different_batch(
    api: Api, dataset_id: str, batch: str
) -> None:
    reply = await api.get(
        f"/v1/datasets/{dataset_id}/documents/%20{batch}/indexing-status", encoded=True
    )
    assert reply.status == 404
    assert reply.json == envelope(404, "not_found", "Documents not found.")


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        (None, 401, MUST_START),
        ("", 401, MUST_START),
        ("Bearer", 401, MUST_START),
        ("Basic dXNlcjpwYXNz", 401, "Authorization scheme must be 'Bearer'"),
        ("dataset-AAAAAAAAAAAAAAAAAAAAAAAA", 401, MUST_START),
        ("Bearer dataset-AAAAAAAAAAAAAAAAAAAAAAAA", 401, "Access token is invalid"),
        ("Bearer app-AAAAAAAAAAAAAAAAAAAAAAAA", 401, "Access token is invalid"),
    ],
)
async def test_authorization_failures(
    api: Api, dataset_id: str, batch: str, header: str | None, status: int, message: str
) -> None:
    reply = await api.get(
        f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status", auth=header
    )
    assert reply.status == status
    assert reply.headers["WWW-Authenticate"] == REALM
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert reply.json == envelope(401, "unauthorized", message)


async def test_bearer_with_a_trailing_space_is_a_400_unpack_error(
    base_url: str, dataset_id: str, batch: str
) -> None:
    # Sent raw: the header must reach the server with its trailing space.
    reply = await raw_request(
        base_url,
        "GET",
        f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status",
        {"Authorization": "Bearer "},
    )
    assert reply.status == 400
    assert "WWW-Authenticate" not in reply.headers
    assert reply.json == envelope(
        400, "invalid_param", "not enough values to unpack (expected 2, got 1)"
    )


@pytest.mark.parametrize("template", ["bearer {key}", "Bearer  {key}"])
async def test_lower_case_scheme_and_double_space_are_accepted(
    api: Api, dataset_id: str, batch: str, template: str
) -> None:
    reply = await api.get(
        f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status",
        auth=template.format(key=api.api_key),
    )
    assert reply.status == 200


async def test_wrong_key_on_create_and_missing_auth_on_retrieve(api: Api, dataset_id: str) -> None:
    create = await api.post(
        f"/v1/datasets/{dataset_id}/document/create-by-text",
        json={"name": "x.txt", "text": "hello", "indexing_technique": "economy"},
        auth="Bearer dataset-AAAAAAAAAAAAAAAAAAAAAAAA",
    )
    assert create.status == 401
    assert create.json == envelope(401, "unauthorized", "Access token is invalid")
    retrieve = await api.post(
        f"/v1/datasets/{dataset_id}/retrieve", json={"query": "alpha"}, auth=None
    )
    assert retrieve.status == 401
    assert retrieve.json == envelope(401, "unauthorized", MUST_START)


async def test_disabled_api_access_is_403_even_for_unknown_batches(
    sim: DifySimulator, api: Api, dataset_id: str, batch: str
) -> None:
    forbidden = envelope(403, "forbidden", "Dataset api access is not enabled.")
    sim.set_api_enabled(dataset_id, False)
    for path in (
        f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status",
        f"/v1/datasets/{dataset_id}/documents/nope/indexing-status",
        f"/v1/datasets/{dataset_id}/documents",
        f"/v1/datasets/{dataset_id}",
    ):
        reply = await api.get(path)
        assert (reply.status, reply.json) == (403, forbidden), path
    create = await api.post(
        f"/v1/datasets/{dataset_id}/document/create-by-text",
        json={"name": "y.txt", "text": "hello", "indexing_technique": "economy"},
    )
    assert (create.status, create.json) == (403, forbidden)
    wrong_key = await api.get(
        f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status",
        auth="Bearer dataset-AAAAAAAAAAAAAAAAAAAAAAAA",
    )
    assert wrong_key.status == 401
    sim.set_api_enabled(dataset_id, True)
    assert (
        await api.get(f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status")
    ).status == 200


async def test_every_response_carries_the_server_version_headers(api: Api, batch: str) -> None:
    reply = await api.get("/v1/nothing-here")
    assert reply.headers["X-Version"] == "1.14.1"
    assert reply.headers["X-Env"] == "PRODUCTION"
