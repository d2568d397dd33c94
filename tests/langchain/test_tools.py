"""The agent tools over real HTTP: answers, artifacts, error messages, bound schemas, secrets."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import threading
import time
from typing import Any
from uuid import UUID

import pytest

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchIndexingStatus,
    DifyKnowledgeClient,
)
from dify_ingest_tools.langchain import (
    DifyDocumentUploader,
    DifyIndexingStatusTool,
    DifyIndexingWaiter,
    DifyRetriever,
    DifyWaitForIndexingTool,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from .conftest import QUICK

SECRET = "dataset-TOPSECRET0123456789abcdef"
PDF_ERROR = "Failed to load document (PDFium: Data format error)."


def call(name: str, **args: Any) -> ToolCall:
    return ToolCall(name=name, args=args, id="call-1", type="tool_call")


def status_call(dataset_id: str, batch: str) -> ToolCall:
    return call("dify_indexing_status", dataset_id=dataset_id, batch=batch)


# -- the status tool ------------------------------------------------------------------------


def test_status_tool_call_returns_a_tool_message_with_answer_and_artifact(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds within 30 days")
    tool = DifyIndexingStatusTool(client=sync_client)

    message = tool.invoke(status_call(dataset_id, batch))

    assert isinstance(message, ToolMessage)
    assert message.status == "success" and message.tool_call_id == "call-1"
    assert "NOT READY" in message.content and batch in message.content
    assert isinstance(message.artifact, BatchIndexingStatus)
    assert message.artifact.batch == batch and not message.artifact.is_completed

    clock.advance(5)
    ready = tool.invoke(status_call(dataset_id, batch))
    assert "is READY" in ready.content and "1/1 segments indexed" in ready.content
    assert ready.artifact.is_completed


async def test_status_tool_is_natively_async_on_an_async_client(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds within 30 days")
    clock.advance(5)
    tool = DifyIndexingStatusTool(client=client)

    message = await tool.ainvoke(status_call(dataset_id, batch))

    assert message.status == "success" and "is READY" in message.content
    assert message.artifact.is_completed


def test_status_tool_names_failed_documents_with_difys_error(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    script = DocumentScript(fail_at="splitting", error=PDF_ERROR)
    document_id, batch = sim.add_document(dataset_id, "broken.pdf", "x", script=script)
    clock.advance(5)

    message = DifyIndexingStatusTool(client=sync_client).invoke(status_call(dataset_id, batch))

    assert message.status == "success"  # a failed upload is an answer, not a tool error
    assert "FAILED" in message.content and PDF_ERROR in message.content
    assert document_id in message.content and message.artifact.is_failed


def test_status_tool_reuses_the_snapshot_of_a_running_wait(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "slow.txt", "text")
    observed = threading.Event()  # the wait has its first snapshot (not just: Dify was asked)
    waiter = sync_client.async_client.wait_for_indexing(
        dataset_id,
        batch,
        timeout=5,
        poll_interval=1,
        max_poll_interval=1,
        on_event=lambda event: observed.set(),
    )
    waiting = sync_client._worker.submit(waiter)
    try:
        assert observed.wait(5), "the wait never observed the batch"
        polls = len(sim.requests_for(route="indexing_status"))
        assert polls == 1

        message = DifyIndexingStatusTool(client=sync_client).invoke(status_call(dataset_id, batch))

        assert "NOT READY" in message.content
        assert len(sim.requests_for(route="indexing_status")) == polls  # no extra request
    finally:
        waiting.cancel()


def test_auth_error_becomes_an_error_tool_message(
    sim: DifySimulator, dataset_id: str, threaded_url: str
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "text")
    key = "dataset-wrong-key-0123456789"
    tool = DifyIndexingStatusTool(api_key=key, base_url=threaded_url)

    message = tool.invoke(status_call(dataset_id, batch))

    assert isinstance(message, ToolMessage) and message.status == "error"
    assert message.artifact is None
    assert str(message.content).startswith("Dify error (HTTP 401, code 'unauthorized')")
    assert "Dify rejected the API key" in message.content and "tell the user" in message.content
    assert key not in message.content


def test_api_errors_raise_tool_exceptions_without_handle_tool_error(
    sim: DifySimulator, dataset_id: str, threaded_url: str
) -> None:
    tool = DifyIndexingStatusTool(
        api_key="dataset-wrong", base_url=threaded_url, handle_tool_error=False
    )
    with pytest.raises(ToolException, match="HTTP 401"):
        tool.invoke(status_call(dataset_id, "20250612093011123456"))


@pytest.mark.parametrize(
    ("dataset", "batch", "status", "wanted"),
    [
        # Ids Dify does not know are answers: the model can fix the id it passed.
        (
            "00000000-0000-4000-8000-000000000000",
            "20250612093011123456",
            "success",
            "There is no dataset",
        ),
        (None, "20250612093011123456", "success", "does not know batch 20250612093011123456"),
        # Ids that cannot be ids are refused before any request.
        (None, "../../etc", "error", "Invalid argument: batch"),
        (
            "not-a-uuid",
            "20250612093011123456",
            "error",
            "Invalid arguments: dataset_id: dataset_id must be a UUID",
        ),
    ],
)
def test_wrong_arguments_give_messages_the_model_can_act_on(
    dataset_id: str,
    sync_client: DifyKnowledgeClient,
    dataset: str | None,
    batch: str,
    status: str,
    wanted: str,
) -> None:
    tool = DifyIndexingStatusTool(client=sync_client)

    message = tool.invoke(status_call(dataset or dataset_id, batch))

    assert message.status == status and wanted in message.content, message.content
    assert message.artifact is None


def test_a_tool_on_an_async_client_refuses_blocking_calls_clearly(dataset_id: str) -> None:
    tool = DifyIndexingStatusTool(
        client=AsyncDifyKnowledgeClient("dataset-x", "http://127.0.0.1:9/v1")
    )
    with pytest.raises(TypeError, match="ainvoke"):
        tool.invoke(status_call(dataset_id, "20250612093011123456"))


# -- the wait tool --------------------------------------------------------------------------


@pytest.mark.usefixtures("ticker")
def test_wait_tool_answers_ready_once_indexed(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds within 30 days")
    tool = DifyWaitForIndexingTool(client=sync_client, dataset_id=dataset_id, **QUICK)

    message = tool.invoke(call(tool.name, batch=batch, timeout_seconds=10))

    assert message.status == "success" and "is READY" in message.content
    assert message.artifact.is_completed


@pytest.mark.usefixtures("ticker")
def test_wait_tool_reports_progress_as_custom_events_of_its_run(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds within 30 days")
    tool = DifyWaitForIndexingTool(client=sync_client, dataset_id=dataset_id, **QUICK)
    seen: list[tuple[str, UUID]] = []
    runs: list[UUID] = []

    class Recorder(BaseCallbackHandler):
        def on_tool_start(self, *args: Any, run_id: UUID, **kwargs: Any) -> None:
            runs.append(run_id)

        def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
            seen.append((name, run_id))

    message = tool.invoke(call(tool.name, batch=batch), config={"callbacks": [Recorder()]})

    assert "is READY" in message.content
    assert seen[0][0] == "dify_indexing_progress" and seen[-1][0] == "dify_indexing_batch_completed"
    assert {run_id for _, run_id in seen} == set(runs)  # events of the tool's own run


@pytest.mark.usefixtures("advancing")
async def test_wait_tool_progress_streams_through_astream_events(
    sim: DifySimulator, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "faq.txt", "refunds within 30 days")
    tool = DifyWaitForIndexingTool(client=client, dataset_id=dataset_id, **QUICK)

    names = [
        event["name"]
        async for event in tool.astream_events(call(tool.name, batch=batch), version="v2")
        if event["event"] == "on_custom_event"
    ]

    assert names[0] == "dify_indexing_progress" and names[-1] == "dify_indexing_batch_completed"


def test_wait_tool_running_out_of_time_is_an_answer(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    # The simulator's clock stands still: the document never gets past `waiting`.
    _, batch = sim.add_document(dataset_id, "big.txt", "text")
    tool = DifyWaitForIndexingTool(client=sync_client, max_timeout_seconds=0.2, **QUICK)

    started = time.monotonic()
    message = tool.invoke(call(tool.name, dataset_id=dataset_id, batch=batch, timeout_seconds=3600))

    assert time.monotonic() - started < 2  # capped: the model asked for an hour
    assert message.status == "success"
    assert message.content.startswith("Still indexing after 0.2 s"), message.content
    assert "0 of 1 document(s) completed (1 waiting)" in message.content
    assert "This tool waits at most 0.2 s per call." in message.content
    assert isinstance(message.artifact, BatchIndexingStatus)
    assert not message.artifact.is_completed


async def test_wait_tool_timeout_answer_from_ainvoke(
    sim: DifySimulator, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "big.txt", "text")
    tool = DifyWaitForIndexingTool(client=client, dataset_id=dataset_id, **QUICK)

    message = await tool.ainvoke(call(tool.name, batch=batch, timeout_seconds=0.1))

    assert message.content.startswith("Still indexing after 0.1 s")
    assert "per call" not in message.content  # the model's own limit, not the cap
    assert message.artifact.batch == batch


@pytest.mark.usefixtures("ticker")
def test_wait_tool_failure_is_an_answer_naming_the_document(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    script = DocumentScript(fail_at="splitting", error=PDF_ERROR)
    document_id, batch = sim.add_document(dataset_id, "broken.pdf", "x", script=script)
    tool = DifyWaitForIndexingTool(client=sync_client, **QUICK)

    message = tool.invoke(call(tool.name, dataset_id=dataset_id, batch=batch))

    assert message.status == "success"
    assert "FAILED" in message.content and PDF_ERROR in message.content
    assert document_id in message.content and message.artifact.is_failed


@pytest.mark.usefixtures("ticker")
def test_wait_tool_answers_paused_at_once(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(
        dataset_id, "paused.txt", "x", script=DocumentScript(pause_at="splitting")
    )
    tool = DifyWaitForIndexingTool(client=sync_client, **QUICK)

    message = tool.invoke(call(tool.name, dataset_id=dataset_id, batch=batch, timeout_seconds=5))

    assert "is PAUSED" in message.content and "Dify's console" in message.content
    assert message.artifact.is_paused


def test_wait_tool_stall_is_an_answer(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    _, batch = sim.add_document(dataset_id, "stuck.txt", "x")
    tool = DifyWaitForIndexingTool(client=sync_client, stall_timeout=0.1, **QUICK)

    message = tool.invoke(call(tool.name, dataset_id=dataset_id, batch=batch, timeout_seconds=5))

    assert message.content.startswith("Indexing appears STALLED"), message.content
    assert message.artifact is not None and message.artifact.batch == batch


def test_wait_tool_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_poll_interval"):
        DifyWaitForIndexingTool(
            api_key="dataset-x",
            base_url="http://127.0.0.1:9/v1",
            poll_interval=5,
            max_poll_interval=1,
        )


# -- schemas --------------------------------------------------------------------------------


def test_a_bound_dataset_is_hidden_from_the_tool_schema(dataset_id: str) -> None:
    connection = {"api_key": "dataset-x", "base_url": "http://127.0.0.1:9/v1"}
    status = DifyIndexingStatusTool(**connection, dataset_id=dataset_id)
    wait = DifyWaitForIndexingTool(**connection, dataset_id=dataset_id, max_timeout_seconds=45)

    assert set(status.args) == {"batch"}
    assert set(wait.args) == {"batch", "timeout_seconds"}
    for tool in (status, wait):
        schema = tool.tool_call_schema
        assert isinstance(schema, dict)  # the tool set's JSON schema, as is
        assert "dataset_id" not in schema["properties"]
        assert schema["required"] == ["batch"]
        assert "dataset_id" not in tool.description
        function = convert_to_openai_tool(tool)["function"]
        assert set(function["parameters"]["properties"]) <= {"batch", "timeout_seconds"}
    assert "this tool's limit is 45 s" in wait.description

    unbound = DifyIndexingStatusTool(**connection)
    assert set(unbound.args) == {"dataset_id", "batch"}
    assert "`dataset_id`" in unbound.description
    assert all(field["description"] for field in unbound.args.values())


def test_a_bound_tool_refuses_a_dataset_id_the_model_adds(
    sim: DifySimulator, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    # As every tool of the set does, in every framework: an invented argument is refused.
    _, batch = sim.add_document(dataset_id, "faq.txt", "text")
    other = sim.create_dataset("other")
    tool = DifyIndexingStatusTool(client=sync_client, dataset_id=dataset_id)

    message = tool.invoke(status_call(other, batch))

    assert message.status == "error" and other not in message.content
    assert message.content.startswith("Invalid arguments: dataset_id: Extra inputs are not")
    assert not sim.requests_for(route="indexing_status")


def test_a_bound_dataset_must_be_a_uuid() -> None:
    with pytest.raises(ValueError, match="dataset_id must be a UUID"):
        DifyIndexingStatusTool(
            api_key="dataset-x", base_url="http://127.0.0.1:9/v1", dataset_id="docs"
        )


def test_client_and_api_key_are_exclusive(sync_client: DifyKnowledgeClient) -> None:
    with pytest.raises(ValueError, match="either client= or api_key"):
        DifyIndexingStatusTool(client=sync_client, api_key="dataset-x")


# -- secrets --------------------------------------------------------------------------------


@pytest.fixture
def secret_sim(clock: ManualClock) -> DifySimulator:
    return DifySimulator(api_key=SECRET, clock=clock)


@pytest.mark.usefixtures("ticker")
def test_the_key_never_shows_in_outputs_reprs_or_serializations(secret_sim: DifySimulator) -> None:
    dataset_id = secret_sim.create_dataset("secret")
    _, batch = secret_sim.add_document(dataset_id, "faq.txt", "refund policy")
    texts: list[str] = []
    with secret_sim.serve_in_thread() as url:
        connection = {"api_key": SECRET, "base_url": url}
        status = DifyIndexingStatusTool(**connection)
        wait = DifyWaitForIndexingTool(**connection, dataset_id=dataset_id, **QUICK)
        components: list[Any] = [
            status,
            wait,
            DifyDocumentUploader(**connection, dataset_id=dataset_id),
            DifyIndexingWaiter(**connection),
            DifyRetriever(**connection, dataset_id=dataset_id, **QUICK),
        ]
        for component in components:
            texts += [repr(component), str(component), str(component.model_dump())]
            texts += [json.dumps(dumpd(component)), json.dumps(component.to_json(), default=str)]
            assert component.api_key.get_secret_value() == SECRET  # kept, but as a SecretStr
        # (BaseTool cannot dump itself to JSON at all: its args_schema is a class.)
        texts += [component.model_dump_json() for component in components[2:]]
        texts.append(repr(status.invoke(status_call(dataset_id, batch))))
        texts.append(repr(wait.invoke(call(wait.name, batch=batch, timeout_seconds=5))))
        texts.append(repr(components[-1].invoke("refund")))
        wrong = DifyIndexingStatusTool(api_key=SECRET + "x", base_url=url)
        texts.append(repr(wrong.invoke(status_call(dataset_id, batch))))
    assert "is READY" in "\n".join(texts)
    assert not [text for text in texts if SECRET in text]


def test_connection_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIFY_API_KEY", SECRET)
    monkeypatch.setenv("DIFY_API_BASE_URL", "http://127.0.0.1:9/v1/")
    tool = DifyWaitForIndexingTool()
    assert tool.api_key is not None and tool.api_key.get_secret_value() == SECRET
    assert tool.base_url == "http://127.0.0.1:9/v1"
    monkeypatch.delenv("DIFY_API_KEY")
    with pytest.raises(ValueError, match="No Dify API key"):
        DifyWaitForIndexingTool()


def test_async_tools_can_run_concurrently(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    batches = [sim.add_document(dataset_id, f"{n}.txt", "text")[1] for n in range(3)]
    clock.advance(5)
    tool = DifyIndexingStatusTool(client=sync_client, dataset_id=dataset_id)

    async def check_all() -> list[Any]:
        return await asyncio.gather(
            *(tool.ainvoke(call(tool.name, batch=batch)) for batch in batches)
        )

    messages = asyncio.run(check_all())
    assert [message.artifact.batch for message in messages] == batches
    assert all("is READY" in message.content for message in messages)


def test_components_refuse_to_pickle_with_a_clear_message(
    sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    components = [
        DifyIndexingStatusTool(client=sync_client),
        DifyWaitForIndexingTool(client=sync_client, dataset_id=dataset_id),
        DifyDocumentUploader(client=sync_client, dataset_id=dataset_id),
        DifyIndexingWaiter(client=sync_client),
        DifyRetriever(client=sync_client, dataset_id=dataset_id),
    ]
    for component in components:
        with pytest.raises(TypeError, match=r"holds a live Dify client .* cannot be pickled"):
            pickle.dumps(component)
        # A deep copy is a second component on the same connection.
        twin = copy.deepcopy(component)
        assert twin is not component and twin.client is sync_client
