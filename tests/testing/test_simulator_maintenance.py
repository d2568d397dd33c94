"""The simulator's maintenance endpoints beyond the recordings: hostile and confused input,
and how high-quality knowledge bases rank."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from dify_ingest_tools.testing import DifySimulator, ManualClock

from .helpers import Api

SOME = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"


def _ready(sim: DifySimulator, clock: ManualClock, dataset_id: str, name: str, text: str) -> str:
    document_id, _ = sim.add_document(dataset_id, name, text)
    clock.advance(10)
    return document_id


async def _retrieve(api: Api, dataset_id: str, query: str, **model: Any) -> list[str]:
    body: dict[str, Any] = {"query": query}
    body["retrieval_model"] = {
        "search_method": "keyword_search",
        "reranking_enable": False,
        "top_k": 4,
        "score_threshold_enabled": False,
        **model,
    }
    reply = await api.post(f"/v1/datasets/{dataset_id}/retrieve", json=body)
    assert reply.status == 200, reply.text
    return [record["segment"]["content"] for record in reply.json["records"]]


async def test_high_quality_semantic_search_ranks_every_chunk(
    sim: DifySimulator, clock: ManualClock, api: Api
) -> None:
    quality = sim.create_dataset("hq", indexing_technique="high_quality")
    _ready(sim, clock, quality, "a.txt", "Foo text.")
    _ready(sim, clock, quality, "b.txt", "Bar text.")
    # Like a vector index: the nearest neighbours, even without a shared word (score 0.0).
    semantic = "semantic_search"
    assert await _retrieve(api, quality, "bar", top_k=2, search_method=semantic) == [
        "Bar text.",
        "Foo text.",
    ]
    assert await _retrieve(api, quality, "bar") == ["Bar text."]
    assert await _retrieve(
        api,
        quality,
        "bar",
        score_threshold_enabled=True,
        score_threshold=0.5,
        search_method=semantic,
    ) == ["Bar text."]
    economy = sim.create_dataset("economy")
    _ready(sim, clock, economy, "a.txt", "Foo text.")
    assert await _retrieve(api, economy, "bar", top_k=2) == []


async def test_malformed_bodies_get_difys_errors(
    sim: DifySimulator, clock: ManualClock, api: Api, dataset_id: str
) -> None:
    document_id = _ready(sim, clock, dataset_id, "a.txt", "Alpha.")
    base = f"/v1/datasets/{dataset_id}"
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", f"/documents/{document_id}/update-by-text", {"data": b"{"}, 400, "Invalid JSON"),
        ("POST", f"/documents/{document_id}/update-by-text", {"json": {"name": 3}}, 400, "string"),
        (
            "POST",
            f"/documents/{SOME}/update-by-text",
            {"json": {"name": "x", "text": "y"}},
            404,
            "Document not found",
        ),
        (
            "PATCH",
            "/documents/status/enable",
            {"json": {"document_ids": "x"}},
            400,
            "document_ids is required",
        ),
        ("PATCH", "/documents/status/enable", {"data": b"["}, 400, "Invalid JSON"),
        ("POST", "/metadata", {"json": {"type": "string"}}, 400, "Field required"),
        (
            "POST",
            "/metadata",
            {"json": {"type": "string", "name": "n" * 256}},
            400,
            "cannot exceed 255",
        ),
        ("PATCH", f"/metadata/{SOME}", {"json": {"name": "x"}}, 400, "Metadata not found."),
        ("PATCH", f"/metadata/{SOME}", {"json": {}}, 400, "Field required"),
        ("POST", "/documents/metadata", {"json": {}}, 400, "operation_data is required"),
        (
            "POST",
            "/documents/metadata",
            {"json": {"operation_data": [{"x": 1}]}},
            400,
            "document_id is required",
        ),
        (
            "POST",
            "/documents/metadata",
            {"json": {"operation_data": [{"document_id": document_id}]}},
            400,
            "metadata_list is required",
        ),
        ("GET", f"/documents/{SOME}/segments/{SOME}", {}, 404, "Document not found."),
    ]
    for method, path, kwargs, status, text in cases:
        reply = await api.request(method, base + path, **kwargs)
        assert (reply.status, text in reply.text) == (status, True), (path, reply.text)


async def test_file_updates_check_the_form_and_the_file(
    sim: DifySimulator, clock: ManualClock, api: Api, dataset_id: str
) -> None:
    document_id = _ready(sim, clock, dataset_id, "a.txt", "Alpha.")
    path = f"/v1/datasets/{dataset_id}/documents/{document_id}"
    bad_json = aiohttp.FormData(default_to_multipart=True)
    bad_json.add_field("data", "{")
    assert (await api.request("PATCH", path, data=bad_json)).status == 400
    bad_rule = aiohttp.FormData(default_to_multipart=True)
    bad_rule.add_field("data", '{"process_rule": "auto"}')
    assert (await api.request("PATCH", path, data=bad_rule)).status == 400
    unknown = aiohttp.FormData()
    unknown.add_field("file", b"x", filename="x.txt")
    reply = await api.request("PATCH", f"/v1/datasets/{dataset_id}/documents/{SOME}", data=unknown)
    assert (reply.status, reply.json["message"]) == (404, "Document not found")
    busy_id, _ = sim.add_document(dataset_id, "busy.txt", "Beta.")
    busy = aiohttp.FormData()
    busy.add_field("file", b"x", filename="x.txt")
    reply = await api.request("PATCH", f"/v1/datasets/{dataset_id}/documents/{busy_id}", data=busy)
    assert reply.json["message"] == "Document is not available"


async def test_unknown_dataset_and_disabled_api_come_first(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    for method, path in (
        ("POST", f"/v1/datasets/{SOME}/documents/{SOME}/update-by-text"),
        ("PATCH", f"/v1/datasets/{SOME}/documents/{SOME}"),
        ("PATCH", f"/v1/datasets/{SOME}/documents/status/enable"),
        ("GET", f"/v1/datasets/{SOME}/metadata"),
        ("DELETE", f"/v1/datasets/{SOME}/metadata/{SOME}"),
        ("GET", f"/v1/datasets/{SOME}/metadata/built-in"),
        ("POST", f"/v1/datasets/{SOME}/metadata/built-in/enable"),
        ("POST", f"/v1/datasets/{SOME}/documents/metadata"),
        ("GET", f"/v1/datasets/{SOME}/documents/{SOME}/segments"),
        ("GET", f"/v1/datasets/{SOME}/documents/{SOME}/segments/{SOME}"),
    ):
        reply = await api.request(method, path)
        assert (reply.status, reply.json["message"]) == (404, "Dataset not found."), path
    sim.set_api_enabled(dataset_id, False)
    reply = await api.get(f"/v1/datasets/{dataset_id}/metadata")
    assert reply.status == 403


async def test_metadata_values_with_unknown_fields_and_renames_to_taken_names(
    sim: DifySimulator, clock: ManualClock, api: Api, dataset_id: str
) -> None:
    document_id = _ready(sim, clock, dataset_id, "a.txt", "Alpha.")
    base = f"/v1/datasets/{dataset_id}"
    first = (await api.post(f"{base}/metadata", json={"type": "string", "name": "a"})).json
    await api.post(f"{base}/metadata", json={"type": "number", "name": "b"})
    taken = await api.request("PATCH", f"{base}/metadata/{first['id']}", json={"name": "b"})
    assert taken.json["message"] == "Metadata name already exists."
    same = await api.request("PATCH", f"{base}/metadata/{first['id']}", json={"name": "a"})
    assert same.status == 200
    operation = {
        "document_id": document_id,
        "metadata_list": [
            {"id": SOME, "name": "ghost", "value": 1},
            {"id": first["id"], "value": "x"},
        ],
    }
    reply = await api.post(f"{base}/documents/metadata", json={"operation_data": [operation]})
    assert reply.status == 200
    only = (await api.get(f"{base}/documents/{document_id}?metadata=only")).json
    assert [e["name"] for e in only["doc_metadata"] if e["id"] != "built-in"] == ["a"]
    unknown = {
        "logical_operator": "or",
        "conditions": [
            {"name": "a", "comparison_operator": "empty"},
            {"name": "a", "comparison_operator": "start with", "value": "x"},
        ],
    }
    assert await _retrieve(api, dataset_id, "alpha", metadata_filtering_conditions=unknown) == [
        "Alpha."
    ]


@pytest.mark.parametrize(
    ("name", "operator", "value", "found"),
    [
        ("t", "is not", "x", False),
        ("t", "not contains", "y", True),
        ("t", "end with", "x", True),
        ("t", "in", ["x", "z"], True),
        ("t", "not in", "x,z", False),
        ("t", "not empty", None, True),
        ("n", "≠", 3, True),
        ("n", "<", 2, False),
        ("n", "≤", 2, True),
        ("n", "≥", "not a number", False),
        ("n", "before", 5, True),
        ("n", "after", 5, False),
    ],
)
async def test_filter_operators(
    sim: DifySimulator,
    clock: ManualClock,
    api: Api,
    dataset_id: str,
    name: str,
    operator: str,
    value: Any,
    found: bool,
) -> None:
    document_id = _ready(sim, clock, dataset_id, "a.txt", "Alpha.")
    base = f"/v1/datasets/{dataset_id}"
    text = (await api.post(f"{base}/metadata", json={"type": "string", "name": "t"})).json
    number = (await api.post(f"{base}/metadata", json={"type": "number", "name": "n"})).json
    values = [{"id": text["id"], "value": "x"}, {"id": number["id"], "value": 2}]
    operation = {"document_id": document_id, "metadata_list": values}
    await api.post(f"{base}/documents/metadata", json={"operation_data": [operation]})
    condition: dict[str, Any] = {"name": name, "comparison_operator": operator}
    if value is not None:
        condition["value"] = value
    conditions = {"logical_operator": "and", "conditions": [condition]}
    hits = await _retrieve(api, dataset_id, "alpha", metadata_filtering_conditions=conditions)
    assert bool(hits) is found
