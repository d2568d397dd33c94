"""Replays the traffic recorded from a real Dify 1.14.1 against the simulator.

Status codes, content types and error bodies must match exactly; success bodies must have the
same keys at every nesting level (values differ: ids, timestamps). Timing-dependent statuses
are compared by driving a manual clock to the same stage.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from .helpers import RECORDED, Api, Reply, raw_request

VALID = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
DISABLED = "5c2c59f2-f48f-4624-b057-e5523aa16b55"
OTHER = "004bf2fc-c52b-4aec-9ab3-85ec2341766e"
KEY = "<VALID_DATASET_API_KEY>"
# Batches the recordings poll, all pointing at one completed document of their dataset.
VALID_BATCHES = ("20261128152717730162", "20261128153256143202")
DISABLED_BATCH = "20261128153224230139"
DOCUMENT_IN_08 = "e284c01b-ad30-4421-9a59-da74d508cb9e"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TEXT = (
    "Alpha omega retrieval paragraph document keyword.\n\n"
    "Second paragraph with beta gamma.\n\nThird paragraph: alpha only."
)


def recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    return data


@dataclass
class World:
    """A simulator laid out like the recorded server, plus the id substitutions."""

    sim: DifySimulator
    clock: ManualClock
    api: Api
    base_url: str
    substitutions: dict[str, str]

    async def replay(self, case: dict[str, Any]) -> Reply:
        request = case["request"]
        path = request["path"]
        for recorded, ours in self.substitutions.items():
            path = path.replace(recorded, ours)
        headers = {k: v.replace(KEY, self.api.api_key) for k, v in request["headers"].items()}
        auth = headers.pop("Authorization", None)
        if auth == "Bearer ":
            return await raw_request(
                self.base_url, request["method"], path, {"Authorization": auth}
            )
        kwargs: dict[str, Any] = {}
        if "json" in request:
            kwargs["json"] = request["json"]
        if "multipart_files" in request:
            form = aiohttp.FormData()
            for field, (filename, size, content_type) in request["multipart_files"].items():
                form.add_field(
                    field, _content(filename, size), filename=filename, content_type=content_type
                )
            for field, value in request.get("multipart_form", {}).items():
                form.add_field(field, value)
            kwargs["data"] = form
        return await self.api.request(
            request["method"], path, auth=auth, encoded=True, headers=headers, **kwargs
        )

    async def poll_until(self, dataset_id: str, batch: str, seconds: float) -> list[dict[str, Any]]:
        """Every distinct indexing-status entry seen while the clock moves ``seconds``."""
        seen: list[dict[str, Any]] = []
        for _ in range(int(seconds / 0.05) + 1):
            (entry,) = await self.api.status(dataset_id, batch)
            if not seen or entry != seen[-1]:
                seen.append(entry)
            self.clock.advance(0.05)
        return seen


def _content(filename: str, size: str) -> bytes:
    length = int(re.sub(r"\D", "", size))
    # Garbage for binary types, so a .pdf/.docx is as corrupt as in 02a.
    return b"a" * length if filename.endswith(".txt") else b"\x00" * length


@pytest.fixture
async def world(clock: ManualClock) -> AsyncIterator[World]:
    sim = DifySimulator(clock=clock)
    sim.create_dataset("recorded-fixture", dataset_id=VALID)
    sim.create_dataset("other", dataset_id=OTHER)
    sim.create_dataset("api-disabled-fixture", dataset_id=DISABLED)
    done_id, done_batch = sim.add_document(VALID, "small-note.txt", TEXT)
    for index in range(3):
        sim.add_document(VALID, f"note-{index}.txt", TEXT)
    for index in range(2):
        sim.add_document(VALID, f"broken-{index}.pdf", "", script=DocumentScript(fail_at="parsing"))
    _, disabled_batch = sim.add_document(DISABLED, "x.txt", "hello world")
    clock.advance(10)
    sim.set_api_enabled(DISABLED, False)
    substitutions = dict.fromkeys(VALID_BATCHES, done_batch)
    substitutions |= {DISABLED_BATCH: disabled_batch, DOCUMENT_IN_08: done_id}
    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        yield World(sim, clock, Api(session, base_url, sim.api_key), base_url, substitutions)


def assert_same_shape(recorded: Any, actual: Any, where: str = "$") -> None:
    """Same keys at every level; same JSON type wherever both sides are non-null."""
    if isinstance(recorded, dict):
        assert isinstance(actual, dict), where
        assert set(actual) == set(recorded), f"{where}: {set(actual) ^ set(recorded)}"
        for key, value in recorded.items():
            assert_same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(actual, list), where
        for index, item in enumerate(actual):
            if recorded:
                assert_same_shape(recorded[0], item, f"{where}[{index}]")
    elif recorded is not None and actual is not None:
        assert type(actual) is type(recorded), f"{where}: {actual!r} vs {recorded!r}"


def nulls(entry: dict[str, Any]) -> set[str]:
    return {key for key, value in entry.items() if value is None}


def assert_matches(recorded: dict[str, Any], reply: Reply) -> None:
    """Same status, content type, auth/CORS headers, and exact error or same-shape body."""
    assert reply.status == recorded["status"], reply.text
    headers = recorded.get("headers", {})
    if "Content-Type" in headers:
        assert reply.headers["Content-Type"] == headers["Content-Type"]
    if "X-Env" in headers:  # the recording kept every interesting header
        for name in ("WWW-Authenticate", "Access-Control-Allow-Origin"):
            assert (name in reply.headers) == (name in headers), name
        if "WWW-Authenticate" in headers:
            assert reply.headers["WWW-Authenticate"] == headers["WWW-Authenticate"]
    body = recorded["body"]
    if isinstance(body, str):
        assert reply.text == body
    elif recorded["status"] >= 400:
        assert UUID.sub("<uuid>", json.dumps(reply.json)) == UUID.sub("<uuid>", json.dumps(body))
    else:
        assert_same_shape(body, reply.json)


async def test_00_create_dataset(world: World) -> None:
    case = recording("00_create_dataset_economy.json")
    assert_matches(case["response"], await world.replay(case))
    detail = await world.api.get(f"/v1/datasets/{VALID}")
    assert_same_shape(case["response"]["body"], detail.json)


async def test_01a_create_by_text_and_poll(world: World) -> None:
    case = recording("01a_create_by_text_small_and_poll.json")
    created = await world.replay(case["create"])
    assert_matches(case["create"]["response"], created)
    batch = created.json["batch"]
    assert re.fullmatch(r"\d{20}", batch)
    seen = await world.poll_until(VALID, batch, 2.0)
    by_status = {entry["indexing_status"]: entry for entry in seen}
    for poll in case["poll"]["distinct_responses"]:
        (expected,) = poll["response"]["body"]["data"]
        ours = by_status[expected["indexing_status"]]
        assert_same_shape(expected, ours)
        assert nulls(ours) == nulls(expected), expected["indexing_status"]


@pytest.mark.parametrize(
    ("create", "poll"),
    [("create_corrupt_pdf", "poll_corrupt_pdf"), ("create_corrupt_docx", "poll_corrupt_docx")],
)
async def test_02a_corrupt_files_fail_while_parsing(world: World, create: str, poll: str) -> None:
    case = recording("02a_async_indexing_error_corrupt_files.json")
    created = await world.replay(case[create])
    assert_matches(case[create]["response"], created)
    world.clock.advance(1)
    (entry,) = await world.api.status(VALID, created.json["batch"])
    (expected,) = case[poll]["distinct_responses"][-1]["response"]["body"]["data"]
    assert_same_shape(expected, entry)
    assert nulls(entry) == nulls(expected)
    assert (entry["indexing_status"], entry["completed_segments"], entry["total_segments"]) == (
        "error",
        0,
        0,
    )
    if create.endswith("pdf"):
        assert entry["error"] == expected["error"]
    else:
        assert entry["error"].startswith("Package not found at '")
        assert entry["error"].endswith(".docx'")


@pytest.mark.parametrize(
    "name", ["unsupported_extension_exe", "empty_text", "missing_name", "whitespace_only_text"]
)
async def test_02b_synchronous_create_rejections(world: World, name: str) -> None:
    case = recording("02b_synchronous_create_rejections.json")[name]
    assert_matches(case["response"], await world.replay(case))


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("02c_whitespace_only_text_poll.json", "   \n\n  "),
        ("02d_empty_text_status_after_processing.json", ""),
    ],
)
async def test_02c_02d_blank_text_completes_with_zero_segments(
    world: World, file: str, text: str
) -> None:
    case = recording(file)
    final = case["poll"]["distinct_responses"][-1] if "poll" in case else case["status"]
    created = await world.api.create_text(VALID, "blank.txt", text)
    seen = await world.poll_until(VALID, created["batch"], 2.0)
    (expected,) = final["response"]["body"]["data"]
    assert_same_shape(expected, seen[-1])
    assert nulls(seen[-1]) == nulls(expected)
    assert seen[-1]["indexing_status"] == "completed"
    assert (seen[-1]["completed_segments"], seen[-1]["total_segments"]) == (0, 0)


async def test_02c_whitespace_text_replays_create_and_every_recorded_stage(world: World) -> None:
    """The recorded create, then the recorded stages in order, ending completed at 0/0."""
    case = recording("02c_whitespace_only_text_poll.json")
    created = await world.replay(case["create"])
    assert_matches(case["create"]["response"], created)
    document = created.json["document"]
    recorded_document = case["create"]["response"]["body"]["document"]
    for key in ("name", "data_source_type", "doc_form", "summary_index_status", "need_summary"):
        assert document[key] == recorded_document[key], key
    seen = await world.poll_until(VALID, created.json["batch"], 3.0)
    recorded = [p["response"]["body"]["data"][0] for p in case["poll"]["distinct_responses"]]
    ours = [entry["indexing_status"] for entry in seen]
    wanted = [entry["indexing_status"] for entry in recorded]
    assert [status for status in ours if status in wanted] == wanted  # same stages, same order
    for expected in recorded:
        entry = next(e for e in seen if e["indexing_status"] == expected["indexing_status"])
        assert_same_shape(expected, entry)
        assert nulls(entry) == nulls(expected), expected["indexing_status"]
        assert (entry["completed_segments"], entry["total_segments"]) == (0, 0)


async def test_02d_empty_text_status_replays_as_an_empty_batch(world: World) -> None:
    case = recording("02d_empty_text_status_after_processing.json")
    created = await world.api.create_text(VALID, "empty.txt", "")
    world.clock.advance(30)
    recorded_batch = case["status"]["request"]["path"].split("/")[-2]
    world.substitutions[recorded_batch] = created["batch"]
    reply = await world.replay(case["status"])
    assert_matches(case["status"]["response"], reply)
    (entry,) = reply.json["data"]
    (expected,) = case["status"]["response"]["body"]["data"]
    assert nulls(entry) == nulls(expected)
    assert (entry["indexing_status"], entry["completed_segments"], entry["total_segments"]) == (
        expected["indexing_status"],
        expected["completed_segments"],
        expected["total_segments"],
    )


def _cases(file: str) -> list[str]:
    data = recording(file)
    return [name for name, value in data.items() if isinstance(value, dict) and "request" in value]


@pytest.mark.parametrize("name", _cases("03_not_found_cases.json"))
async def test_03_not_found_cases(world: World, name: str) -> None:
    case = recording("03_not_found_cases.json")[name]
    assert_matches(case["response"], await world.replay(case))


@pytest.mark.parametrize("name", _cases("03b_method_and_path_variants.json"))
async def test_03b_method_and_path_variants(world: World, name: str) -> None:
    case = recording("03b_method_and_path_variants.json")[name]
    assert_matches(case["response"], await world.replay(case))


@pytest.mark.parametrize("name", _cases("04_auth_failures.json"))
async def test_04_auth_failures(world: World, name: str) -> None:
    case = recording("04_auth_failures.json")[name]
    assert_matches(case["response"], await world.replay(case))


async def test_04b_dataset_api_access_disabled(world: World) -> None:
    cases = recording("04b_dataset_api_access_disabled.json")
    assert_matches(
        cases["setup_create_dataset"]["response"], await world.replay(cases["setup_create_dataset"])
    )
    for name in (
        "indexing_status_api_disabled",
        "indexing_status_api_disabled_unknown_batch",
        "indexing_status_api_disabled_wrong_key",
        "create_by_text_api_disabled",
    ):
        assert_matches(cases[name]["response"], await world.replay(cases[name]))
    world.sim.set_api_enabled(DISABLED, True)
    reenabled = cases["indexing_status_api_reenabled"]
    assert_matches(reenabled["response"], await world.replay(reenabled))


@pytest.mark.parametrize(
    "name", ["two_parts_different_field_names", "no_file_part", "single_file_ok"]
)
async def test_05_one_file_per_call(world: World, name: str) -> None:
    case = recording("05_multiple_files_per_batch.json")[name]
    assert_matches(case["response"], await world.replay(case))


async def test_05_two_parts_named_file_keep_the_first(world: World) -> None:
    case = recording("05_multiple_files_per_batch.json")["two_parts_same_field_name_file"]
    reply = await world.api.upload(
        VALID,
        [
            ("file", "same1.txt", b"first file of the request", "text/plain"),
            ("file", "same2.txt", b"second file of the request", "text/plain"),
        ],
    )
    assert_matches(case["response"], reply)
    assert reply.json["document"]["name"] == "same1.txt"


@pytest.mark.parametrize(
    "name",
    [
        "retrieve_keyword_search",
        "retrieve_empty_query",
        "retrieve_missing_query",
        "retrieve_unknown_dataset",
    ],
)
async def test_06_retrieve(world: World, name: str) -> None:
    case = recording("06_retrieve.json")[name]
    reply = await world.replay(case)
    assert_matches(case["response"], reply)
    if reply.status == 200:
        assert reply.json["query"] == case["request"]["json"]["query"]
        assert reply.json["records"]
        # The record names no document (every field null), exactly as recorded.
        recorded = [r["segment"]["document"] for r in case["response"]["body"]["records"]]
        actual = [r["segment"]["document"] for r in reply.json["records"]]
        assert actual == recorded[: len(actual)] and len(set(map(str, recorded))) == 1


def _retrieves(file: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, case)
        for name, case in recording(file).items()
        if isinstance(case, dict)
        and case.get("request", {}).get("path", "").endswith("/retrieve")
        and case["response"]["status"] == 200
    ]


@pytest.mark.parametrize("file", ["06_retrieve.json", "12_document_metadata.json"])
async def test_retrieve_records_name_no_document_whatever_it_holds(world: World, file: str) -> None:
    created = await world.api.create_text(VALID, "named.txt", "ocelotmeta kappa theta")
    world.clock.advance(60)
    reply = await world.api.post(
        f"/v1/datasets/{VALID}/retrieve",
        json={
            "query": "ocelotmeta",
            "retrieval_model": {
                "search_method": "keyword_search",
                "reranking_enable": False,
                "score_threshold_enabled": False,
            },
        },
    )
    (record,) = reply.json["records"]
    assert record["segment"]["document_id"] == created["document"]["id"]
    for name, case in _retrieves(file):
        for recorded in case["response"]["body"]["records"]:
            assert record["segment"]["document"] == recorded["segment"]["document"], name
            assert_same_shape(recorded, record, name)


async def test_08_dataset_detail_error(world: World) -> None:
    case = recording("08_dataset_and_document_detail.json")["get_dataset"]
    world.sim.dataset_detail_error = True
    assert_matches(case["response"], await world.replay(case))


@pytest.mark.parametrize(
    "name",
    [
        "list_documents_limit_3",
        "list_documents_status_available",
        "list_documents_status_error",
        "get_document",
        "get_unknown_document",
    ],
)
async def test_08_documents(world: World, name: str) -> None:
    case = recording("08_dataset_and_document_detail.json")[name]
    reply = await world.replay(case)
    assert_matches(case["response"], reply)
    if name.startswith("list"):
        assert reply.json["has_more"] is case["response"]["body"]["has_more"]
        statuses = {item["display_status"] for item in reply.json["data"]}
        expected = {item["display_status"] for item in case["response"]["body"]["data"]}
        assert statuses <= {"available", "error"}
        if "status" in case["request"]["path"]:
            assert statuses == expected


async def test_17_economy_dataset_made_through_the_api_answers_like_dify(world: World) -> None:
    """The stored semantic_search default 400s a bare retrieve; keyword search works."""
    case = recording("17_economy_semantic_default_and_whitespace.json")
    created = await world.replay(case["create_dataset_economy"])
    assert_matches(case["create_dataset_economy"]["response"], created)
    # The create answer shows what is stored, the detail what the dataset can do.
    assert created.json["retrieval_model_dict"]["search_method"] == "semantic_search"
    recorded_id = case["create_dataset_economy"]["response"]["body"]["id"]
    world.substitutions[recorded_id] = created.json["id"]
    detail = await world.replay(case["dataset_detail"])
    assert_matches(case["dataset_detail"]["response"], detail)
    assert detail.json["retrieval_model_dict"]["search_method"] == "keyword_search"
    assert detail.json["embedding_available"] is True
    ocelot = await world.replay(case["create_document"])
    assert_matches(case["create_document"]["response"], ocelot)
    blank = await world.replay(case["create_whitespace_document"])
    assert_matches(case["create_whitespace_document"]["response"], blank)
    world.clock.advance(60)
    for name, created_doc in (("status_document", ocelot), ("status_whitespace_document", blank)):
        world.substitutions[case[name]["request"]["path"].split("/")[-2]] = created_doc.json[
            "batch"
        ]
        reply = await world.replay(case[name])
        assert_matches(case[name]["response"], reply)
        (expected,) = case[name]["response"]["body"]["data"]
        (entry,) = reply.json["data"]
        assert (entry["completed_segments"], entry["total_segments"]) == (
            expected["completed_segments"],
            expected["total_segments"],
        )
    for name in ("retrieve_no_retrieval_model", "retrieve_top_k_only"):
        assert_matches(case[name]["response"], await world.replay(case[name]))
    found = await world.replay(case["retrieve_keyword_search"])
    assert_matches(case["retrieve_keyword_search"]["response"], found)
    (record,) = found.json["records"]
    assert record["segment"]["document_id"] == ocelot.json["document"]["id"]
    listed = await world.replay(case["document_list"])
    assert_matches(case["document_list"]["response"], listed)
    assert [d["name"] for d in listed.json["data"]] == ["blank.txt", "ocelot.txt"]
    assert_matches(case["delete_dataset"]["response"], await world.replay(case["delete_dataset"]))


async def test_06b_vector_searches_on_an_economy_dataset_fail_as_on_dify(world: World) -> None:
    case = recording("06b_retrieve_keyword_variants.json")["retrieve_full_text_search_on_economy"]
    assert_matches(case["response"], await world.replay(case))
