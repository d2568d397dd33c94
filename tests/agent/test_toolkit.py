"""The framework-free tool set against the simulator over real HTTP: the answers an agent reads."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyDocumentConflictError
from dify_ingest_tools.agent.answers import DifyToolError
from dify_ingest_tools.agent.tool_ownership import TOOLSET_OWNER
from dify_ingest_tools.agent.tool_schemas import TOOL_NAMES
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.models.ownership import OWNER_FIELD
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock
from tests.conftest import FAST, QUICK

OTHER_DATASET = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
SECRET = "dataset-CANARY-toolkit-0123456789"


def toolset(**options: Any) -> DifyToolset:
    return DifyToolset(**{**QUICK, "not_found_grace": 0.0, **options})


def test_definitions_name_five_tools_with_schemas_and_descriptions() -> None:
    tools = DifyToolset(dataset_id=OTHER_DATASET).definitions("dify_")
    assert [tool.base_name for tool in tools] == list(TOOL_NAMES)
    assert [tool.name for tool in tools] == [f"dify_{name}" for name in TOOL_NAMES]
    for tool in tools:
        schema = tool.args_model.model_json_schema()
        assert "dataset_id" not in schema["properties"]  # bound: the model never passes it
        assert schema["additionalProperties"] is False
        assert all(prop.get("description") for prop in schema["properties"].values())
        assert len(tool.description) > 80
    assert "dify_wait_for_indexing" in tools[0].description  # siblings named as rendered


def test_an_allow_list_becomes_an_enum_and_other_datasets_are_refused() -> None:
    allowed = "eb1167b3-67a9-4378-bc65-c1e582e2e662"
    tools = DifyToolset(datasets=[allowed])
    schema = tools.definition("search").args_model.model_json_schema()
    assert schema["properties"]["dataset_id"]["enum"] == [allowed]
    assert "dataset_id" in schema["required"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dataset_id": "not-a-uuid"}, "UUID"),
        ({"datasets": []}, "datasets is empty"),
        ({"dataset_id": OTHER_DATASET, "datasets": [OTHER_DATASET]}, "not both"),
        ({"max_wait_seconds": 0}, "max_wait_seconds"),
        ({"top_k": 20}, "top_k"),
        ({"hit_chars": 10}, "hit_chars"),
    ],
)
def test_toolset_refuses_bad_configuration(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DifyToolset(**options)


async def test_upload_then_status_then_wait_then_search_find_the_new_text(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    tools = toolset(dataset_id=dataset_id)
    text = "Returns policy: a restocking fee of 10% applies to opened electronics."
    upload = await tools.run(client, "upload_text", {"name": "returns.md", "text": text})
    assert upload.outcome == "uploaded"
    batch = upload.artifact.batch
    assert f"batch {batch}" in upload.text and "not searchable until" in upload.text
    assert upload.data["document_id"] == upload.artifact.document_id

    status = await tools.run(client, "indexing_status", {"batch": batch})
    assert status.data["batch"] == batch
    wait = await tools.run(client, "wait_for_indexing", {"batch": batch, "timeout_seconds": 30})
    assert wait.outcome == "ready"
    assert "is READY" in wait.text and wait.artifact.is_completed
    found = await tools.run(client, "search", {"query": "restocking fee"})
    assert found.outcome == "found"
    assert "returns.md" in found.text and "restocking fee of 10%" in found.text
    assert found.data["hits"][0]["document_name"] == "returns.md"


async def test_search_waits_for_the_toolsets_own_pending_uploads_first(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    tools = toolset(dataset_id=dataset_id)
    await tools.run(client, "upload_text", {"name": "fresh.md", "text": "zebra crossing rules"})
    found = await tools.run(client, "search", {"query": "zebra"})
    assert found.outcome == "found", found.text  # not searchable before the wait ended
    assert found.data["still_indexing"] == []


async def test_search_says_which_upload_is_still_indexing_when_its_wait_runs_out(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.script("stuck.md", DocumentScript(stall_at="indexing"))
    tools = toolset(dataset_id=dataset_id, search_wait_seconds=0.2)
    upload = await tools.run(client, "upload_text", {"name": "stuck.md", "text": "giraffe"})
    found = await tools.run(client, "search", {"query": "giraffe"})
    assert found.data["still_indexing"] == [upload.artifact.batch]
    assert f"batch {upload.artifact.batch}" in found.text and "still indexing" in found.text


async def test_search_cuts_long_passages_to_the_budget(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.add_document(dataset_id, "long.md", "budget " + "word " * 2000)
    clock.advance(600)  # indexed
    tools = toolset(dataset_id=dataset_id, hit_chars=100, answer_chars=400)
    found = await tools.run(client, "search", {"query": "budget"})
    hit = found.data["hits"][0]
    assert hit["truncated"] is True and len(hit["content"]) <= 100
    assert hit["content"].endswith("[…]")
    assert len(found.artifact[0].content) > 400  # the artifact keeps the whole segment


async def test_wait_is_capped_and_a_timeout_is_an_answer(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.script("slow.md", DocumentScript(stall_at="splitting"))
    tools = toolset(dataset_id=dataset_id, max_wait_seconds=0.3)
    upload = await tools.run(client, "upload_text", {"name": "slow.md", "text": "slow"})
    batch = upload.artifact.batch
    wait = await tools.run(client, "wait_for_indexing", {"batch": batch, "timeout_seconds": 900})
    assert wait.outcome == "timeout"
    assert "Still indexing after 0.3 s" in wait.text
    assert "(This tool waits at most 0.3 s per call.)" in wait.text


async def test_a_failed_document_is_an_answer_with_difys_error(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    sim.script("broken.md", DocumentScript(fail_at="parsing", error="Bad file, sorry."))
    tools = toolset(dataset_id=dataset_id)
    upload = await tools.run(
        client, "upload_text", {"name": "broken.md", "text": "x", "wait_seconds": 10}
    )
    assert upload.outcome == "failed"
    assert "FAILED" in upload.text and "Bad file, sorry." in upload.text
    assert upload.data["documents"][0]["error"] == "Bad file, sorry."


async def test_a_paused_document_is_answered_at_once(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    sim.script("paused.md", DocumentScript(pause_at="indexing"))
    tools = toolset(dataset_id=dataset_id)
    upload = await tools.run(client, "upload_text", {"name": "paused.md", "text": "p"})
    wait = await tools.run(client, "wait_for_indexing", {"batch": upload.artifact.batch})
    assert wait.outcome == "paused"
    assert "PAUSED" in wait.text and "console" in wait.text


async def test_an_unknown_batch_is_an_answer_not_an_error(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    tools = toolset(dataset_id=dataset_id)
    for name in ("indexing_status", "wait_for_indexing"):
        result = await tools.run(client, name, {"batch": "20990101000000000000"})
        assert result.outcome == "not_found"
        assert "Dify does not know batch 20990101000000000000" in result.text


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("search", {"query": "   "}, "query: must contain some text"),
        ("search", {"query": "x" * 251}, "query: String should have at most 250"),
        ("upload_text", {"name": "a", "text": "b", "colour": "red"}, "colour: Extra inputs"),
        ("indexing_status", {"batch": "../etc"}, "Invalid argument: batch"),
        ("list_documents", {"page": 0}, "page: Input should be greater than or equal to 1"),
        ("delete_everything", {}, "There is no tool 'delete_everything'"),
    ],
)
async def test_arguments_a_model_must_fix_are_tool_errors(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    name: str,
    arguments: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(DifyToolError, match=message):
        await toolset(dataset_id=dataset_id).run(client, name, arguments)


async def test_a_dataset_outside_the_allow_list_is_refused_before_any_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    tools = toolset(datasets=[dataset_id])
    sim.clear_requests()
    with pytest.raises(DifyToolError, match="not a knowledge base these tools may use"):
        await tools.run(client, "search", {"dataset_id": OTHER_DATASET, "query": "q"})
    assert sim.requests == []
    listed = await tools.run(client, "list_documents", {"dataset_id": dataset_id.upper()})
    assert listed.data["dataset_id"] == dataset_id  # normalised to the allowed spelling


async def test_a_rejected_key_is_a_tool_error_that_never_shows_the_key(
    sim: DifySimulator, base_url: str, dataset_id: str
) -> None:
    async with AsyncDifyKnowledgeClient(SECRET, base_url, **FAST) as client:
        with pytest.raises(DifyToolError) as caught:
            await toolset(dataset_id=dataset_id).run(client, "search", {"query": "q"})
    assert "rejected the API key" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_list_documents_shows_names_statuses_and_known_batches(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    sim.add_document(dataset_id, "seeded.md", "from elsewhere")
    tools = toolset(dataset_id=dataset_id)
    upload = await tools.run(client, "upload_text", {"name": "mine.md", "text": "mine"})
    listed = await tools.run(client, "list_documents", {})
    assert listed.outcome == "listed"
    assert f"- mine.md (id {upload.artifact.document_id}): " in listed.text
    assert f"batch {upload.artifact.batch}" in listed.text
    assert "- seeded.md (id " in listed.text
    assert listed.data["total"] == 2
    empty = await tools.run(client, "list_documents", {"keyword": "nothing-like-this"})
    assert empty.outcome == "empty"


# -- replacing: the tools replace only what they uploaded ---------------------------------------


async def _foreign(client: AsyncDifyKnowledgeClient, dataset_id: str, name: str) -> str:
    """A document a person uploaded (the console's way: created directly, with a field)."""
    created = await client.create_document_by_text(dataset_id, name, "Holidays: 25 days.")
    await client.set_document_metadata(dataset_id, created.document_id, {"team": "people"})
    return created.document_id


async def _state(
    client: AsyncDifyKnowledgeClient, dataset_id: str, document_id: str
) -> tuple[str, dict[str, Any]]:
    segments = await client.all_segments(dataset_id, document_id)
    entries = await client.get_document_metadata(dataset_id, document_id)
    text = "\n".join(segment.content for segment in segments)
    return text, {e.name: e.typed_value for e in entries if not e.is_built_in}


async def test_upload_text_refuses_to_replace_a_document_the_tools_did_not_create(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    handbook = await _foreign(client, dataset_id, "team-handbook.md")
    await client.wait_for_documents(dataset_id, [handbook], **QUICK)
    before = await _state(client, dataset_id, handbook)
    sim.clear_requests()
    tools = toolset(dataset_id=dataset_id)
    with pytest.raises(DifyToolError) as caught:
        await tools.run(client, "upload_text", {"name": "team-handbook.md", "text": "Mine."})
    text = str(caught.value)
    assert "'team-handbook.md'" in text and handbook in text
    assert "belongs to someone else" in text and "another name" in text
    assert caught.value.answer.outcome == "invalid" and caught.value.answer.is_error
    conflict = caught.value.error
    assert isinstance(conflict, DifyDocumentConflictError)
    assert (conflict.document_id, conflict.name) == (handbook, "team-handbook.md")
    assert [r.method for r in sim.requests] == ["GET"]  # one list page, no write
    assert await _state(client, dataset_id, handbook) == before
    # The schema tells the model so before it tries.
    name = tools.definition("upload_text").args_model.model_json_schema()["properties"]["name"]
    assert "someone else created is not replaced" in name["description"]


async def test_upload_text_replaces_its_own_uploads_from_any_tool_set(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    first = await toolset(dataset_id=dataset_id).run(
        client, "upload_text", {"name": "notes.md", "text": "First.", "wait_seconds": 10}
    )
    entries = await client.get_document_metadata(dataset_id, first.artifact.document_id)
    assert {e.name: e.value for e in entries if not e.is_built_in} == {OWNER_FIELD: TOOLSET_OWNER}
    # Another tool set (another process: it remembers nothing) sees the owner tag in Dify.
    again = await toolset(dataset_id=dataset_id).run(
        client, "upload_text", {"name": "notes.md", "text": "Second.", "wait_seconds": 10}
    )
    assert again.outcome == "ready" and again.artifact.document_id == first.artifact.document_id
    text, _ = await _state(client, dataset_id, first.artifact.document_id)
    assert text == "Second."


async def test_allow_replace_lets_upload_text_replace_someone_elses_document(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    handbook = await _foreign(client, dataset_id, "team-handbook.md")
    await client.wait_for_documents(dataset_id, [handbook], **QUICK)
    tools = toolset(dataset_id=dataset_id, allow_replace=True)
    name = tools.definition("upload_text").args_model.model_json_schema()["properties"]["name"]
    assert "replaces that document" in name["description"]
    upload = await tools.run(
        client,
        "upload_text",
        {"name": "team-handbook.md", "text": "Holidays: 30 days.", "wait_seconds": 10},
    )
    assert upload.outcome == "ready" and upload.artifact.document_id == handbook
    text, metadata = await _state(client, dataset_id, handbook)
    # Replaced, and tagged as the tools' own; the person's field is kept (a partial update).
    assert text == "Holidays: 30 days."
    assert metadata == {"team": "people", OWNER_FIELD: TOOLSET_OWNER}


async def test_a_store_document_is_someone_elses_to_the_tools(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    created = await client.create_document_by_text(dataset_id, "kb-entry", "Written by a store.")
    await client.set_document_metadata(
        dataset_id, created.document_id, {"lc_id": "kb-entry", OWNER_FIELD: "docs-folder"}
    )
    with pytest.raises(DifyToolError, match="belongs to someone else"):
        await toolset(dataset_id=dataset_id).run(
            client, "upload_text", {"name": "kb-entry", "text": "Mine."}
        )
    assert len(sim.requests_for(route="create_by_text")) == 1  # the store's own create only


def test_importing_the_package_imports_no_agent_framework_nor_mcp() -> None:
    code = (
        "import sys, dify_ingest_tools, dify_ingest_tools.agent.toolkit\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('langchain', 'langchain_core', 'langgraph', 'llama_index', 'mcp', 'starlette')]\n"
        "print(bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
