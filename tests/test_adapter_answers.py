"""LangChain and LlamaIndex tools say the same thing, word for word, for the same batch.

Each scenario is set up once on the simulator (over real HTTP) and asked of both frameworks'
tools the way their agents ask: a LangChain ``ToolCall`` (whose error answers arrive as an
error ``ToolMessage``) and a LlamaIndex ``FunctionTool`` call (whose errors arrive as the
raised exception's message, which LlamaIndex agents hand to the model).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from langchain_core.messages import ToolCall
from langchain_core.tools import BaseTool
from llama_index.core.tools import FunctionTool

from dify_ingest_tools import DifyKnowledgeClient
from dify_ingest_tools.langchain import DifyIndexingStatusTool, DifyWaitForIndexingTool
from dify_ingest_tools.llama_index import DifyIndexingToolSpec
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from .conftest import FAST, QUICK

PDF_ERROR = "Failed to load document (PDFium: Data format error)."


@dataclass(frozen=True)
class Said:
    """What a model reads from one tool call, and whether the call was an error."""

    text: str
    is_error: bool


@dataclass
class Tools:
    langchain: dict[str, BaseTool]
    llama_index: dict[str, FunctionTool]

    def both(self, tool: str, **args: Any) -> tuple[Said, Said]:
        """Ask ``status`` or ``wait`` of each framework's tool with the same arguments."""
        name = {"status": "dify_indexing_status", "wait": "dify_wait_for_indexing"}[tool]
        message = self.langchain[tool].invoke(
            ToolCall(name=name, args=args, id="call-1", type="tool_call")
        )
        langchain = Said(message.content, message.status == "error")
        try:
            output = self.llama_index[tool].call(**args)
        except Exception as error:  # what a LlamaIndex agent shows the model: the message
            llama_index = Said(str(error), True)
        else:
            llama_index = Said(output.content, output.is_error)
        return langchain, llama_index


def _tools(client: DifyKnowledgeClient, dataset_id: str, *, cap: float = 30) -> Tools:
    """Both frameworks' tools, bound to the dataset, with the same cap and poll settings."""
    spec = DifyIndexingToolSpec(
        client=client, dataset_id=dataset_id, max_timeout_seconds=cap, **QUICK
    )
    by_name = {tool.metadata.get_name(): tool for tool in spec.to_tool_list()}
    return Tools(
        langchain={
            "status": DifyIndexingStatusTool(client=client, dataset_id=dataset_id),
            "wait": DifyWaitForIndexingTool(
                client=client, dataset_id=dataset_id, max_timeout_seconds=cap, **QUICK
            ),
        },
        llama_index={
            "status": by_name["get_indexing_status"],
            "wait": by_name["wait_for_indexing"],
        },
    )


@pytest.fixture
def tools(sync_client: DifyKnowledgeClient, dataset_id: str) -> Tools:
    return _tools(sync_client, dataset_id)


def _same(pair: tuple[Said, Said]) -> Said:
    langchain, llama_index = pair
    assert langchain == llama_index
    return langchain


def test_a_ready_batch(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, tools: Tools
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds\n\nreturns")
    clock.advance(60)
    said = _same(tools.both("status", batch=batch))
    assert not said.is_error and said.text.startswith(f"Batch {batch} of dataset {dataset_id}")
    assert "is READY: 1 of 1 document(s) completed (1 completed); 2/2 segments" in said.text
    assert _same(tools.both("wait", batch=batch, timeout_seconds=5)) == said


def test_a_working_batch(sim: DifySimulator, dataset_id: str, tools: Tools) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds")
    said = _same(tools.both("status", batch=batch))
    assert not said.is_error and "is NOT READY yet, still indexing" in said.text


def test_a_failed_batch(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, tools: Tools
) -> None:
    script = DocumentScript(fail_at="splitting", error=PDF_ERROR)
    document_id, batch = sim.add_document(dataset_id, "broken.pdf", "x", script=script)
    clock.advance(60)
    said = _same(tools.both("status", batch=batch))
    assert not said.is_error and "FAILED" in said.text
    assert f"Document {document_id} failed: {PDF_ERROR} Fix or replace" in said.text
    assert ".." not in said.text
    assert _same(tools.both("wait", batch=batch, timeout_seconds=5)) == said


def test_a_paused_batch_ends_both_waits_at_once(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, tools: Tools
) -> None:
    _, batch = sim.add_document(
        dataset_id, "paused.txt", "text", script=DocumentScript(pause_at="indexing")
    )
    clock.advance(60)
    started = time.monotonic()
    said = _same(tools.both("wait", batch=batch, timeout_seconds=30))
    # Both tools answered at once, not after their 30 s: a paused document never finishes.
    assert time.monotonic() - started < 10
    assert not said.is_error and "is PAUSED" in said.text and "Dify's console" in said.text
    assert _same(tools.both("status", batch=batch)) == said


def test_a_wait_that_runs_out_of_time(
    sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(
        dataset_id, "slow.txt", "text", script=DocumentScript(stall_at="indexing")
    )
    clock.advance(60)
    tools = _tools(sync_client, dataset_id, cap=0.2)
    said = _same(tools.both("wait", batch=batch, timeout_seconds=60))
    assert not said.is_error
    assert said.text.startswith(f"Still indexing after 0.2 s: batch {batch} of dataset")
    assert said.text.endswith("(This tool waits at most 0.2 s per call.)")


def test_an_unknown_batch(sim: DifySimulator, threaded_url: str, tools: Tools) -> None:
    said = _same(tools.both("status", batch="20250101000000000000"))
    assert said.is_error and said.text.startswith("Dify error (HTTP 404, code 'not_found'):")
    assert "Dify does not know batch 20250101000000000000" in said.text
    assert threaded_url not in said.text and "127.0.0.1" not in said.text


@pytest.fixture
def wrong_key_client(threaded_url: str) -> Iterator[DifyKnowledgeClient]:
    with DifyKnowledgeClient("dataset-wrong-key-0123456789abcdef", threaded_url, **FAST) as c:
        yield c


def test_a_rejected_key(
    sim: DifySimulator, threaded_url: str, wrong_key_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    tools = _tools(wrong_key_client, dataset_id)
    batch = "20250101000000000000"
    for said in (
        _same(tools.both("status", batch=batch)),
        _same(tools.both("wait", batch=batch, timeout_seconds=5)),
    ):
        assert said.is_error and "HTTP 401" in said.text and "DIFY_API_KEY" in said.text
        assert "dataset-wrong-key" not in said.text and threaded_url not in said.text
