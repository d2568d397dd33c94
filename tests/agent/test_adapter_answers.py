"""Every tool surface says the same thing, word for word, with the same error flag.

Each scenario is set up once on the simulator (over real HTTP) and asked of every surface
that checks or waits for a batch, the way its agents ask:

* LangChain: `DifyIndexingStatusTool` / `DifyWaitForIndexingTool` built alone, and the same
  tools as `DifyKnowledgeToolkit` hands them out, each through a ``ToolCall`` (``invoke``
  and ``ainvoke``); an error is an error ``ToolMessage``;
* LlamaIndex: `DifyIndexingToolSpec` and `DifyKnowledgeToolSpec`, through ``call_tool`` /
  ``acall_tool`` (what LlamaIndex agents run); an error is an ``is_error`` output carrying
  the raised `DifyToolError`'s message;
* MCP: the server of ``dify-ingest mcp`` in memory, driven by the official client; an error
  is an ``isError`` result.

What an agent can act on (ready, working, failed, paused, stalled, a timeout, an unknown
batch or dataset) is an answer; what only the user can fix (a rejected key, a rate limit,
Dify unreachable) is a tool error.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")
pytest.importorskip("mcp.server.mcpserver")

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from llama_index.core.tools import FunctionTool, ToolOutput
from llama_index.core.tools.calling import acall_tool, call_tool
from mcp import Client

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.langchain import (
    DifyIndexingStatusTool,
    DifyKnowledgeToolkit,
    DifyWaitForIndexingTool,
)
from dify_ingest_tools.llama_index import DifyIndexingToolSpec, DifyKnowledgeToolSpec
from dify_ingest_tools.mcp_server import build_server
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault, ManualClock
from tests.conftest import FAST, QUICK

PDF_ERROR = "Failed to load document (PDFium: Data format error)."
BATCH = "20250101000000000000"
UNKNOWN_DATASET = "00000000-0000-4000-8000-000000000000"
WRONG_KEY = "dataset-wrong-key-0123456789abcdef"


@dataclass(frozen=True)
class Said:
    """What a model reads from one tool call, and whether the call was an error."""

    text: str
    is_error: bool


Ask = Callable[[str, dict[str, Any]], Awaitable[Said]]
"""Ask one surface's ``"status"`` or ``"wait"`` tool, with the model's arguments."""


def _langchain(tools: dict[str, BaseTool], blocking: bool) -> Ask:
    async def ask(kind: str, args: dict[str, Any]) -> Said:
        tool = tools[kind]
        call = ToolCall(name=tool.name, args=args, id="call-1", type="tool_call")
        if blocking:
            message = await asyncio.to_thread(tool.invoke, call)
        else:
            message = await tool.ainvoke(call)
        assert isinstance(message, ToolMessage)
        return Said(str(message.content), message.status == "error")

    return ask


def _llama_index(tools: dict[str, FunctionTool], blocking: bool) -> Ask:
    async def ask(kind: str, args: dict[str, Any]) -> Said:
        tool = tools[kind]
        if blocking:
            output = await asyncio.to_thread(call_tool, tool, args)
        else:
            output = await acall_tool(tool, args)
        assert isinstance(output, ToolOutput)
        # An agent shows the model "Encountered error: " + the exception's message.
        return Said(str(output.raw_output), output.is_error)

    return ask


def _mcp(client: Client) -> Ask:
    names = {"status": "indexing_status", "wait": "wait_for_indexing"}

    async def ask(kind: str, args: dict[str, Any]) -> Said:
        result = await client.call_tool(names[kind], args)
        text = "\n".join(block.text for block in result.content if block.type == "text")
        return Said(text, bool(result.is_error))

    return ask


@asynccontextmanager
async def surfaces(
    api_key: str,
    base_url: str,
    dataset_id: str,
    *,
    cap: float = 30.0,
    stall_timeout: float | None = None,
) -> AsyncIterator[dict[str, Ask]]:
    """Every surface, bound to ``dataset_id``, with the same cap and wait settings."""
    waits: dict[str, Any] = {**QUICK, "stall_timeout": stall_timeout, "not_found_grace": 0.0}
    with DifyKnowledgeClient(api_key, base_url, **FAST) as blocking:
        async with AsyncDifyKnowledgeClient(api_key, base_url, **FAST) as native:
            alone: dict[str, BaseTool] = {
                "status": DifyIndexingStatusTool(client=blocking, dataset_id=dataset_id),
                "wait": DifyWaitForIndexingTool(
                    client=blocking, dataset_id=dataset_id, max_timeout_seconds=cap, **waits
                ),
            }
            toolkit = DifyKnowledgeToolkit(
                client=blocking, dataset_id=dataset_id, max_wait_seconds=cap, **waits
            )
            kit = {tool.name: tool for tool in toolkit.get_tools()}
            in_kit = {"status": kit["dify_indexing_status"], "wait": kit["dify_wait_for_indexing"]}
            spec = DifyIndexingToolSpec(
                client=blocking, dataset_id=dataset_id, max_timeout_seconds=cap, **waits
            )
            by_name = {tool.metadata.get_name(): tool for tool in spec.to_tool_list()}
            spec_tools = {
                "status": by_name["get_indexing_status"],
                "wait": by_name["wait_for_indexing"],
            }
            knowledge = DifyKnowledgeToolSpec(
                client=blocking, dataset_id=dataset_id, max_wait_seconds=cap, **waits
            )
            by_name = {tool.metadata.get_name(): tool for tool in knowledge.to_tool_list()}
            knowledge_tools = {
                "status": by_name["indexing_status"],
                "wait": by_name["wait_for_indexing"],
            }
            toolset = DifyToolset(dataset_id=dataset_id, max_wait_seconds=cap, **waits)
            async with Client(build_server(toolset, native)) as mcp:
                yield {
                    "langchain tools, invoke": _langchain(alone, True),
                    "langchain tools, ainvoke": _langchain(alone, False),
                    "langchain toolkit, invoke": _langchain(in_kit, True),
                    "langchain toolkit, ainvoke": _langchain(in_kit, False),
                    "DifyIndexingToolSpec, call": _llama_index(spec_tools, True),
                    "DifyIndexingToolSpec, acall": _llama_index(spec_tools, False),
                    "DifyKnowledgeToolSpec, call": _llama_index(knowledge_tools, True),
                    "DifyKnowledgeToolSpec, acall": _llama_index(knowledge_tools, False),
                    "mcp": _mcp(mcp),
                }


async def said_by_all(asks: dict[str, Ask], kind: str, **args: Any) -> Said:
    """What every surface says; they must all say the same."""
    said = {name: await ask(kind, args) for name, ask in asks.items()}
    first = next(iter(said.values()))
    differing = {name: value for name, value in said.items() if value != first}
    assert not differing, f"{first}\ndiffers from\n{differing}"
    return first


def assert_clean(said: Said, *secrets: str) -> None:
    """No key and no server address in what the model reads."""
    for secret in (*secrets, "127.0.0.1", "http://"):
        assert secret not in said.text


# -- batches Dify reports ------------------------------------------------------------------------


async def test_a_ready_batch(
    sim: DifySimulator, clock: ManualClock, threaded_url: str, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds\n\nreturns")
    clock.advance(60)
    async with surfaces(sim.api_key, threaded_url, dataset_id) as asks:
        said = await said_by_all(asks, "status", batch=batch)
        assert not said.is_error
        assert said.text.startswith(f"Batch {batch} of dataset {dataset_id} is READY: 1 of 1")
        assert "(1 completed); 2/2 segments indexed" in said.text
        assert await said_by_all(asks, "wait", batch=batch, timeout_seconds=5) == said
    assert_clean(said, sim.api_key)


async def test_a_working_batch(sim: DifySimulator, threaded_url: str, dataset_id: str) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds")
    async with surfaces(sim.api_key, threaded_url, dataset_id) as asks:
        said = await said_by_all(asks, "status", batch=batch)
    assert not said.is_error and "is NOT READY yet, still indexing" in said.text


async def test_a_failed_batch(
    sim: DifySimulator, clock: ManualClock, threaded_url: str, dataset_id: str
) -> None:
    script = DocumentScript(fail_at="splitting", error=PDF_ERROR)
    document_id, batch = sim.add_document(dataset_id, "broken.pdf", "x", script=script)
    clock.advance(60)
    async with surfaces(sim.api_key, threaded_url, dataset_id) as asks:
        said = await said_by_all(asks, "status", batch=batch)
        assert not said.is_error and "FAILED" in said.text
        assert f"Document {document_id} failed: {PDF_ERROR} Fix or replace" in said.text
        assert ".." not in said.text
        assert await said_by_all(asks, "wait", batch=batch, timeout_seconds=5) == said


@pytest.mark.parametrize("text", ["", "   \n\n  "], ids=["empty", "whitespace"])
async def test_an_empty_batch_is_indexed_but_nothing_will_be_found(
    sim: DifySimulator, clock: ManualClock, threaded_url: str, dataset_id: str, text: str
) -> None:
    document_id, batch = sim.add_document(dataset_id, "blank.txt", text)  # 02c, 02d
    clock.advance(60)
    async with surfaces(sim.api_key, threaded_url, dataset_id) as asks:
        said = await said_by_all(asks, "status", batch=batch)
        assert not said.is_error
        assert said.text.startswith(f"Batch {batch} of dataset {dataset_id} is EMPTY: 1 of 1")
        nothing = "were indexed, but produced no chunks — nothing will be found"
        assert f"({document_id}) {nothing}" in said.text
        assert await said_by_all(asks, "wait", batch=batch, timeout_seconds=5) == said


async def test_a_paused_batch_ends_every_wait_at_once(
    sim: DifySimulator, clock: ManualClock, threaded_url: str, dataset_id: str
) -> None:
    script = DocumentScript(pause_at="indexing")
    _, batch = sim.add_document(dataset_id, "paused.txt", "text", script=script)
    clock.advance(60)
    async with surfaces(sim.api_key, threaded_url, dataset_id) as asks:
        loop = asyncio.get_running_loop()
        started = loop.time()
        said = await said_by_all(asks, "wait", batch=batch, timeout_seconds=30)
        # Nine waits of up to 30 s each answered at once: a paused document never finishes.
        assert loop.time() - started < 20
        assert not said.is_error and "is PAUSED" in said.text and "Dify's console" in said.text
        assert await said_by_all(asks, "status", batch=batch) == said


async def test_a_stalled_batch(
    sim: DifySimulator, clock: ManualClock, threaded_url: str, dataset_id: str
) -> None:
    script = DocumentScript(stall_at="indexing")
    _, batch = sim.add_document(dataset_id, "stuck.txt", "text", script=script)
    clock.advance(60)
    async with surfaces(sim.api_key, threaded_url, dataset_id, stall_timeout=0.2) as asks:
        said = await said_by_all(asks, "wait", batch=batch, timeout_seconds=30)
    assert not said.is_error
    assert said.text.startswith("Indexing appears STALLED: nothing changed for a long time")
    assert f"Batch {batch} of dataset {dataset_id} is NOT READY yet" in said.text


async def test_a_wait_that_runs_out_of_time(
    sim: DifySimulator, clock: ManualClock, threaded_url: str, dataset_id: str
) -> None:
    script = DocumentScript(stall_at="indexing")
    _, batch = sim.add_document(dataset_id, "slow.txt", "text", script=script)
    clock.advance(60)
    async with surfaces(sim.api_key, threaded_url, dataset_id, cap=0.2) as asks:
        said = await said_by_all(asks, "wait", batch=batch, timeout_seconds=60)
    assert not said.is_error
    assert said.text.startswith(f"Still indexing after 0.2 s: batch {batch} of dataset")
    assert said.text.endswith("(This tool waits at most 0.2 s per call.)")


# -- ids Dify does not know: answers the model can act on ----------------------------------------


async def test_an_unknown_batch_is_an_answer(
    sim: DifySimulator, threaded_url: str, dataset_id: str
) -> None:
    async with surfaces(sim.api_key, threaded_url, dataset_id) as asks:
        said = await said_by_all(asks, "status", batch=BATCH)
        assert not said.is_error
        assert said.text.startswith("Dify error (HTTP 404, code 'not_found'): Documents not")
        assert f"Dify does not know batch {BATCH} in dataset {dataset_id}" in said.text
        waited = await said_by_all(asks, "wait", batch=BATCH, timeout_seconds=5)
    assert not waited.is_error and f"Dify does not know batch {BATCH}" in waited.text
    assert_clean(said, sim.api_key)
    assert_clean(waited, sim.api_key)


async def test_an_unknown_dataset_is_an_answer(sim: DifySimulator, threaded_url: str) -> None:
    async with surfaces(sim.api_key, threaded_url, UNKNOWN_DATASET) as asks:
        said = await said_by_all(asks, "status", batch=BATCH)
        assert await said_by_all(asks, "wait", batch=BATCH, timeout_seconds=5) == said
    assert not said.is_error
    assert said.text.startswith("Dify error (HTTP 404, code 'not_found'): Dataset not found.")
    assert f"There is no dataset {UNKNOWN_DATASET}" in said.text


# -- what only the user can fix: tool errors -----------------------------------------------------


async def test_a_rejected_key_is_a_tool_error(
    sim: DifySimulator, threaded_url: str, dataset_id: str
) -> None:
    async with surfaces(WRONG_KEY, threaded_url, dataset_id) as asks:
        said = await said_by_all(asks, "status", batch=BATCH)
        assert await said_by_all(asks, "wait", batch=BATCH, timeout_seconds=5) == said
    assert said.is_error and said.text.startswith("Dify error (HTTP 401")
    assert "tell the user to check the Knowledge API key (DIFY_API_KEY)" in said.text
    assert_clean(said, WRONG_KEY, sim.api_key)


async def test_a_rate_limit_is_a_tool_error(
    sim: DifySimulator, clock: ManualClock, threaded_url: str, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds")
    sim.inject(Fault.knowledge_rate_limit(), route="indexing_status", times=-1)
    async with surfaces(sim.api_key, threaded_url, dataset_id, cap=0.3) as asks:
        said = await said_by_all(asks, "status", batch=batch)
        # A wait that never got past the limit says the same (not "not reported yet").
        assert await said_by_all(asks, "wait", batch=batch, timeout_seconds=5) == said
    assert said.is_error and "request rate limit" in said.text
    assert "wait about a minute before calling this again" in said.text


@pytest.fixture
def nothing_listens() -> Iterator[str]:
    """A loopback URL whose port refuses connections (bound, never listening)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/v1"


async def test_dify_unreachable_is_a_tool_error(nothing_listens: str, dataset_id: str) -> None:
    async with surfaces(WRONG_KEY, nothing_listens, dataset_id, cap=0.3) as asks:
        said = await said_by_all(asks, "status", batch=BATCH)
        assert await said_by_all(asks, "wait", batch=BATCH, timeout_seconds=5) == said
    assert said.is_error and said.text.startswith("Could not reach Dify: ")
    # The client's hint is relayed, without the address (the user configured it) and without
    # the wait's tally of failed polls (which differs from call to call).
    assert "Nothing accepted the connection at the server: is Dify running there" in said.text
    assert "failed poll" not in said.text
    assert "try again in a little while" in said.text
    assert_clean(said, WRONG_KEY, nothing_listens)


async def test_one_tool_error_class_everywhere_carrying_its_answer_across_pickling(
    sim: DifySimulator, threaded_url: str, dataset_id: str
) -> None:
    import pickle

    from dify_ingest_tools import DifyAuthenticationError, DifyError
    from dify_ingest_tools.agent.answers import DifyToolError
    from dify_ingest_tools.agent.answers import DifyToolError as ToolkitToolError
    from dify_ingest_tools.llama_index import DifyToolError as LlamaIndexToolError

    assert LlamaIndexToolError is DifyToolError and ToolkitToolError is DifyToolError
    async with AsyncDifyKnowledgeClient(WRONG_KEY, threaded_url, **FAST) as client:
        with pytest.raises(DifyToolError) as raised:
            await DifyToolset(dataset_id=dataset_id).run(client, "search", {"query": "q"})
    error = raised.value
    assert isinstance(error, DifyError) and isinstance(error.error, DifyAuthenticationError)
    assert str(error) == error.answer.text and error.answer.is_error
    copied = pickle.loads(pickle.dumps(error))
    assert type(copied) is DifyToolError and str(copied) == str(error)
    assert copied.answer.outcome == "error" and copied.answer.data == error.answer.data
    assert WRONG_KEY not in pickle.dumps(error).decode("latin-1")
