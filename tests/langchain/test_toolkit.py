"""`DifyKnowledgeToolkit` in a real LangChain agent loop (``create_agent``), sync and async.

The chat model is scripted (it decides nothing: each turn replays the tool call a model would
make, reading the batch from the previous tool message); everything else, the agent loop,
the tools and Dify (the simulator over HTTP), is real.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")
pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.langchain import (
    DifyIndexingStatusTool,
    DifyKnowledgeToolkit,
    DifyListDocumentsTool,
    DifySearchTool,
    DifyUploadTextTool,
    DifyWaitForIndexingTool,
)
from dify_ingest_tools.testing import DifySimulator

from .conftest import QUICK, Seeded

SECRET = "dataset-CANARY-langchain-toolkit-42"
POLICY = "Returns policy: a restocking fee of 10% applies to opened electronics."
OFFLINE = {"api_key": "dataset-unit-test-key", "base_url": "http://127.0.0.1:9/v1"}
SOME_DATASET = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"

Script = Callable[[Sequence[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """A tool-calling chat model whose every reply comes from ``script(messages)``."""

    script: Script

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
        return self  # the script already knows the tools

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.script(messages))])


def call(tool: str, /, **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": tool, "args": args, "id": f"call-{tool}"}])


def upload_wait_search(messages: Sequence[BaseMessage]) -> AIMessage:
    """What a model would do: upload, wait for the batch, search, answer from the hit."""
    results = [m for m in messages if isinstance(m, ToolMessage)]
    if not results:
        return call("dify_upload_text", name="returns-policy.md", text=POLICY)
    if len(results) == 1:
        return call("dify_wait_for_indexing", batch=results[0].artifact.batch, timeout_seconds=30)
    if len(results) == 2:
        return call("dify_search", query="restocking fee")
    return AIMessage(f"From the knowledge base: {results[-1].content}")


def tool_messages(state: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in state["messages"] if isinstance(m, ToolMessage)]


def check_the_job(state: dict[str, Any]) -> None:
    upload, wait, search = tool_messages(state)
    assert upload.status == wait.status == search.status == "success"
    assert "is READY" in wait.content
    assert "restocking fee of 10%" in search.content and "returns-policy.md" in search.content
    assert "restocking fee of 10%" in state["messages"][-1].content
    assert SECRET not in str(state)


@pytest.fixture
def served() -> Any:
    """A simulator on the real clock, fast enough (a document indexes in ~0.1 s)."""
    sim = DifySimulator(api_key=SECRET, time_scale=0.02)
    dataset_id = sim.create_dataset("agent")
    with sim.serve_in_thread() as url:
        yield sim, url, dataset_id


def test_agent_uploads_waits_and_searches_with_the_toolkit(served: Any) -> None:
    _, url, dataset_id = served
    with DifyKnowledgeClient(SECRET, url) as client:
        toolkit = DifyKnowledgeToolkit(client=client, dataset_id=dataset_id, **QUICK)
        agent = create_agent(ScriptedChatModel(script=upload_wait_search), toolkit.get_tools())
        state = agent.invoke({"messages": [HumanMessage("Add the policy, then: restocking fee?")]})
    check_the_job(state)


async def test_agent_runs_the_same_job_async(served: Any) -> None:
    _, url, dataset_id = served
    async with AsyncDifyKnowledgeClient(SECRET, url) as client:
        toolkit = DifyKnowledgeToolkit(client=client, datasets=[dataset_id], **QUICK)

        def with_dataset(messages: Sequence[BaseMessage]) -> AIMessage:
            reply = upload_wait_search(messages)
            for tool_call in reply.tool_calls:
                tool_call["args"]["dataset_id"] = dataset_id
            return reply

        agent = create_agent(ScriptedChatModel(script=with_dataset), toolkit.get_tools())
        state = await agent.ainvoke({"messages": [HumanMessage("Add it, then search it.")]})
    check_the_job(state)


async def test_mistakes_come_back_as_error_messages_and_the_loop_goes_on(served: Any) -> None:
    _, url, dataset_id = served

    def confused(messages: Sequence[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        steps = [
            call("dify_search", dataset_id=SOME_DATASET, query="x"),  # not allowed
            call("dify_indexing_status", dataset_id=SOME_DATASET, batch="1"),  # not allowed
            call("dify_upload_text", dataset_id=dataset_id, name="  ", text="t"),  # blank name
            call("dify_wait_for_indexing", dataset_id=dataset_id, batch="20990101000000000000"),
        ]
        if len(results) < len(steps):
            return steps[len(results)]
        return AIMessage("done")

    async with AsyncDifyKnowledgeClient(SECRET, url) as client:
        toolkit = DifyKnowledgeToolkit(client=client, datasets=[dataset_id], **QUICK)
        agent = create_agent(ScriptedChatModel(script=confused), toolkit.get_tools())
        state = await agent.ainvoke({"messages": [HumanMessage("go")]})
    search, status, upload, wait = tool_messages(state)
    assert search.status == status.status == upload.status == "error"
    assert "not a knowledge base these tools may use" in search.content
    assert "not a knowledge base these tools may use" in status.content
    assert "name: must contain some text" in upload.content
    assert "Dify does not know batch 20990101000000000000" in wait.content
    assert state["messages"][-1].content == "done"


def test_toolkit_gives_five_tools_with_the_prefixed_names() -> None:
    toolkit = DifyKnowledgeToolkit(**OFFLINE, dataset_id=SOME_DATASET)
    tools = toolkit.get_tools()
    assert [tool.name for tool in tools] == [
        "dify_upload_text",
        "dify_indexing_status",
        "dify_wait_for_indexing",
        "dify_search",
        "dify_list_documents",
    ]
    assert isinstance(tools[1], DifyIndexingStatusTool)
    assert isinstance(tools[2], DifyWaitForIndexingTool)
    assert all(tool.response_format == "content_and_artifact" for tool in tools)
    assert all("dataset_id" not in tool.args for tool in tools)
    assert {id(tool.toolset) for tool in tools if hasattr(tool, "toolset")} == {id(toolkit.toolset)}
    assert "dataset-unit-test-key" not in repr(toolkit) + str(toolkit.model_dump())


def test_replacing_someone_elses_document_is_an_error_message_unless_allow_replace(
    served: Any,
) -> None:
    sim, url, dataset_id = served
    with DifyKnowledgeClient(SECRET, url) as client:
        handbook = client.create_document_by_text(dataset_id, "handbook.md", "25 days.")
        client.wait_for_documents(dataset_id, [handbook], **QUICK)
        tool_call = {
            "name": "dify_upload_text",
            "args": {"name": "handbook.md", "text": "30 days."},
            "id": "call-1",
            "type": "tool_call",
        }
        default = DifyKnowledgeToolkit(client=client, dataset_id=dataset_id, **QUICK)
        refused = default.get_tools()[0].invoke(tool_call)
        assert isinstance(refused, ToolMessage) and refused.status == "error"
        assert "'handbook.md'" in refused.content and "belongs to someone else" in refused.content
        assert len(sim.requests_for(route="create_by_text")) == 1  # the person's own upload
        bold = DifyKnowledgeToolkit(
            client=client, dataset_id=dataset_id, allow_replace=True, **QUICK
        )
        assert bold.toolset.allow_replace and not default.toolset.allow_replace
        replaced = bold.get_tools()[0].invoke(tool_call)
        assert replaced.status == "success"
        assert f"as document {handbook.document_id}" in replaced.content


# -- the langchain-tests standard suites for the new tools ----------------------------------------

_TOOLS: list[tuple[type[BaseTool], dict[str, Any]]] = [
    (DifyUploadTextTool, {"name": "standard.md", "text": "standard tests text"}),
    (DifySearchTool, {"query": "refund"}),
    (DifyListDocumentsTool, {}),
]


class _Unit(ToolsUnitTests):
    tool_class: ClassVar[type[BaseTool]]
    example: ClassVar[dict[str, Any]]

    @property
    def tool_constructor(self) -> type[BaseTool]:
        return self.tool_class

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**OFFLINE, "dataset_id": SOME_DATASET}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return self.example


class TestUploadToolUnit(_Unit):
    tool_class, example = _TOOLS[0]


class TestSearchToolUnit(_Unit):
    tool_class, example = _TOOLS[1]


class TestListDocumentsToolUnit(_Unit):
    tool_class, example = _TOOLS[2]


class _Integration(ToolsIntegrationTests):
    tool_class: ClassVar[type[BaseTool]]
    example: ClassVar[dict[str, Any]]
    seeded: ClassVar[Seeded]

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _on_simulator(cls, seeded: Seeded) -> None:
        cls.seeded = seeded

    @property
    def tool_constructor(self) -> type[BaseTool]:
        return self.tool_class

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {
            "api_key": self.seeded.sim.api_key,
            "base_url": self.seeded.base_url,
            "dataset_id": self.seeded.dataset_id,
        }

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return self.example


class TestUploadToolIntegration(_Integration):
    tool_class, example = _TOOLS[0]


class TestSearchToolIntegration(_Integration):
    tool_class, example = _TOOLS[1]


class TestListDocumentsToolIntegration(_Integration):
    tool_class, example = _TOOLS[2]
