"""DifyIndexingToolSpec: to_tool_list(), each tool called sync and async, answers and errors."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.tools import FunctionTool, ToolOutput
from llama_index.core.tools.calling import acall_tool, call_tool

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAuthenticationError,
    DifyKnowledgeClient,
)
from dify_ingest_tools.llama_index import DifyIndexingToolSpec, DifyToolError
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from .conftest import QUICK

MODES = ["sync", "async"]


async def invoke(tool: FunctionTool, mode: str, **kwargs: Any) -> str:
    """One test body for both entry points: ``tool.call`` and ``await tool.acall``."""
    output = tool.call(**kwargs) if mode == "sync" else await tool.acall(**kwargs)
    assert isinstance(output, ToolOutput) and not output.is_error
    return output.content


def tools_of(spec: DifyIndexingToolSpec) -> dict[str, FunctionTool]:
    return {tool.metadata.get_name(): tool for tool in spec.to_tool_list()}


@pytest.mark.parametrize("mode", MODES)
async def test_each_tool_answers_sync_and_async(
    mode: str, sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient
) -> None:
    dataset_id = sim.create_dataset("tools")
    created = sync_client.create_document_by_text(dataset_id, "a.txt", "alpha\n\nbeta")
    tools = tools_of(DifyIndexingToolSpec(client=sync_client, **QUICK))
    assert sorted(tools) == ["get_indexing_status", "wait_for_indexing"]
    args = {"dataset_id": dataset_id, "batch": created.batch}

    before = await invoke(tools["get_indexing_status"], mode, **args)
    assert "is NOT READY yet" in before and created.batch in before

    clock.advance(60)
    ready = await invoke(tools["wait_for_indexing"], mode, **args, timeout_seconds=10)
    assert "is READY" in ready and "2/2 segments indexed" in ready
    after = await invoke(tools["get_indexing_status"], mode, **args)
    assert "is READY" in after
    assert sim.api_key not in before + ready + after


@pytest.mark.parametrize("mode", MODES)
async def test_a_wait_that_runs_out_of_time_is_an_answer(
    mode: str, sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient
) -> None:
    dataset_id = sim.create_dataset("tools")
    sim.script("slow.txt", DocumentScript(stall_at="indexing"))
    created = sync_client.create_document_by_text(dataset_id, "slow.txt", "alpha")
    clock.advance(60)
    spec = DifyIndexingToolSpec(client=sync_client, max_timeout_seconds=0.1, **QUICK)
    wait = tools_of(spec)["wait_for_indexing"]
    # The model asks for an hour; the spec's cap wins.
    answer = await invoke(
        wait, mode, dataset_id=dataset_id, batch=created.batch, timeout_seconds=3600
    )
    assert answer.startswith("Still indexing after 0.1 s") and created.batch in answer
    assert answer.endswith("(This tool waits at most 0.1 s per call.)")


@pytest.mark.parametrize("mode", MODES)
async def test_a_failed_document_and_a_stall_are_answers(
    mode: str, sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient
) -> None:
    dataset_id = sim.create_dataset("tools")
    sim.script("bad.pdf", DocumentScript(fail_at="splitting", error="PDFium: Data format error"))
    sim.script("stuck.txt", DocumentScript(stall_at="parsing"))
    bad = sync_client.create_document_by_text(dataset_id, "bad.pdf", "x")
    stuck = sync_client.create_document_by_text(dataset_id, "stuck.txt", "y")
    clock.advance(60)
    spec = DifyIndexingToolSpec(client=sync_client, stall_timeout=0.05, **QUICK)
    wait = tools_of(spec)["wait_for_indexing"]

    failed = await invoke(wait, mode, dataset_id=dataset_id, batch=bad.batch)
    assert "FAILED" in failed and "PDFium: Data format error" in failed
    assert bad.document_id in failed
    stalled = await invoke(wait, mode, dataset_id=dataset_id, batch=stuck.batch)
    assert stalled.startswith("Indexing appears STALLED") and "parsing" in stalled


@pytest.mark.parametrize("mode", MODES)
async def test_a_pre_bound_dataset_is_hidden_from_the_model(
    mode: str, sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient
) -> None:
    dataset_id = sim.create_dataset("tools")
    created = sync_client.create_document_by_text(dataset_id, "a.txt", "alpha")
    clock.advance(60)
    spec = DifyIndexingToolSpec(client=sync_client, dataset_id=dataset_id, **QUICK)
    tools = tools_of(spec)
    for tool in tools.values():
        schema = tool.metadata.get_parameters_dict()
        assert "dataset_id" not in schema["properties"] and schema["required"] == ["batch"]
        assert "dataset_id" not in tool.metadata.description.splitlines()[0]
        assert dataset_id in tool.metadata.description
    assert (
        "timeout_seconds" in tools["wait_for_indexing"].metadata.get_parameters_dict()["properties"]
    )

    answer = await invoke(tools["wait_for_indexing"], mode, batch=created.batch)
    assert "is READY" in answer
    other = sim.create_dataset("other")
    with pytest.raises(ValueError, match="bound to knowledge base"):
        await invoke(tools["get_indexing_status"], mode, batch=created.batch, dataset_id=other)


def test_unbound_schemas_ask_for_the_dataset_and_say_the_cap(
    sync_client: DifyKnowledgeClient,
) -> None:
    spec = DifyIndexingToolSpec(
        client=sync_client, max_timeout_seconds=120, default_timeout_seconds=500
    )
    tools = tools_of(spec)
    status = tools["get_indexing_status"].metadata
    assert status.get_parameters_dict()["required"] == ["dataset_id", "batch"]
    # The tool set's own words (the status tool keeps its older name here).
    assert status.description == spec.toolset.definition("indexing_status").description
    wait = tools["wait_for_indexing"].metadata
    assert "this tool's limit is 120 s" in wait.description
    props = wait.get_parameters_dict()["properties"]
    # The default is capped too: 500 s asked, 120 s allowed.
    assert props["timeout_seconds"]["default"] == 120
    assert all(props[name]["description"] for name in ("dataset_id", "batch", "timeout_seconds"))


@pytest.mark.parametrize("mode", MODES)
async def test_api_errors_raise_and_agents_get_an_error_output(
    mode: str, sim: DifySimulator, threaded_url: str
) -> None:
    dataset_id = sim.create_dataset("tools")
    wrong_key = "dataset-wrong-key-0123456789abcdef"
    with DifyKnowledgeClient(wrong_key, threaded_url) as client:
        tools = tools_of(DifyIndexingToolSpec(client=client, **QUICK))
        args = {"dataset_id": dataset_id, "batch": "20250101000000000000"}
        for tool in tools.values():
            with pytest.raises(DifyToolError) as raised:
                await invoke(tool, mode, **args)
            assert isinstance(raised.value.__cause__, DifyAuthenticationError)
            assert raised.value.answer.outcome == "error"
            # What an agent does with a raising tool: an error output the model can read,
            # with advice and without the server's URL.
            output = call_tool(tool, args) if mode == "sync" else await acall_tool(tool, args)
            assert output.is_error and "HTTP 401" in output.content
            assert "check the Knowledge API key" in output.content
            assert threaded_url not in output.content and "127.0.0.1" not in output.content
            assert wrong_key not in output.content and sim.api_key not in output.content


async def test_an_unknown_batch_is_an_answer_and_a_malformed_id_an_error(
    sim: DifySimulator, sync_client: DifyKnowledgeClient
) -> None:
    dataset_id = sim.create_dataset("tools")
    status = tools_of(DifyIndexingToolSpec(client=sync_client))["get_indexing_status"]
    output = await status.acall(dataset_id=dataset_id, batch="20250101000000000000")
    assert not output.is_error
    assert "Dify does not know batch 20250101000000000000" in output.content
    with pytest.raises(
        ValueError, match="Invalid arguments: dataset_id: dataset_id must be a UUID"
    ):
        status.call(dataset_id="not-a-uuid", batch="20250101000000000000")


def test_tool_errors_pickle_with_their_answer(threaded_url: str, dataset_id: str) -> None:
    with DifyKnowledgeClient("dataset-wrong-key-0123456789abcdef", threaded_url) as client:
        status = tools_of(DifyIndexingToolSpec(client=client))["get_indexing_status"]
        with pytest.raises(DifyToolError, match="HTTP 401") as raised:
            status.call(dataset_id=dataset_id, batch="20250101000000000000")
    assert isinstance(raised.value.__cause__, DifyAuthenticationError)
    copied = pickle.loads(pickle.dumps(raised.value))
    assert str(copied) == str(raised.value) and copied.answer.outcome == "error"
    assert isinstance(copied.error, DifyAuthenticationError)


async def test_an_async_client_serves_async_tools_and_refuses_blocking_calls(
    sim: DifySimulator, clock: ManualClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    created = await client.create_document_by_text(dataset_id, "a.txt", "alpha")
    clock.advance(60)
    tools = tools_of(DifyIndexingToolSpec(client=client, **QUICK))
    output = await tools["wait_for_indexing"].acall(dataset_id=dataset_id, batch=created.batch)
    assert "is READY" in output.content
    with pytest.raises(TypeError, match="AsyncDifyKnowledgeClient"):
        tools["get_indexing_status"].call(dataset_id=dataset_id, batch=created.batch)


def test_the_key_stays_out_of_the_spec(
    sim: DifySimulator, threaded_url: str, sync_client: DifyKnowledgeClient
) -> None:
    spec = DifyIndexingToolSpec(api_key=sim.api_key, base_url=threaded_url)
    try:
        shown = repr(spec) + "".join(t.metadata.description for t in spec.to_tool_list())
        assert threaded_url in shown and sim.api_key not in shown
    finally:
        spec.close()
    with pytest.raises(ValueError, match="either client"):
        DifyIndexingToolSpec(api_key=sim.api_key, client=sync_client)


def test_the_spec_and_the_retriever_refuse_to_pickle_with_a_clear_message(
    sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    from dify_ingest_tools.llama_index import DifyRetriever

    for component in (
        DifyIndexingToolSpec(client=sync_client),
        DifyRetriever(dataset_id, client=sync_client),
    ):
        with pytest.raises(TypeError, match=r"holds a live Dify client .* cannot be pickled"):
            pickle.dumps(component)


@pytest.mark.parametrize("mode", MODES)
async def test_arguments_the_schema_refuses_are_errors_in_the_tool_sets_words(
    mode: str, sim: DifySimulator, sync_client: DifyKnowledgeClient
) -> None:
    # The schema the model reads says timeout_seconds > 0 and names no other argument: what
    # it refuses is refused before any request, with the words of every other framework.
    dataset_id = sim.create_dataset("tools")
    wait = tools_of(DifyIndexingToolSpec(client=sync_client, **QUICK))["wait_for_indexing"]
    args = {"dataset_id": dataset_id, "batch": "20250101000000000000"}
    with pytest.raises(ValueError, match="Invalid arguments: timeout_seconds: Input should be"):
        await invoke(wait, mode, **args, timeout_seconds=-5)
    with pytest.raises(ValueError, match="Invalid arguments: batch: String should have at most"):
        await invoke(wait, mode, dataset_id=dataset_id, batch="9" * 300)
    assert not sim.requests_for(route="indexing_status")
