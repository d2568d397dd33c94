"""Replays recordings 09-16 (updates, metadata, segments, status actions, deleted batches,
list filters, pause) of a real Dify 1.14.1 against the simulator.

Requests are sent as recorded, with the recorded ids replaced by the ones the simulator made
(learnt from the answers to the recorded creates). Error answers must match exactly; success
answers must have the recorded shape, plus the facts each test names.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from dify_ingest_tools.testing import DifySimulator, ManualClock

from .helpers import Api, Reply
from .test_simulator_recordings import assert_matches, assert_same_shape, recording

RECORDED_DATASET = "8e228850-9336-4f03-a8c9-15a35cb614b2"
KEY = "<VALID_DATASET_API_KEY>"


@dataclass
class Replayer:
    """Sends recorded requests with the ids substituted."""

    sim: DifySimulator
    clock: ManualClock
    api: Api
    dataset_id: str
    ids: dict[str, str] = field(default_factory=dict)

    def _swap(self, text: str) -> str:
        for recorded, ours in self.ids.items():
            text = text.replace(recorded, ours)
        return text

    async def send(self, case: dict[str, Any]) -> Reply:
        request = case["request"]
        path = self._swap(request["path"].replace(RECORDED_DATASET, self.dataset_id))
        kwargs: dict[str, Any] = {}
        if "json" in request:
            kwargs["json"] = json.loads(self._swap(json.dumps(request["json"])))
        if "multipart_files" in request or "multipart_form" in request:
            form = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
            for name, (filename, size, content_type) in request.get("multipart_files", {}).items():
                length = int(re.sub(r"\D", "", size))
                form.add_field(
                    name, b"word " * (length // 5), filename=filename, content_type=content_type
                )
            for name, value in request.get("multipart_form", {}).items():
                form.add_field(name, self._swap(value))
            kwargs["data"] = form
        return await self.api.request(request["method"], path, encoded=True, **kwargs)

    async def created(self, case: dict[str, Any]) -> Reply:
        """Send a recorded create and learn the document id and batch it maps to."""
        reply = await self.send(case)
        assert reply.status == 200, reply.text
        recorded = case["response"]["body"]
        self.ids[recorded["document"]["id"]] = reply.json["document"]["id"]
        self.ids[recorded["batch"]] = reply.json["batch"]
        return reply

    async def check(self, case: dict[str, Any], *, shape: bool = True) -> Reply:
        """Send and compare with the recorded answer.

        Errors must match exactly. Success bodies must carry every recorded key (several
        recordings trimmed list items to a few keys); ``shape=False`` checks status and
        content type only, for bodies whose lists mix value types (``doc_metadata``).
        """
        reply = await self.send(case)
        recorded = case["response"]
        assert reply.status == recorded["status"], reply.text
        assert reply.headers["Content-Type"] == recorded["headers"]["Content-Type"]
        if recorded["status"] >= 400:
            assert_matches(recorded, reply)
        elif shape and isinstance(recorded["body"], dict):
            assert_has_shape(recorded["body"], reply.json)
        return reply

    def done(self, seconds: float = 10.0) -> None:
        self.clock.advance(seconds)


@pytest.fixture
async def replayer(clock: ManualClock) -> AsyncIterator[Replayer]:
    sim = DifySimulator(clock=clock)
    dataset_id = sim.create_dataset("recorded-economy")
    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        yield Replayer(sim, clock, Api(session, base_url, sim.api_key), dataset_id)


def assert_has_shape(recorded: Any, actual: Any, where: str = "$") -> None:
    """Every recorded key is there, with the same JSON type where both are non-null."""
    if isinstance(recorded, dict):
        assert isinstance(actual, dict), where
        assert set(recorded) <= set(actual), f"{where}: missing {set(recorded) - set(actual)}"
        for key, value in recorded.items():
            assert_has_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(actual, list), where
        for index, item in enumerate(actual):
            if recorded:
                assert_has_shape(recorded[0], item, f"{where}[{index}]")
    elif recorded is not None and actual is not None:
        assert type(actual) is type(recorded), f"{where}: {actual!r} vs {recorded!r}"


def words(reply: Reply) -> list[str]:
    return [record["segment"]["document_id"] for record in reply.json["records"]]


# -- 09: update by text ----------------------------------------------------------------------


async def test_09_update_by_text_keeps_id_and_original_batch(replayer: Replayer) -> None:
    case = recording("09_update_by_text_and_poll.json")
    created = await replayer.created(case["create"])
    batch, document_id = created.json["batch"], created.json["document"]["id"]
    replayer.done()
    await replayer.check(case["update_text_without_name"])
    updated = await replayer.check(case["update_by_text"])
    body = updated.json
    assert (body["batch"], body["document"]["id"]) == (batch, document_id)
    document = body["document"]
    assert (document["indexing_status"], document["display_status"]) == ("waiting", "queuing")
    assert document["created_from"] == "web"
    assert document["name"] == case["update_by_text"]["request"]["json"]["name"]
    (first,) = await replayer.api.status(replayer.dataset_id, batch)
    assert (first["completed_segments"], first["total_segments"]) == (0, 0)
    assert first["completed_at"] is None
    replayer.done()
    (last,) = await replayer.api.status(replayer.dataset_id, batch)
    assert last["indexing_status"] == "completed"
    new = await replayer.check(case["retrieve_new_text_word"])
    assert words(new)
    old = await replayer.check(case["retrieve_old_text_word"])
    assert old.json["records"] == []


async def test_09_update_variants_and_refusals(replayer: Replayer) -> None:
    case = recording("09_update_by_text_and_poll.json")
    await replayer.created(case["create"])
    replayer.done()
    await replayer.check(case["update_name_only"])
    renamed = await replayer.check(case["update_name_only_with_process_rule"])
    assert renamed.json["document"]["name"] == "upd-name-only-1796140777.txt"
    replayer.done()
    await replayer.check(case["update_by_text_deprecated_alias"])
    replayer.done()
    await replayer.check(case["update_twice_first"])
    await replayer.check(case["update_twice_second_immediately"])
    await replayer.check(case["update_unknown_document"])
    await replayer.check(case["cleanup_delete"])


async def test_09_update_while_indexing_is_refused(replayer: Replayer) -> None:
    case = recording("09_update_by_text_and_poll.json")
    await replayer.created(case["large_create_for_update_while_indexing"])
    await replayer.check(case["large_update_by_text_while_indexing"])
    await replayer.check(case["large_update_by_text_deprecated_alias_while_indexing"])
    replayer.done()
    after = await replayer.check(case["large_update_by_text_after_completed"])
    (entry,) = await replayer.api.status(replayer.dataset_id, after.json["batch"])
    recorded = case["large_poll_after_update"]["distinct_responses"][0]["response"]["body"]
    assert entry == {**recorded["data"][0], "id": entry["id"]}  # waiting, all null, 0/0


# -- 10: update by file ----------------------------------------------------------------------


async def test_10_update_by_file_routes(replayer: Replayer) -> None:
    case = recording("10_update_by_file_and_poll.json")
    created = await replayer.created(case["create_by_file"])
    batch = created.json["batch"]
    replayer.done()
    patched = await replayer.check(case["patch_with_file"])
    assert patched.json["batch"] == batch
    assert patched.json["document"]["name"] == "upd-file-v2-1796140798.txt"
    replayer.done()
    named = await replayer.check(case["patch_with_file_and_data_name"])
    assert named.json["document"]["name"] == "custom-name-1796140798.txt"
    for name in ("post_update_by_file_hyphen_alias", "post_update_by_file_underscore_alias"):
        replayer.done()
        reply = await replayer.check(case[name])
        assert reply.json["batch"] == batch
    await replayer.check(case["patch_method_on_update_by_file_alias"])
    replayer.done()
    await replayer.check(case["patch_without_file_with_process_rule"])
    replayer.done()
    for name in ("patch_without_file_empty_data", "patch_unsupported_extension"):
        await replayer.check(case[name])
    await replayer.check(case["patch_unknown_document"])
    detail = await replayer.check(case["document_detail_final"])
    assert detail.json["name"] == "upd-file-v5-1796140798.txt"
    await replayer.check(case["cleanup_delete"])


async def test_10_update_by_file_while_indexing_is_refused(replayer: Replayer) -> None:
    case = recording("10_update_by_file_and_poll.json")
    large = recording("09_update_by_text_and_poll.json")["large_create_for_update_while_indexing"]
    await replayer.created(large)
    await replayer.check(case["large_patch_with_file_while_indexing"])
    await replayer.check(case["large_post_update_by_file_while_indexing"])


# -- 12: metadata ----------------------------------------------------------------------------


def custom(entries: list[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
    return [(e["name"], e["type"], e["value"]) for e in entries or () if e["id"] != "built-in"]


async def test_12_metadata_fields_values_and_filters(replayer: Replayer) -> None:
    case = recording("12_document_metadata.json")
    await replayer.check(case["list_fields_initial"])
    for name in ("create_field_source_id", "create_field_priority_number"):
        reply = await replayer.check(case[name])
        replayer.ids[case[name]["response"]["body"]["id"]] = reply.json["id"]
        assert reply.json["name"] == case[name]["response"]["body"]["name"]
    for name in (
        "create_field_duplicate_name",
        "create_field_builtin_name",
        "create_field_bad_type",
    ):
        await replayer.check(case[name])
    listed = await replayer.check(case["list_fields_after_create"])
    assert [f["count"] for f in listed.json["doc_metadata"]] == [0, 0]
    await replayer.created(case["create_document_A"])
    await replayer.created(case["create_document_B"])
    replayer.done()
    await replayer.check(case["set_document_metadata"])
    await replayer.check(case["set_document_metadata_unknown_document"])
    counted = await replayer.check(case["list_fields_after_set"])
    assert counted.json == json.loads(
        replayer._swap(json.dumps(case["list_fields_after_set"]["response"]["body"]))
    )
    detail = await replayer.check(case["document_A_detail"], shape=False)
    expected = case["document_A_detail"]["response"]["body"]["doc_metadata"]
    assert custom(detail.json["doc_metadata"]) == custom(expected)
    assert [e["name"] for e in detail.json["doc_metadata"]] == [e["name"] for e in expected]
    only = await replayer.check(case["document_A_detail_metadata_only"], shape=False)
    assert custom(only.json["doc_metadata"]) == custom(expected)
    await replayer.check(case["document_A_detail_metadata_without"])
    listing = await replayer.check(case["document_list"], shape=False)
    recorded_items = case["document_list"]["response"]["body"]["data"]
    assert [custom(i["doc_metadata"]) for i in listing.json["data"]] == [
        custom(i["doc_metadata"]) for i in recorded_items
    ]  # numbers come back as strings in list items
    a_id = replayer.ids["b51f609c-4bbb-4313-9228-e005a2c9e0a0"]
    both = await replayer.check(case["retrieve_no_filter"])
    assert len(set(words(both))) == 2
    for name, expected_ids in (
        ("retrieve_filter_source_id_is_src_A", {a_id}),
        ("retrieve_filter_source_id_is_unknown", set()),
        ("retrieve_filter_source_id_contains_src", set(words(both))),
        ("retrieve_filter_priority_gt_1", {a_id}),
        ("retrieve_filter_unknown_field_name", set()),
    ):
        reply = await replayer.check(case[name])
        assert set(words(reply)) == expected_ids, name
    await replayer.check(case["retrieve_filter_invalid_operator"])
    await replayer.check(case["set_document_metadata_partial_update_B"])
    partial = await replayer.check(case["document_B_metadata_only_after_partial"], shape=False)
    assert custom(partial.json["doc_metadata"]) == [
        ("source_id", "string", "src-B"),
        ("priority", "number", 2),
    ]
    await replayer.check(case["set_document_metadata_full_replace_B"])
    full = case["document_B_metadata_only_after_full_replace"]
    replaced = await replayer.check(full, shape=False)
    assert custom(replaced.json["doc_metadata"]) == [("priority", "number", 3)]
    builtin = await replayer.check(case["built_in_fields"])
    assert builtin.json == case["built_in_fields"]["response"]["body"]
    await replayer.check(case["built_in_enable"])
    enabled = await replayer.check(case["list_fields_after_builtin_enable"])
    assert enabled.json["built_in_field_enabled"] is True
    by_name = await replayer.check(case["retrieve_filter_builtin_document_name"])
    assert set(words(by_name)) == {replayer.ids["0776c2e5-b6e3-47f5-96ee-e893adfd571d"]}
    await replayer.check(case["built_in_disable"])
    await replayer.check(case["built_in_unknown_action"])
    renamed = await replayer.check(case["rename_field_source_id_to_source_ref"])
    assert renamed.json["name"] == "source_ref"
    after_rename = await replayer.check(case["document_A_metadata_only_after_rename"], shape=False)
    assert custom(after_rename.json["doc_metadata"])[0] == ("source_ref", "string", "src-A")
    for name in ("delete_field_source_ref", "delete_field_priority", "delete_field_again"):
        await replayer.check(case[name])
    gone = await replayer.check(case["document_A_metadata_only_after_field_delete"])
    assert gone.json["doc_metadata"] is None
    final = await replayer.check(case["list_fields_final"])
    assert final.json == {"doc_metadata": [], "built_in_field_enabled": False}


# -- 13: segments ----------------------------------------------------------------------------

SEGMENT_TEXT = "\n\n".join(
    f"Paragraph {i}. " + ("Lynxsegment here. " if i in (1, 4) else "") + "alpha beta " * 20
    for i in range(6)
)


async def test_13_segments(replayer: Replayer) -> None:
    case = recording("13_segments.json")
    create = json.loads(json.dumps(case["create"]))
    create["request"]["json"]["text"] = SEGMENT_TEXT
    await replayer.created(create)
    replayer.done()
    listed = await replayer.check(case["list_default"])
    assert_same_shape(case["list_default"]["response"]["body"], listed.json)  # recorded whole
    total = listed.json["total"]
    assert total == len(listed.json["data"]) == 6
    assert [item["position"] for item in listed.json["data"]] == list(range(1, 7))
    page = await replayer.check(case["list_page1_limit2"])
    assert (len(page.json["data"]), page.json["has_more"], page.json["total"]) == (2, True, 6)
    page3 = await replayer.check(case["list_page3_limit2"])
    assert page3.json["has_more"] is True  # len(data) == limit, even on the last page
    for name in ("list_keyword", "list_keyword_uppercase"):
        reply = await replayer.check(case[name])
        assert [item["position"] for item in reply.json["data"]] == [2, 5]
    await replayer.check(case["list_keyword_no_match"])
    one = await replayer.check(case["list_status_completed_limit1"])
    assert one.json["total"] == 6
    await replayer.check(case["list_status_indexing"])
    await replayer.check(case["list_status_repeated_param"])
    await replayer.check(case["list_status_unknown_value"])
    segment_id = listed.json["data"][0]["id"]
    replayer.ids[case["list_default"]["response"]["body"]["data"][0]["id"]] = segment_id
    single = await replayer.check(case["get_one_segment"])
    assert_same_shape(case["get_one_segment"]["response"]["body"], single.json)
    assert single.json["data"]["id"] == segment_id
    for name in ("get_unknown_segment", "list_unknown_document", "cleanup_delete"):
        await replayer.check(case[name])
    await replayer.check(case["list_after_document_deleted"])


async def test_13_segments_while_splitting_and_indexing(replayer: Replayer) -> None:
    case = recording("13_segments.json")
    document_id, _ = replayer.sim.add_document(replayer.dataset_id, "big.txt", SEGMENT_TEXT)
    path = f"/v1/datasets/{replayer.dataset_id}/documents/{document_id}/segments"
    replayer.clock.advance(0.5)  # parsing done, splitting under way
    splitting = await replayer.api.get(path)
    recorded = case["large_segments_while_splitting"]["response"]["body"]["data"][0]
    for item in splitting.json["data"]:
        assert (item["status"], item["enabled"]) == (recorded["status"], recorded["enabled"])
    replayer.clock.advance(0.35)  # indexing, nothing committed yet
    indexing = await replayer.api.get(path + "?status=indexing")
    assert indexing.json["total"] == 6
    assert {item["enabled"] for item in indexing.json["data"]} == {False}
    replayer.done()
    completed = await replayer.api.get(path)
    assert {(i["status"], i["enabled"]) for i in completed.json["data"]} == {("completed", True)}


# -- 14: enable / disable / archive ----------------------------------------------------------


async def test_14_disable_enable(replayer: Replayer) -> None:
    case = recording("14_document_status_actions.json")
    created = await replayer.created(case["create"])
    document_id = created.json["document"]["id"]
    replayer.done()
    before = await replayer.check(case["retrieve_before_disable"])
    assert words(before)
    await replayer.check(case["disable"])
    await replayer.check(case["disable_again_immediately"])
    await replayer.check(case["enable_immediately_after_disable"])
    detail = await replayer.check(case["document_detail_after_disable"])
    assert (detail.json["enabled"], detail.json["display_status"]) == (False, "disabled")
    assert detail.json["disabled_at"] is not None
    # The index follows a moment later: first still found, then gone (recorded the same way).
    retrieve = case["retrieve_after_disable_until_empty"]["distinct_responses"]
    assert words(await replayer.send(retrieve[0]))
    replayer.clock.advance(0.5)
    assert words(await replayer.send(retrieve[-1])) == []
    segments = await replayer.check(case["segments_after_disable"])
    assert segments.json["data"][0]["enabled"] is False
    disabled = await replayer.check(case["list_status_disabled_while_disabled"])
    assert [d["id"] for d in disabled.json["data"]] == [document_id]
    available = await replayer.send(case["list_status_available_while_disabled"])
    assert document_id not in [d["id"] for d in available.json["data"]]
    for name in ("disable_empty_list", "disable_unknown_document_id", "invalid_action"):
        await replayer.check(case[name])
    await replayer.check(case["post_method"])
    await replayer.check(case["enable_retry_every_15s_until_ok"]["distinct_responses"][-1])
    enabled = await replayer.check(case["document_detail_after_enable"])
    assert (enabled.json["enabled"], enabled.json["display_status"]) == (True, "available")
    replayer.clock.advance(0.5)
    found = case["retrieve_after_enable_until_found"]["distinct_responses"][-1]
    assert words(await replayer.send(found))
    await replayer.check(case["cleanup_delete"])


async def test_14_archive(replayer: Replayer) -> None:
    case = recording("14_document_status_actions.json")
    await replayer.created(case["archive_setup_create"])
    replayer.done()
    await replayer.check(case["archive"])
    detail = await replayer.check(case["document_detail_after_archive"])
    assert (detail.json["archived"], detail.json["display_status"]) == (True, "archived")
    replayer.clock.advance(0.5)
    gone = case["retrieve_after_archive_until_empty"]["distinct_responses"][-1]
    assert words(await replayer.send(gone)) == []
    archived = await replayer.check(case["list_status_archived"])
    assert len(archived.json["data"]) == 1
    await replayer.check(case["update_by_text_while_archived"])
    await replayer.check(case["delete_while_archived"])
    await replayer.check(case["un_archive_retry_every_15s_until_ok"]["distinct_responses"][-1])
    restored = await replayer.check(case["document_detail_after_un_archive"])
    assert restored.json["display_status"] == "available"
    replayer.clock.advance(0.5)
    back = case["retrieve_after_un_archive_until_found"]["distinct_responses"][-1]
    assert words(await replayer.send(back))
    await replayer.check(case["cleanup_delete_archive_doc"])


async def test_14_disable_while_indexing(replayer: Replayer) -> None:
    case = recording("14_document_status_actions.json")
    large = recording("09_update_by_text_and_poll.json")["large_create_for_update_while_indexing"]
    created = await replayer.created(large)
    replayer.ids["81e68ca3-2562-4e1d-9df8-48d98fb8e4b2"] = created.json["document"]["id"]
    await replayer.check(case["large_disable_while_splitting"])
    await replayer.check(case["large_enable_while_splitting"])


# -- 15: deleted batch, list fields and filters ----------------------------------------------


async def test_15_batch_after_delete(replayer: Replayer) -> None:
    case = recording("15_batch_after_delete_and_list_fields.json")
    await replayer.created(case["create_small"])
    replayer.done()
    for name in (
        "delete_only_document_of_batch",
        "indexing_status_after_delete",
        "document_detail_after_delete",
        "delete_again",
        "segments_after_delete",
    ):
        await replayer.check(case[name])


async def test_15_list_filters(replayer: Replayer) -> None:
    case = recording("15_batch_after_delete_and_list_fields.json")
    large = recording("09_update_by_text_and_poll.json")["large_create_for_update_while_indexing"]
    await replayer.created(large)
    replayer.clock.advance(0.3)  # parsing
    for name, count in (
        ("list_status_uppercase_INDEXING", 1),
        ("list_status_unknown_value", 1),
        ("list_keyword_match", 1),
        ("list_keyword_uppercase", 0),
        ("list_keyword_percent_sign", 1),
        ("list_keyword_and_status", 1),
    ):
        reply = await replayer.check(case[name])
        assert len(reply.json["data"]) == count, name
    assert_same_shape(
        case["list_no_filter_while_indexing"]["response"]["body"]["data"][0],
        (await replayer.send(case["list_no_filter_while_indexing"])).json["data"][0],
    )


# -- 16: paused documents --------------------------------------------------------------------


async def test_16_paused_document_is_not_available(replayer: Replayer) -> None:
    case = recording("16_console_pause_resume_fast.json")
    created = await replayer.created(case["create"])
    replayer.clock.advance(0.3)
    replayer.sim.pause(created.json["document"]["id"])
    detail = await replayer.send(case["document_detail_while_paused"])
    assert detail.json["display_status"] == "paused"
    paused = await replayer.check(case["list_status_paused"])
    assert len(paused.json["data"]) == 1
    await replayer.check(case["list_status_indexing_while_paused"])
    await replayer.check(case["update_by_text_while_paused"])
