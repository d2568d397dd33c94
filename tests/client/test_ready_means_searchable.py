"""Ready means searchable: empty documents and summary indexing, over HTTP to the simulator.

Dify 1.14.1 accepts an empty or whitespace-only text and reports it ``completed`` with 0/0
segments (recordings 02c, 02d, 17): indexed, but nothing will be found. Datasets with summary
indexing keep ``summary_index_status: "SUMMARIZING"`` on their documents after ``completed``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    BatchIndexingStatus,
    BatchRef,
    DifyKnowledgeClient,
    IndexingEmptyError,
    IndexingError,
    IndexingEvent,
    IndexingStalledError,
    IndexingTimeoutError,
    Outcome,
    cli,
    sync_folder,
)
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.readiness.policy import outcome_of
from dify_ingest_tools.testing import DifySimulator, Fault, ManualClock
from tests.conftest import QUICK, load_recording

BLANKS = pytest.mark.parametrize("text", ["", "   \n\n  "], ids=["empty", "whitespace"])
NOTHING = "produced no chunks — nothing will be found"


# -- empty is not ready -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "where"),
    [
        ("02c_whitespace_only_text_poll.json", ("poll", "distinct_responses", -1)),
        ("02d_empty_text_status_after_processing.json", ("status",)),
        ("17_economy_semantic_default_and_whitespace.json", ("status_whitespace_document",)),
    ],
)
def test_what_real_dify_answered_for_blank_text_reads_as_empty(
    file: str, where: tuple[Any, ...]
) -> None:
    case: Any = load_recording(file)
    for step in where:
        case = case[step]
    status = BatchIndexingStatus.model_validate(
        {"dataset_id": "d", "batch": "b", "documents": case["response"]["body"]["data"]}
    )
    assert status.is_completed and status.is_empty and outcome_of(status) is Outcome.empty
    assert status.verdict == "ready"  # on indexing_status alone, as before
    assert NOTHING in status.summary()


@BLANKS
async def test_a_blank_text_fails_the_wait_with_indexing_empty_error_by_default(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None, text: str
) -> None:
    created = await client.create_document_by_text(dataset_id, "blank.txt", text)
    with pytest.raises(IndexingEmptyError) as caught:
        await client.wait_for_indexing(dataset_id, created.batch, timeout=60, **QUICK)
    error = caught.value
    assert isinstance(error, IndexingError)
    last = error.last_status
    assert last is not None and last.is_completed and last.is_empty
    assert (last.completed_segments, last.total_segments) == (0, 0)
    assert [doc.id for doc in error.empty_documents] == [created.document_id]
    assert NOTHING in str(error) and created.document_id in str(error)
    assert "on_empty='warn'" in str(error)
    assert outcome_of(error=error) is Outcome.empty
    assert outcome_of(last) is Outcome.empty
    assert "EMPTY" in last.summary() and created.document_id in last.summary()


async def test_a_text_with_content_is_ready_and_not_empty(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    created = await client.create_document_by_text(dataset_id, "full.txt", "alpha beta gamma")
    status = await client.wait_for_indexing(dataset_id, created.batch, timeout=60, **QUICK)
    assert status.is_completed and not status.is_empty and status.empty_documents == ()
    assert outcome_of(status) is Outcome.ready


@BLANKS
async def test_on_empty_warn_logs_and_returns_the_status(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    advancing: None,
    caplog: pytest.LogCaptureFixture,
    text: str,
) -> None:
    created = await client.create_document_by_text(dataset_id, "blank.txt", text)
    with caplog.at_level(logging.WARNING, logger="dify_ingest_tools"):
        status = await client.wait_for_indexing(
            dataset_id, created.batch, timeout=60, on_empty="warn", **QUICK
        )
    assert status.is_empty
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(NOTHING in message and created.document_id in message for message in warned)


async def test_on_empty_accept_returns_quietly(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    advancing: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    created = await client.create_document_by_text(dataset_id, "blank.txt", " \n ")
    with caplog.at_level(logging.WARNING, logger="dify_ingest_tools"):
        status = await client.wait_for_indexing(
            dataset_id, created.batch, timeout=60, on_empty="accept", **QUICK
        )
    assert status.is_empty and status.is_completed
    assert not [r for r in caplog.records if NOTHING in r.getMessage()]


@pytest.mark.parametrize("value", ["ignore", "RAISE", "", None, 1, True])
async def test_a_confused_on_empty_is_refused_before_any_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, value: Any
) -> None:
    sim.clear_requests()
    with pytest.raises(ValueError, match="on_empty must be 'raise', 'warn' or 'accept'"):
        await client.wait_for_indexing(dataset_id, "20261128153019351615", on_empty=value)
    with pytest.raises(TypeError, match="summaries must be True or False"):
        await client.wait_for_indexing(dataset_id, "20261128153019351615", summaries="yes")  # type: ignore[arg-type]
    assert sim.requests == []


async def test_many_batches_one_empty_raises_and_names_it(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    full = await client.create_document_by_text(dataset_id, "full.txt", "alpha beta")
    blank = await client.create_document_by_text(dataset_id, "blank.txt", "")
    with pytest.raises(IndexingEmptyError) as caught:
        await client.wait_for_batches([full, blank], timeout=60, **QUICK)
    assert caught.value.last_status is not None
    assert caught.value.last_status.batch == blank.batch
    statuses = await client.wait_for_batches([full, blank], timeout=60, on_empty="accept", **QUICK)
    assert [s.is_empty for s in statuses] == [False, True]


async def test_wait_for_documents_and_watch_indexing_raise_too(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    blank = await client.create_document_by_text(dataset_id, "blank.txt", "")
    with pytest.raises(IndexingEmptyError):
        await client.wait_for_documents(dataset_id, [blank], timeout=60, **QUICK)
    seen: list[BatchIndexingStatus] = []

    async def watch() -> None:
        async for status in client.watch_indexing(dataset_id, blank.batch, timeout=60, **QUICK):
            seen.append(status)

    with pytest.raises(IndexingEmptyError):
        await watch()
    assert seen and seen[-1].is_empty  # the empty status is yielded before the raise


async def test_the_batch_completed_event_says_nothing_will_be_found(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    events: list[IndexingEvent] = []
    blank = await client.create_document_by_text(dataset_id, "blank.txt", "  ")
    await client.wait_for_indexing(
        dataset_id, blank.batch, timeout=60, on_empty="accept", on_event=events.append, **QUICK
    )
    (done,) = [event for event in events if event.kind == "batch_completed"]
    assert NOTHING in str(done) and NOTHING in done.describe()


def test_the_blocking_twin_raises_the_same_error(
    sync_client: DifyKnowledgeClient, dataset_id: str, ticker: None
) -> None:
    blank = sync_client.create_document_by_text(dataset_id, "blank.txt", "")
    with pytest.raises(IndexingEmptyError):
        sync_client.wait_for_indexing(dataset_id, blank.batch, timeout=60, **QUICK)
    status = sync_client.wait_for_indexing(
        dataset_id, blank.batch, timeout=60, on_empty="accept", **QUICK
    )
    assert status.is_empty


async def test_the_tools_answer_empty_with_the_same_words(
    client: AsyncDifyKnowledgeClient, dataset_id: str, advancing: None
) -> None:
    # The upload tool refuses blank text; a blank file uploaded by anyone else is answered so.
    blank = await client.create_document_by_text(dataset_id, "blank.md", "   ")
    tools = DifyToolset(dataset_id=dataset_id, **QUICK)
    args = {"batch": blank.batch, "timeout_seconds": 30}
    waited = await tools.run(client, "wait_for_indexing", args)
    assert waited.outcome == "empty" and NOTHING in waited.text and "EMPTY" in waited.text
    assert blank.document_id in waited.text
    (document,) = waited.data["documents"]
    assert (document["id"], document["total_segments"]) == (blank.document_id, 0)
    status = await tools.run(client, "indexing_status", {"batch": blank.batch})
    assert status.outcome == "empty" and NOTHING in status.text
    accepting = DifyToolset(dataset_id=dataset_id, on_empty="accept", **QUICK)
    assert (await accepting.run(client, "wait_for_indexing", args)).text == waited.text


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, sim: DifySimulator, threaded_url: str) -> None:
    monkeypatch.setenv("DIFY_API_KEY", sim.api_key)
    monkeypatch.setenv("DIFY_API_BASE_URL", threaded_url)


@pytest.mark.usefixtures("cli_env")
def test_the_cli_exits_4_with_reason_empty(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, batch = sim.add_document(dataset_id, "blank.txt", "   \n\n  ")
    clock.advance(60)
    assert cli.main(["wait", dataset_id, batch, "--json", "--poll-interval", "0.01"]) == 4
    payload = json.loads(capsys.readouterr().out)
    assert payload["reason"] == "empty" and payload["exit_code"] == 4
    assert NOTHING in payload["message"]
    assert cli.main(["wait", dataset_id, batch, "--on-empty", "accept"]) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["wait", dataset_id, batch, "--on-empty", "warn"]) == cli.EXIT_OK
    assert NOTHING in capsys.readouterr().err
    assert cli.main(["status", dataset_id, batch]) == cli.EXIT_NOT_READY
    out, err = capsys.readouterr()
    assert "EMPTY" in out and NOTHING in err
    assert cli.main(["status", dataset_id, batch, "--on-empty", "accept"]) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["status", dataset_id, batch, "--json"]) == cli.EXIT_NOT_READY
    payload = json.loads(capsys.readouterr().out)
    assert payload["is_empty"] is True and payload["is_completed"] is True
    with pytest.raises(SystemExit):
        cli.main(["wait", dataset_id, batch, "--on-empty", "ignore"])


async def test_sync_reports_a_blank_file_as_empty_not_done(
    sim: DifySimulator,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    advancing: None,
    tmp_path: Path,
) -> None:
    (tmp_path / "full.txt").write_text("alpha beta gamma")
    (tmp_path / "blank.txt").write_text("  \n\n  ")
    report = await sync_folder(client, tmp_path, dataset_id, timeout=60)
    assert report.uploaded == ["full.txt"]
    assert [item.name for item in report.empty] == ["blank.txt"]
    assert NOTHING in (report.empty[0].error or "")
    assert not report.ok  # exit 4 from the CLI
    assert report.as_dict()["empty"] == [{"name": "blank.txt", "reason": report.empty[0].error}]


# -- summaries ----------------------------------------------------------------------------------


@pytest.fixture
def summarizing(sim: DifySimulator) -> str:
    """A high_quality dataset with summary indexing: documents summarize for 3 s."""
    dataset = sim.create_dataset("summaries", indexing_technique="high_quality", summaries=True)
    sim.set_summaries(dataset, seconds=3.0)
    return dataset


async def _listed(client: AsyncDifyKnowledgeClient, dataset_id: str, document_id: str) -> Any:
    return next(d for d in (await client.list_documents(dataset_id)).data if d.id == document_id)


async def test_summaries_true_waits_until_no_document_is_summarizing(
    client: AsyncDifyKnowledgeClient, summarizing: str, advancing: None
) -> None:
    created = await client.create_document_by_text(summarizing, "s.txt", "alpha\n\nbeta")
    events: list[IndexingEvent] = []
    status = await client.wait_for_indexing(
        summarizing, created.batch, timeout=60, summaries=True, on_event=events.append, **QUICK
    )
    assert status.is_completed
    item = await _listed(client, summarizing, created.document_id)
    assert item.need_summary is True and item.summary_index_status is None
    kinds = [event.kind for event in events]
    assert "summarizing" in kinds
    assert kinds.index("summarizing") < kinds.index("batch_completed")  # ready after summaries
    phase = events[kinds.index("summarizing")]
    assert created.document_id in (phase.error or "") and "summarizing" in phase.describe()


async def test_without_summaries_the_wait_ends_while_dify_still_summarizes(
    client: AsyncDifyKnowledgeClient, summarizing: str, advancing: None
) -> None:
    created = await client.create_document_by_text(summarizing, "s.txt", "alpha\n\nbeta")
    await client.wait_for_indexing(summarizing, created.batch, timeout=60, **QUICK)
    item = await _listed(client, summarizing, created.document_id)
    assert item.need_summary is True and item.summary_index_status == "SUMMARIZING"
    assert item.is_summarizing


async def test_summaries_that_never_finish_stall_with_a_message_about_summaries(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, summarizing: str, advancing: None
) -> None:
    sim.set_summaries(summarizing, failure="stuck")
    created = await client.create_document_by_text(summarizing, "s.txt", "alpha beta")
    with pytest.raises(IndexingStalledError) as caught:
        await client.wait_for_indexing(
            summarizing, created.batch, timeout=60, stall_timeout=0.3, summaries=True, **QUICK
        )
    assert "summaries" in str(caught.value) and created.document_id in str(caught.value)
    assert caught.value.last_status is not None and caught.value.last_status.is_completed
    with pytest.raises(IndexingTimeoutError, match="making the summaries"):
        await client.wait_for_indexing(
            summarizing, created.batch, timeout=0.3, summaries=True, **QUICK
        )


async def test_failed_summaries_show_nothing_on_the_document_so_the_wait_ends(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, summarizing: str, advancing: None
) -> None:
    # Dify reports a summary error on the segment only: the document goes null as on success.
    sim.set_summaries(summarizing, seconds=1.0, failure="error")
    created = await client.create_document_by_text(summarizing, "s.txt", "alpha beta")
    status = await client.wait_for_indexing(
        summarizing, created.batch, timeout=60, summaries=True, **QUICK
    )
    assert status.is_completed
    item = await _listed(client, summarizing, created.document_id)
    assert item.need_summary is True and item.summary_index_status is None


async def test_summaries_are_skipped_for_economy_and_empty_documents(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, advancing: None
) -> None:
    economy = sim.create_dataset("economy-summaries", summaries=True)
    created = await client.create_document_by_text(economy, "e.txt", "alpha beta")
    events: list[IndexingEvent] = []
    await client.wait_for_indexing(
        economy, created.batch, timeout=60, summaries=True, on_event=events.append, **QUICK
    )
    assert "summarizing" not in [event.kind for event in events]
    item = await _listed(client, economy, created.document_id)
    assert (item.need_summary, item.summary_index_status) == (True, None)


async def test_the_summary_phase_rides_out_a_failing_list_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, summarizing: str, advancing: None
) -> None:
    created = await client.create_document_by_text(summarizing, "s.txt", "alpha beta")
    await client.wait_for_indexing(summarizing, created.batch, timeout=60, **QUICK)
    sim.inject(Fault.server_error(503), route="list_documents", times=2)
    events: list[IndexingEvent] = []
    status = await client.wait_for_indexing(
        summarizing, created.batch, timeout=60, summaries=True, on_event=events.append, **QUICK
    )
    assert status.is_completed
    assert "retrying" in [event.kind for event in events]


def test_batch_ref_waits_reach_the_summary_phase_through_the_blocking_client(
    sim: DifySimulator, sync_client: DifyKnowledgeClient, summarizing: str, ticker: None
) -> None:
    created = sync_client.create_document_by_text(summarizing, "s.txt", "alpha beta")
    (status,) = sync_client.wait_for_batches(
        [BatchRef(summarizing, created.batch)], timeout=60, summaries=True, **QUICK
    )
    assert status.is_completed
    items = sync_client.list_documents(summarizing).data
    assert [(d.need_summary, d.summary_index_status) for d in items] == [(True, None)]


# -- the frameworks render the same answers -----------------------------------------------------


def test_langchain_wait_tool_waiter_and_store_say_empty(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, sync_client: DifyKnowledgeClient
) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.messages import ToolCall

    from dify_ingest_tools.langchain import (
        DifyIndexingWaiter,
        DifyVectorStore,
        DifyWaitForIndexingTool,
    )

    created = sync_client.create_document_by_text(dataset_id, "blank.txt", "")
    clock.advance(60)
    tool = DifyWaitForIndexingTool(client=sync_client, dataset_id=dataset_id, **QUICK)
    call = ToolCall(name=tool.name, args={"batch": created.batch}, id="call-1", type="tool_call")
    message = tool.invoke(call)
    assert message.status == "success" and NOTHING in message.content
    assert message.artifact.is_empty
    with pytest.raises(IndexingEmptyError):
        DifyIndexingWaiter(client=sync_client, **QUICK).invoke([created])
    accepted = DifyIndexingWaiter(client=sync_client, on_empty="accept", **QUICK).invoke([created])
    assert accepted[0].is_empty
    with pytest.raises(ValueError, match="on_empty"):
        DifyIndexingWaiter(client=sync_client, on_empty="sometimes")
    store = DifyVectorStore(dataset_id, client=sync_client, timeout=5, **QUICK)
    with pytest.raises(ValueError, match="on_empty"):
        DifyVectorStore(dataset_id, client=sync_client, on_empty="never")  # type: ignore[arg-type]
    assert store.wait_options["on_empty"] == "raise"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_llama_index_wait_tool_says_empty(
    mode: str, sim: DifySimulator, clock: ManualClock, sync_client: DifyKnowledgeClient
) -> None:
    pytest.importorskip("llama_index.core")
    from dify_ingest_tools.llama_index import DifyIndexingToolSpec

    dataset_id = sim.create_dataset("llama-empty")
    created = sync_client.create_document_by_text(dataset_id, "blank.txt", "   ")
    clock.advance(60)
    spec = DifyIndexingToolSpec(client=sync_client, **QUICK)
    (tool,) = [t for t in spec.to_tool_list() if t.metadata.get_name() == "wait_for_indexing"]
    args = {"dataset_id": dataset_id, "batch": created.batch, "timeout_seconds": 10}
    output = tool.call(**args) if mode == "sync" else await tool.acall(**args)
    assert not output.is_error and NOTHING in output.content and "EMPTY" in output.content


def test_a_retriever_gate_searches_past_an_empty_upload_with_a_warning(
    sim: DifySimulator,
    clock: ManualClock,
    dataset_id: str,
    sync_client: DifyKnowledgeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("langchain_core")
    from dify_ingest_tools.langchain import DifyRetriever

    sync_client.create_document_by_text(dataset_id, "full.txt", "quetzal feathers are green")
    blank = sync_client.create_document_by_text(dataset_id, "blank.txt", "  ")
    clock.advance(60)
    retriever = DifyRetriever(
        client=sync_client, dataset_id=dataset_id, pending_timeout=10, **QUICK
    )
    with caplog.at_level(logging.WARNING, logger="dify_ingest_tools"):
        documents = retriever.invoke("quetzal")
    assert [doc.metadata["document_name"] for doc in documents] == ["full.txt"]
    assert "dify_partial_results" not in documents[0].metadata  # nothing left to wait for
    assert "nothing of them will be found" in caplog.text and blank.batch in caplog.text


def test_wait_pending_reports_an_empty_upload_and_exits_4(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sim = DifySimulator(time_scale=0.02)
    dataset_id = sim.create_dataset("pending")
    ledger = tmp_path / "l.db"
    with sim.serve_in_thread() as served:
        with DifyKnowledgeClient(sim.api_key, served, ledger=ledger) as client:
            client.create_document_by_text(dataset_id, "full.txt", "alpha beta")
            client.create_document_by_text(dataset_id, "blank.txt", "   ")
        base = ["--api-key", sim.api_key, "--base-url", served, "--ledger", str(ledger),
                "--no-progress", "--poll-interval", "0.05", "--json"]  # fmt: skip
        assert cli.main(["wait", "--pending", "--on-empty", "accept", *base]) == cli.EXIT_OK
        report = json.loads(capsys.readouterr().out)
        assert report["reason"] == "ready" and "1 empty" in report["message"]
        assert [b["is_completed"] for b in report["batches"]] == [True, True]
    with sim.serve_in_thread() as served:
        with DifyKnowledgeClient(sim.api_key, served, ledger=ledger) as client:
            client.create_document_by_text(dataset_id, "blank-2.txt", "")
        base[3] = served
        assert cli.main(["wait", "--pending", *base]) == cli.EXIT_NOT_READY
        report = json.loads(capsys.readouterr().out)
        assert report["reason"] == "empty" and report["exit_code"] == 4


async def test_a_batch_with_one_empty_document_still_waits_for_the_others_summaries(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, summarizing: str, advancing: None
) -> None:
    full, batch = sim.add_document(summarizing, "full.txt", "alpha\n\nbeta")
    blank, _ = sim.add_document(summarizing, "blank.txt", "  ", batch=batch)  # console batch
    events: list[IndexingEvent] = []
    status = await client.wait_for_indexing(
        summarizing,
        batch,
        timeout=60,
        summaries=True,
        on_empty="accept",
        on_event=events.append,
        **QUICK,
    )
    assert [doc.id for doc in status.empty_documents] == [blank]
    (phase,) = [event for event in events if event.kind == "summarizing"]
    assert full in (phase.error or "") and blank not in (phase.error or "")
    assert (await _listed(client, summarizing, full)).summary_index_status is None
    with pytest.raises(IndexingEmptyError):  # raising: no summary phase first
        await client.wait_for_indexing(summarizing, batch, timeout=60, summaries=True, **QUICK)
