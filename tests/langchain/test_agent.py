"""A LangGraph agent whose retriever tool meets uploads that are not indexed in time.

The agent is the classic LangGraph loop (a chat model node, a ``ToolNode``, and
``tools_condition`` between them); the model is scripted (it calls the search tool once,
then answers with what the tool said). The search tool is LangChain's own
``create_retriever_tool`` over `DifyRetriever`, whose gate waits on an upload that stalls.
``ToolNode`` re-raises any exception that is not a tool-call validation error, so a gate
that raised would end the whole agent run: the gate must answer instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langgraph")

from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import create_retriever_tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient, IndexingTimeoutError
from dify_ingest_tools.langchain import DifyDocumentUploader, DifyRetriever
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from .conftest import QUICK

POLICY = "Refund policy: a full refund is possible within 30 days of purchase."


class ScriptedChatModel(GenericFakeChatModel):
    """Replays scripted replies; binding tools is a no-op (the script knows the tools)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self


def script(conversation: list[BaseMessage]) -> Iterator[AIMessage]:
    yield AIMessage(
        "",
        tool_calls=[{"name": "search_policies", "args": {"query": "refund"}, "id": "call-1"}],
    )
    # The tool's answer is the last message the graph gave the model.
    yield AIMessage(f"The knowledge base says: {conversation[-1].content}")


def build_agent(retriever: DifyRetriever, conversation: list[BaseMessage]) -> Any:
    tool = create_retriever_tool(retriever, "search_policies", "Search the company policies.")
    # No token streaming: the fake model cannot stream a reply that only calls a tool.
    model = ScriptedChatModel(messages=script(conversation), disable_streaming=True).bind_tools(
        [tool]
    )

    def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
        conversation[:] = state["messages"]
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    return graph.compile()


def upload_a_stalling_document(client: DifyKnowledgeClient, sim: DifySimulator, ds: str) -> str:
    sim.script("new-policy.md", DocumentScript(stall_at="indexing"))
    [created] = DifyDocumentUploader(client=client, dataset_id=ds).invoke(
        Document(page_content="Refunds for new items.", metadata={"source": "new-policy.md"})
    )
    return created.batch


def test_an_agent_survives_a_retriever_gate_that_times_out(
    sim: DifySimulator,
    clock: ManualClock,
    dataset_id: str,
    sync_client: DifyKnowledgeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.add_document(dataset_id, "policy.md", POLICY)
    clock.advance(10)
    batch = upload_a_stalling_document(sync_client, sim, dataset_id)
    retriever = DifyRetriever(
        client=sync_client, dataset_id=dataset_id, pending_timeout=0.2, **QUICK
    )
    conversation: list[BaseMessage] = []
    agent = build_agent(retriever, conversation)

    with caplog.at_level(logging.WARNING, logger="dify_ingest_tools"):
        result = agent.invoke({"messages": [HumanMessage("What is the refund policy?")]})

    [tool_message] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert tool_message.status == "success" and POLICY in tool_message.content
    assert result["messages"][-1].content == f"The knowledge base says: {POLICY}"
    assert batch in caplog.text and "may miss their documents" in caplog.text


async def test_an_async_agent_sees_the_partial_results_event(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    sim.add_document(dataset_id, "policy.md", POLICY)
    clock.advance(10)
    sim.script("new-policy.md", DocumentScript(stall_at="waiting"))
    created = await client.create_document_by_text(dataset_id, "new-policy.md", "Refunds.")
    retriever = DifyRetriever(client=client, dataset_id=dataset_id, pending_timeout=0.2, **QUICK)
    agent = build_agent(retriever, [])

    custom: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    async for event in agent.astream_events(
        {"messages": [HumanMessage("What is the refund policy?")]}, version="v2"
    ):
        if event["event"] == "on_custom_event":
            custom.append(event)
        if event["event"] == "on_chain_end" and event["name"] == "LangGraph":
            final = event["data"]["output"]

    partial = [event for event in custom if event["name"] == "dify_indexing_partial_results"]
    assert [event["data"]["batch"] for event in partial] == [created.batch]
    assert any(event["name"] == "dify_indexing_progress" for event in custom)
    assert final["messages"][-1].content == f"The knowledge base says: {POLICY}"


def test_a_gate_asked_to_raise_does_end_the_agent_run(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    # What the default protects against: ToolNode lets the gate's exception end the run.
    upload_a_stalling_document(sync_client, sim, dataset_id)
    retriever = DifyRetriever(
        client=sync_client,
        dataset_id=dataset_id,
        pending_timeout=0.2,
        on_pending_timeout="raise",
        **QUICK,
    )
    agent = build_agent(retriever, [])
    with pytest.raises(IndexingTimeoutError):
        agent.invoke({"messages": [HumanMessage("What is the refund policy?")]})
