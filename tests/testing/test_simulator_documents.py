"""Datasets and documents over HTTP: create, validate, list, get and delete."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import pytest

from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock
from dify_ingest_tools.testing._routes import HANDLERS
from dify_ingest_tools.testing._text import split_segments

from .helpers import Api

PYDANTIC_URL = "https://errors.pydantic.dev/"


class DocumentTextCreatePayload(pydantic.BaseModel):
    """What Dify 1.14.1 validates create-by-text against (the fields the simulator checks)."""

    name: str
    text: str
    indexing_technique: Literal["high_quality", "economy"] | None


def pydantic_says(data: Any) -> str:
    """The real pydantic message, pinned to the recorded server's pydantic version."""
    with pytest.raises(pydantic.ValidationError) as caught:
        DocumentTextCreatePayload.model_validate(data)
    version = ".".join(pydantic.VERSION.split(".")[:2])
    return str(caught.value).replace(f"{PYDANTIC_URL}{version}/", f"{PYDANTIC_URL}2.12/")


@pytest.mark.parametrize(
    "body",
    [
        {"text": "hello", "indexing_technique": "economy", "process_rule": {"mode": "automatic"}},
        {"name": "a.txt", "text": "hello"},
        {},
        {"name": 1, "text": None, "indexing_technique": "fancy"},
        ["not", "an", "object"],
        {"name": "x" * 80, "text": ["a"], "indexing_technique": 3},
    ],
)
async def test_create_by_text_validation_reads_like_pydantic(
    api: Api, dataset_id: str, body: Any
) -> None:
    reply = await api.post(f"/v1/datasets/{dataset_id}/document/create-by-text", json=body)
    assert reply.status == 400
    assert reply.json == {"code": "invalid_param", "message": pydantic_says(body), "status": 400}


async def test_create_by_text_other_rejections(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    path = f"/v1/datasets/{dataset_id}/document/create-by-text"
    broken = await api.post(path, data=b"{not json", headers={"Content-Type": "application/json"})
    assert (broken.status, broken.json["code"]) == (400, "bad_request")
    bad_form = await api.post(
        path, json={"name": "a", "text": "b", "indexing_technique": "economy", "doc_form": "x"}
    )
    assert (bad_form.status, bad_form.json["message"]) == (400, "Invalid doc_form.")
    bare = sim.create_dataset("bare", indexing_technique=None)
    unset = await api.post(
        f"/v1/datasets/{bare}/document/create-by-text",
        json={"name": "a", "text": "b", "indexing_technique": None},
    )
    assert (unset.status, unset.json["message"]) == (400, "indexing_technique is required.")


async def test_the_first_create_sets_the_dataset_technique(sim: DifySimulator, api: Api) -> None:
    bare = sim.create_dataset("bare", indexing_technique=None)
    await api.create_text(bare, "a.txt", "alpha", indexing_technique="high_quality")
    dataset = (await api.get(f"/v1/datasets/{bare}")).json
    assert dataset["indexing_technique"] == "high_quality"
    created = await api.post(
        f"/v1/datasets/{bare}/document/create_by_text",
        json={"name": "b.txt", "text": "beta", "indexing_technique": None},
    )
    assert created.status == 200


async def test_create_dataset_over_http(api: Api, clock: ManualClock) -> None:
    created = await api.post("/v1/datasets", json={"name": "kb", "indexing_technique": "economy"})
    assert created.status == 200
    dataset = created.json
    assert (dataset["name"], dataset["indexing_technique"], dataset["enable_api"]) == (
        "kb",
        "economy",
        True,
    )
    assert dataset["retrieval_model_dict"]["top_k"] == 2
    duplicate = await api.post("/v1/datasets", json={"name": "kb"})
    assert (duplicate.status, duplicate.json["code"]) == (409, "dataset_name_duplicate")
    missing = await api.post("/v1/datasets", json={})
    assert missing.status == 400
    assert missing.json["message"].startswith("1 validation error for DatasetCreatePayload\nname\n")
    long = await api.post("/v1/datasets", json={"name": "x" * 41, "permission": "everyone"})
    assert long.json["message"].startswith("2 validation errors for DatasetCreatePayload\n")
    assert "String should have at most 40 characters" in long.json["message"]
    assert (
        "Input should be 'only_me', 'all_team_members' or 'partial_members'" in long.json["message"]
    )
    await api.create_text(dataset["id"], "a.txt", "hello world")
    clock.advance(5)
    detail = (await api.get(f"/v1/datasets/{dataset['id']}")).json
    assert (detail["document_count"], detail["total_available_documents"]) == (1, 1)
    assert detail["word_count"] == len("hello world")


async def test_dataset_detail_error_flag(sim: DifySimulator, api: Api, dataset_id: str) -> None:
    sim.dataset_detail_error = True
    reply = await api.get(f"/v1/datasets/{dataset_id}")
    assert reply.status == 400
    assert reply.json["message"].startswith("Failed to request plugin daemon, url: plugin/")
    sim.dataset_detail_error = False
    assert (await api.get(f"/v1/datasets/{dataset_id}")).status == 200


@pytest.fixture
async def shelf(sim: DifySimulator, clock: ManualClock, dataset_id: str) -> dict[str, str]:
    """Five documents: two available, one error, one paused, one queuing (newest last)."""
    ids = {}
    for name in ("alpha.txt", "beta.txt"):
        ids[name] = sim.add_document(dataset_id, name, "text")[0]
    ids["broken.pdf"] = sim.add_document(
        dataset_id, "broken.pdf", "", script=DocumentScript(fail_at="parsing")
    )[0]
    clock.advance(5)
    ids["paused.txt"] = sim.add_document(dataset_id, "paused.txt", "text")[0]
    clock.advance(0.5)
    sim.pause(ids["paused.txt"])
    clock.advance(0.1)
    ids["queued.txt"] = sim.add_document(dataset_id, "queued.txt", "text")[0]
    return ids


async def test_list_is_newest_first_and_paginated(
    api: Api, dataset_id: str, shelf: dict[str, str]
) -> None:
    path = f"/v1/datasets/{dataset_id}/documents"
    everything = (await api.get(path)).json
    assert [d["name"] for d in everything["data"]] == [
        "queued.txt",
        "paused.txt",
        "broken.pdf",
        "beta.txt",
        "alpha.txt",
    ]
    assert (everything["total"], everything["page"], everything["limit"]) == (5, 1, 20)
    assert everything["has_more"] is False
    page2 = (await api.get(path + "?page=2&limit=2")).json
    assert [d["name"] for d in page2["data"]] == ["broken.pdf", "beta.txt"]
    assert page2["has_more"] is True
    # Dify computes has_more as len(items) == limit, so a full last page says True...
    assert (await api.get(path + "?page=1&limit=5")).json["has_more"] is True
    # ...and a limit over the 100-item cap never does.
    assert (await api.get(path + "?limit=500")).json["has_more"] is False
    assert (await api.get(path + "?page=x&limit=y")).json["limit"] == 20


@pytest.mark.parametrize(
    ("status", "names"),
    [
        ("available", ["beta.txt", "alpha.txt"]),
        ("error", ["broken.pdf"]),
        ("paused", ["paused.txt"]),
        ("queuing", ["queued.txt"]),
        ("indexing", []),
        ("bogus", ["queued.txt", "paused.txt", "broken.pdf", "beta.txt", "alpha.txt"]),
    ],
)
async def test_list_filters_on_display_status(
    api: Api, dataset_id: str, shelf: dict[str, str], status: str, names: list[str]
) -> None:
    reply = await api.get(f"/v1/datasets/{dataset_id}/documents?status={status}")
    assert [d["name"] for d in reply.json["data"]] == names


@pytest.mark.parametrize(
    ("keyword", "names"),
    [
        ("bet", ["beta.txt"]),
        ("BET", []),  # case-sensitive, as recorded (15)
        ("%", ["queued.txt", "paused.txt", "broken.pdf", "beta.txt", "alpha.txt"]),
        ("a%a", ["alpha.txt"]),  # LIKE wildcards
        ("_eta", ["beta.txt"]),
        ("\\_eta", []),
        (".txt", ["queued.txt", "paused.txt", "beta.txt", "alpha.txt"]),
    ],
)
async def test_list_filters_on_keyword_like_a_sql_like(
    api: Api, dataset_id: str, shelf: dict[str, str], keyword: str, names: list[str]
) -> None:
    reply = await api.get(f"/v1/datasets/{dataset_id}/documents", params={"keyword": keyword})
    assert [d["name"] for d in reply.json["data"]] == names


async def test_list_status_filter_ignores_case(
    api: Api, dataset_id: str, shelf: dict[str, str]
) -> None:
    reply = await api.get(f"/v1/datasets/{dataset_id}/documents?status=AVAILABLE")
    assert [d["name"] for d in reply.json["data"]] == ["beta.txt", "alpha.txt"]


async def test_get_document(api: Api, dataset_id: str, shelf: dict[str, str]) -> None:
    path = f"/v1/datasets/{dataset_id}/documents/{shelf['alpha.txt']}"
    detail = (await api.get(path)).json
    assert (detail["indexing_status"], detail["display_status"]) == ("completed", "available")
    assert (detail["segment_count"], detail["average_segment_length"]) == (1, 4)
    assert detail["indexing_latency"] == pytest.approx(1.2)
    assert detail["data_source_info"]["upload_file"]["name"] == "alpha.txt"
    assert (await api.get(path + "?metadata=only")).json == {
        "id": shelf["alpha.txt"],
        "doc_type": None,
        "doc_metadata": None,
    }
    without = (await api.get(path + "?metadata=without")).json
    assert "doc_type" not in without
    invalid = await api.get(path + "?metadata=some")
    assert invalid.json == {
        "code": "invalid_metadata",
        "message": "Invalid metadata value: some",
        "status": 400,
    }
    paused = (await api.get(f"/v1/datasets/{dataset_id}/documents/{shelf['paused.txt']}")).json
    assert (paused["indexing_status"], paused["display_status"]) == ("splitting", "paused")


async def test_delete_document(
    sim: DifySimulator, api: Api, dataset_id: str, clock: ManualClock
) -> None:
    created = await api.create_text(dataset_id, "gone.txt", "bye")
    path = f"/v1/datasets/{dataset_id}/documents/{created['document']['id']}"
    deleted = await api.delete(path)
    assert (deleted.status, deleted.text) == (204, "")
    status = await api.get(
        f"/v1/datasets/{dataset_id}/documents/{created['batch']}/indexing-status"
    )
    assert status.json["message"] == "Documents not found."
    assert (await api.get(path)).json["message"] == "Document not found."
    again = await api.delete(path)
    assert (again.status, again.json["message"]) == (404, "Document Not Exists.")
    recreated = await api.create_text(dataset_id, "gone.txt", "back")
    assert recreated["document"]["id"] != created["document"]["id"]
    sim.delete_document(dataset_id, recreated["document"]["id"])
    with pytest.raises(KeyError):
        sim.delete_document(dataset_id, recreated["document"]["id"])


async def test_delete_dataset(api: Api, dataset_id: str) -> None:
    created = await api.create_text(dataset_id, "a.txt", "alpha")
    deleted = await api.delete(f"/v1/datasets/{dataset_id}")
    assert (deleted.status, deleted.text) == (204, "")
    status = await api.get(
        f"/v1/datasets/{dataset_id}/documents/{created['batch']}/indexing-status"
    )
    assert (status.status, status.json["message"]) == (404, "Dataset not found.")
    again = await api.delete(f"/v1/datasets/{dataset_id}")
    assert again.json["message"] == "Dataset not found."


async def test_deleting_a_batch_member_lets_the_next_one_run(
    sim: DifySimulator, api: Api, dataset_id: str, clock: ManualClock
) -> None:
    first, batch = sim.add_document(
        dataset_id, "a.txt", "a", script=DocumentScript(stall_at="splitting")
    )
    second, _ = sim.add_document(dataset_id, "b.txt", "b", batch=batch)
    clock.advance(5)
    entries = {e["id"]: e["indexing_status"] for e in await api.status(dataset_id, batch)}
    assert entries == {first: "splitting", second: "parsing"}
    sim.delete_document(dataset_id, first)
    clock.advance(5)
    assert [e["indexing_status"] for e in await api.status(dataset_id, batch)] == ["completed"]


def test_facade_argument_errors(sim: DifySimulator) -> None:
    with pytest.raises(ValueError, match="UUID"):
        sim.create_dataset(dataset_id="nope")
    dataset_id = sim.create_dataset(dataset_id="7789611A-7D24-4B75-AB16-A005F3CBD9B4")
    assert dataset_id == "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
    with pytest.raises(ValueError, match="already exists"):
        sim.create_dataset(dataset_id=dataset_id)
    with pytest.raises(ValueError, match="batch"):
        sim.add_document(dataset_id, "a.txt", "a", batch="123")
    with pytest.raises(KeyError):
        sim.add_document("00000000-0000-4000-8000-000000000000", "a.txt", "a")
    with pytest.raises(KeyError):
        sim.set_api_enabled("00000000-0000-4000-8000-000000000000", True)
    with pytest.raises(ValueError, match="API key"):
        DifySimulator([])
    with pytest.raises(ValueError, match="time_scale"):
        DifySimulator(time_scale=-1)
    assert DifySimulator(["k1", "k2"]).api_key == "k1"
    with pytest.raises(LookupError):
        _ = DifySimulator().dataset_id


def test_long_paragraphs_are_cut_at_word_boundaries() -> None:
    words = " ".join(f"word{i:03d}" for i in range(200))  # 1599 characters, 62 per segment
    segments = split_segments(f"{words}\n\n{'x' * 1200}\n\n   \n\nshort")
    assert [len(s) for s in segments] == [495, 495, 495, 111, 500, 500, 200, 5]
    assert " ".join(segments[:4]) == words
    assert split_segments("one two three", count=5) == ["", "one", "", "two", "three"]
    assert split_segments("  \n\n ") == []


async def test_custom_process_rules_are_reported_back(
    api: Api, clock: ManualClock, dataset_id: str
) -> None:
    rule = {
        "mode": "custom",
        "rules": {
            "pre_processing_rules": [{"id": "remove_extra_spaces", "enabled": True}],
            "segmentation": {"separator": "\n\n", "max_tokens": 200},
        },
    }
    created = await api.create_text(dataset_id, "c.txt", "custom", process_rule=rule)
    detail = (
        await api.get(f"/v1/datasets/{dataset_id}/documents/{created['document']['id']}")
    ).json
    stored = detail["dataset_process_rule"]
    assert stored["mode"] == "custom"
    assert stored["rules"]["segmentation"] == {
        "separator": "\n\n",
        "max_tokens": 200,
        "chunk_overlap": 0,
    }
    assert (stored["rules"]["parent_mode"], stored["rules"]["subchunk_segmentation"]) == (
        None,
        None,
    )
    assert detail["document_process_rule"]["dataset_id"] == dataset_id


async def test_a_simulator_bug_answers_like_difys_generic_500(
    api: Api, dataset_id: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setitem(HANDLERS, "list_documents", broken)
    reply = await api.get(f"/v1/datasets/{dataset_id}/documents")
    assert (reply.status, reply.json) == (
        500,
        {"message": "Internal Server Error", "code": "unknown", "status": 500},
    )
    assert "Dify simulator failed" in caplog.text
