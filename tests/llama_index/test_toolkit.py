"""`DifyKnowledgeToolSpec` in a real LlamaIndex ``FunctionAgent`` with a scripted LLM.

The LLM is ``MockFunctionCallingLLM`` replaying the tool calls a model would make; the agent
workflow, the tools and Dify (the simulator over HTTP) are real. The answers must be the
LangChain toolkit's, word for word.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.llms.mock import MockFunctionCallingLLM

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.agent.answers import DifyToolError
from dify_ingest_tools.agent.tool_schemas import TOOL_NAMES
from dify_ingest_tools.llama_index import DifyKnowledgeToolSpec
from dify_ingest_tools.testing import DifySimulator

SECRET = "dataset-CANARY-llama-toolkit-7"
POLICY = "Returns policy: a restocking fee of 10% applies to opened electronics."
QUICK = {"poll_interval": 0.02, "max_poll_interval": 0.05}


# llama-index-workflows inspects the agent with inspect.getmembers, which touches pydantic's
# deprecated attributes (`__fields__`, `model_computed_fields` on an instance, ...): the
# framework's warnings, not this package's.
def framework_warning(test: Any) -> Any:
    for category in ("PydanticDeprecatedSince20", "PydanticDeprecatedSince211"):
        test = pytest.mark.filterwarnings(f"ignore::pydantic.warnings.{category}")(test)
    return test


@pytest.fixture
def served() -> Iterator[tuple[str, str]]:
    sim = DifySimulator(api_key=SECRET, time_scale=0.02)
    dataset_id = sim.create_dataset("agent")
    with sim.serve_in_thread() as url:
        yield url, dataset_id


def scripted(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """Upload, wait for the batch (read from the upload's answer), search, then answer."""
    results = [m for m in messages if m.role == MessageRole.TOOL]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("upload_text", {"name": "returns-policy.md", "text": POLICY}),
        ("wait_for_indexing", {"batch": ""}),
        ("search", {"query": "restocking fee"}),
    ]
    if len(results) < len(steps):
        name, args = steps[len(results)]
        if name == "wait_for_indexing":
            args = {"batch": str(results[0].content).split("batch ")[1].split(".")[0]}
        call = ToolCallBlock(tool_call_id=f"call-{name}", tool_name=name, tool_kwargs=args)
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
    return ChatMessage(role=MessageRole.ASSISTANT, content=f"Found: {results[-1].content}")


async def run_agent(spec: DifyKnowledgeToolSpec) -> tuple[list[ToolCallResult], str]:
    agent = FunctionAgent(
        tools=spec.to_tool_list(), llm=MockFunctionCallingLLM(response_generator=scripted)
    )
    handler = agent.run(user_msg="Add the policy, then: is there a restocking fee?")
    calls = [event async for event in handler.stream_events() if isinstance(event, ToolCallResult)]
    return calls, str(await handler)


def check(calls: list[ToolCallResult], answer: str) -> None:
    assert [call.tool_name for call in calls] == ["upload_text", "wait_for_indexing", "search"]
    assert not any(call.tool_output.is_error for call in calls)
    assert "is READY" in calls[1].tool_output.content
    assert "restocking fee of 10%" in answer and "returns-policy.md" in answer
    assert SECRET not in answer + "".join(str(call.tool_output.content) for call in calls)


@framework_warning
def test_function_agent_uploads_waits_and_searches_on_a_blocking_client(
    served: tuple[str, str],
) -> None:
    url, dataset_id = served
    with DifyKnowledgeClient(SECRET, url) as client:
        spec = DifyKnowledgeToolSpec(client=client, dataset_id=dataset_id, **QUICK)
        calls, answer = asyncio.run(run_agent(spec))
    check(calls, answer)


@framework_warning
async def test_function_agent_does_the_same_on_an_async_client(served: tuple[str, str]) -> None:
    url, dataset_id = served
    async with AsyncDifyKnowledgeClient(SECRET, url) as client:
        spec = DifyKnowledgeToolSpec(client=client, dataset_id=dataset_id, **QUICK)
        calls, answer = await run_agent(spec)
    check(calls, answer)


def test_spec_has_the_five_tools_with_the_tool_sets_schemas(served: tuple[str, str]) -> None:
    url, dataset_id = served
    with DifyKnowledgeClient(SECRET, url) as client:
        spec = DifyKnowledgeToolSpec(client=client, datasets=[dataset_id])
        tools = spec.to_tool_list()
        assert [tool.metadata.name for tool in tools] == list(TOOL_NAMES)
        for tool in tools:
            schema = tool.metadata.get_parameters_dict()
            assert schema["properties"]["dataset_id"]["enum"] == [dataset_id]
        with pytest.raises(DifyToolError, match="not a knowledge base these tools may use"):
            tools[3].call(query="x", dataset_id="7789611a-7d24-4b75-ab16-a005f3cbd9b4")


def test_answers_are_the_langchain_toolkits_word_for_word(served: tuple[str, str]) -> None:
    pytest.importorskip("langchain_core")
    from dify_ingest_tools.langchain import DifyKnowledgeToolkit

    url, dataset_id = served
    with DifyKnowledgeClient(SECRET, url) as client:
        spec = DifyKnowledgeToolSpec(client=client, dataset_id=dataset_id, **QUICK)
        toolkit = DifyKnowledgeToolkit(client=client, dataset_id=dataset_id, **QUICK)
        lc_tools = {tool.name: tool for tool in toolkit.get_tools()}
        # Uploaded by neither, so that both tool sets know the same (nothing) about it.
        batch = client.create_document_by_text(dataset_id, "same.md", "the same words").batch
        client.wait_for_indexing(dataset_id, batch, timeout=30, **QUICK)
        for name, args in [
            ("indexing_status", {"batch": batch}),
            ("wait_for_indexing", {"batch": batch}),
            ("search", {"query": "words"}),
            ("list_documents", {}),
        ]:
            li_answer = getattr(spec, name)(**args)
            lc_answer = lc_tools[f"dify_{name}"].invoke(args)
            assert li_answer == lc_answer, name


def test_replacing_someone_elses_document_is_refused_unless_allow_replace(
    served: tuple[str, str],
) -> None:
    url, dataset_id = served
    with DifyKnowledgeClient(SECRET, url) as client:
        # A person's document (created directly, not through the tools).
        handbook = client.create_document_by_text(dataset_id, "handbook.md", "25 days.")
        spec = DifyKnowledgeToolSpec(client=client, dataset_id=dataset_id, **QUICK)
        [upload] = [tool for tool in spec.to_tool_list() if tool.metadata.name == "upload_text"]
        with pytest.raises(DifyToolError, match="belongs to someone else") as caught:
            upload.call(name="handbook.md", text="30 days.")
        assert "'handbook.md'" in str(caught.value) and handbook.document_id in str(caught.value)
        bold = DifyKnowledgeToolSpec(
            client=client, dataset_id=dataset_id, allow_replace=True, **QUICK
        )
        assert bold.toolset.allow_replace and not spec.toolset.allow_replace
        answer = bold.upload_text(name="handbook.md", text="30 days.", wait_seconds=10)
        assert f"as document {handbook.document_id}" in answer and "is READY" in answer
        [segment] = client.all_segments(dataset_id, handbook.document_id)
        assert segment.content == "30 days."
