"""Document maintenance through the client, over real HTTP to the simulator: updates and
their scoped waits, the not-available error, metadata, segments, status actions.

The simulator runs on a `FakeClock`: moved by hand in most tests, and by the clock itself
(``fake_client``: everything waits on it) where an update or a wait has to sit time out.
"""

from __future__ import annotations

import asyncio

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAPIError,
    DifyDocumentNotAvailableError,
    DifyKnowledgeClient,
    DifyNotFoundError,
    IndexingTimeoutError,
    UpdatedDocument,
)
from dify_ingest_tools._base.clock import FakeClock
from dify_ingest_tools._base.filters import metadata_conditions
from dify_ingest_tools.testing import DifySimulator, DocumentScript
from tests.conftest import FAST, QUICK, polls_until


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    """The simulator on the fake clock ``fake_client`` waits on (still only moved by hand
    in a test that does not ask for ``fake_client``)."""
    return fake_clock


TEXT = "Alpha beta gamma.\n\nDelta epsilon zeta."


async def _ready_document(
    sim: DifySimulator, clock: FakeClock, dataset_id: str, name: str = "a.txt", text: str = TEXT
) -> tuple[str, str]:
    document_id, batch = sim.add_document(dataset_id, name, text)
    clock.advance(10)
    return document_id, batch


# -- updates -----------------------------------------------------------------------------------


async def test_update_by_text_keeps_the_name_and_answers_the_original_batch(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    document_id, batch = await _ready_document(sim, clock, dataset_id, "notes.txt")
    updated = await client.update_document_by_text(dataset_id, document_id, text="Omega psi.")
    assert isinstance(updated, UpdatedDocument)
    assert (updated.document_id, updated.batch, updated.name) == (document_id, batch, "notes.txt")
    assert updated.indexing_status == "waiting"
    assert [r.route for r in sim.requests] == ["get_document", "update_by_text"]
    [update] = sim.requests_for(route="update_by_text")
    assert update.path.endswith(f"/documents/{document_id}/update-by-text")
    assert client.document_batch(dataset_id, document_id) == batch
    clock.advance(10)
    chunks = await client.retrieve(dataset_id, "omega", top_k=3)
    assert [c.content for c in chunks] == ["Omega psi."]
    assert await client.retrieve(dataset_id, "alpha", top_k=3) == []


async def test_update_input_errors_send_nothing(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    some = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
    with pytest.raises(ValueError, match="process_rule"):
        await client.update_document_by_text(dataset_id, some, name="renamed.txt")
    with pytest.raises(ValueError, match="UUID"):
        await client.update_document_by_text(dataset_id, "../x", text="t", name="n")
    with pytest.raises(TypeError):
        await client.update_document_by_text(dataset_id, some, text=b"bytes", name="n")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="file= or process_rule="):
        await client.update_document_by_file(dataset_id, some)
    assert sim.requests == []


async def test_update_of_an_indexing_document_is_a_typed_error(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    document_id, _ = sim.add_document(dataset_id, "busy.txt", TEXT)
    with pytest.raises(DifyDocumentNotAvailableError) as caught:
        await client.update_document_by_text(dataset_id, document_id, text="x", name="busy.txt")
    error = caught.value
    assert isinstance(error, DifyAPIError)
    assert (error.status, error.code, error.message) == (
        400,
        "invalid_param",
        "Document is not available",
    )
    assert len(sim.requests_for(route="update_by_text")) == 1  # not retried unasked


async def test_update_retries_a_busy_document_only_when_asked(
    sim: DifySimulator, fake_client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    document_id, _ = sim.add_document(dataset_id, "busy.txt", TEXT)
    updated = await fake_client.update_document_by_text(
        dataset_id, document_id, text="Kappa.", name="busy.txt", retry_unavailable=True
    )
    assert updated.document_id == document_id
    statuses = [r.status for r in sim.requests_for(route="update_by_text")]
    assert statuses[0] == 400 and statuses[-1] == 200
    # In between it watched the document instead of hammering the update route.
    assert len(statuses) == 2
    assert sim.requests_for(route="get_document")


async def test_retrying_gives_up_at_once_on_a_disabled_document(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    document_id, _ = await _ready_document(sim, clock, dataset_id)
    await client.disable_documents(dataset_id, [document_id])
    with pytest.raises(DifyDocumentNotAvailableError) as caught:
        await client.update_document_by_text(
            dataset_id, document_id, text="x", name="a.txt", retry_unavailable=True
        )
    assert "disabled" in str(caught.value)
    assert len(sim.requests_for(route="update_by_text")) == 1


async def test_retrying_a_paused_document_ends_at_its_timeout(
    sim: DifySimulator, fake_client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    document_id, _ = sim.add_document(
        dataset_id, "p.txt", TEXT, script=DocumentScript(pause_at="splitting")
    )
    with pytest.raises(DifyDocumentNotAvailableError, match=r"Still not available after 30s"):
        await fake_client.update_document_by_text(
            dataset_id,
            document_id,
            text="x",
            name="p.txt",
            retry_unavailable=True,
            retry_timeout=30,
        )


async def test_update_by_file_patches_and_keeps_a_given_name(
    sim: DifySimulator,
    clock: FakeClock,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
) -> None:
    document_id, batch = await _ready_document(sim, clock, dataset_id, "report.txt")
    renamed = await client.update_document_by_file(
        dataset_id, document_id, "Fresh résumé text.".encode(), filename="résumé v2.txt"
    )
    assert (renamed.batch, renamed.name) == (batch, "résumé v2.txt")  # raw UTF-8 name
    [patch] = sim.requests_for(route="update_by_file")
    assert (patch.method, patch.path) == (
        "PATCH",
        f"/v1/datasets/{dataset_id}/documents/{document_id}",
    )
    clock.advance(10)
    kept = await client.update_document_by_file(
        dataset_id, document_id, b"Third.", filename="v3.txt", name="report.txt"
    )
    assert kept.name == "report.txt"
    clock.advance(10)
    rechunked = await client.update_document_by_file(
        dataset_id, document_id, process_rule={"mode": "automatic"}
    )
    assert rechunked.name == "report.txt"
    clock.advance(10)
    with pytest.raises(DifyAPIError) as caught:
        await client.update_document_by_file(dataset_id, document_id, b"MZ", filename="x.exe")
    assert (caught.value.status, caught.value.code) == (415, "unsupported_file_type")


# -- document-scoped waits -----------------------------------------------------------------------


async def test_update_wait_is_scoped_to_the_document_not_its_batch(
    sim: DifySimulator, clock: FakeClock, base_url: str, dataset_id: str
) -> None:
    # A console upload: two documents in one batch; the second one is stuck indexing.
    first, batch = sim.add_document(dataset_id, "first.txt", TEXT)
    second, _ = sim.add_document(
        dataset_id, "second.txt", TEXT, batch=batch, script=DocumentScript(stall_at="indexing")
    )
    clock.advance(10)
    # The client waits on the simulator's clock, which only the test moves.
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, clock=clock, **FAST) as client:
        await _scoped_update_wait(sim, clock, client, dataset_id, first, second, batch)


async def _scoped_update_wait(
    sim: DifySimulator,
    clock: FakeClock,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    first: str,
    second: str,
    batch: str,
) -> None:
    updated = await client.update_document_by_text(dataset_id, first, text="New text.")
    assert updated.batch == batch
    waiter = asyncio.ensure_future(client.wait_for_documents(dataset_id, [updated]))
    await polls_until(sim, 1)
    await asyncio.sleep(0.01)
    assert not waiter.done()  # the updated document is still being re-indexed
    clock.advance(10)  # it finishes, and the wait's next poll is due
    status = await asyncio.wait_for(waiter, 5)
    assert [d.id for d in status.documents] == [first]
    assert status.is_completed and status.batch == batch
    # Every poll went to the document's batch; the batch as a whole is not ready.
    polls = sim.requests_for(route="indexing_status")
    assert polls and {p.path for p in polls} == {
        f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status"
    }
    whole = await client.get_indexing_status(dataset_id, batch)
    assert whole.document(second).indexing_status == "indexing"
    async with clock.autojump():
        with pytest.raises(IndexingTimeoutError):
            await client.wait_for_indexing(dataset_id, batch, timeout=30)


async def test_wait_for_documents_of_unknown_batch_watches_their_details(
    sim: DifySimulator, fake_client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    one, _ = sim.add_document(dataset_id, "one.txt", TEXT)
    two, _ = sim.add_document(dataset_id, "two.txt", TEXT)
    status = await fake_client.wait_for_documents(dataset_id, [two, one, two], timeout=60)
    assert [d.id for d in status.documents] == [two, one]
    assert status.is_completed
    assert sim.requests_for(route="indexing_status") == []
    assert {r.path.rsplit("/", 1)[-1] for r in sim.requests_for(route="get_document")} == {
        one,
        two,
    }


async def test_wait_for_documents_reports_a_deleted_document(
    sim: DifySimulator, fake_client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    kept, batch = sim.add_document(dataset_id, "kept.txt", TEXT)
    gone, _ = sim.add_document(dataset_id, "gone.txt", TEXT, batch=batch)
    sim.delete_document(dataset_id, gone)
    with pytest.raises(DifyNotFoundError, match="is not in batch"):
        await fake_client.wait_for_documents(
            dataset_id, [kept, gone], batch=batch, not_found_grace=5, timeout=60
        )
    with pytest.raises(DifyNotFoundError):
        await fake_client.wait_for_documents(dataset_id, gone, timeout=60)  # by detail: 404


async def test_wait_for_documents_validates_its_input(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(ValueError, match="empty"):
        await client.wait_for_documents(dataset_id, [])
    with pytest.raises(ValueError, match="UUID"):
        await client.wait_for_documents(dataset_id, ["nope"])
    with pytest.raises(TypeError, match="unexpected wait option"):
        await client.wait_for_documents(
            dataset_id,
            ["7789611a-7d24-4b75-ab16-a005f3cbd9b4"],
            colour="red",  # type: ignore[call-arg]
        )


@pytest.mark.slow  # the blocking client waits on its own loop thread, in real time
def test_blocking_client_updates_and_waits_scoped(
    sim: DifySimulator, clock: FakeClock, sync_client: DifyKnowledgeClient, ticker: None
) -> None:
    dataset_id = sim.create_dataset("sync")
    document_id, batch = sim.add_document(dataset_id, "s.txt", TEXT)
    sync_client.wait_for_documents(dataset_id, document_id, batch=batch, **QUICK)
    updated = sync_client.update_document_by_text(dataset_id, document_id, text="Sigma.")
    status = sync_client.wait_for_documents(dataset_id, [updated], **QUICK)
    assert status.is_completed and status.batch == batch
    assert sync_client.document_batch(dataset_id, document_id) == batch
    file_update = sync_client.update_document_by_file(
        dataset_id, document_id, b"Tau.", filename="t.txt", retry_unavailable=True
    )
    assert file_update.name == "t.txt"


# -- metadata --------------------------------------------------------------------------------


async def test_metadata_fields_are_created_on_demand_and_values_round_trip(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    a, _ = await _ready_document(sim, clock, dataset_id, "a.txt", "Ocelot alpha.")
    b, _ = await _ready_document(sim, clock, dataset_id, "b.txt", "Ocelot beta.")
    await client.set_documents_metadata(
        dataset_id, {a: {"team": "red", "priority": 5}, b: {"team": "blue"}}
    )
    fields = await client.list_metadata_fields(dataset_id)
    assert [(f.name, f.type, f.count) for f in fields.fields] == [
        ("team", "string", 2),
        ("priority", "number", 1),
    ]
    entries = await client.get_document_metadata(dataset_id, a)
    assert [(e.name, e.typed_value) for e in entries if not e.is_built_in] == [
        ("team", "red"),
        ("priority", 5),
    ]
    listing = await client.list_documents(dataset_id)
    item = next(d for d in listing.data if d.id == a)
    assert item.model_extra is not None
    assert {e["name"]: e["value"] for e in item.model_extra["doc_metadata"]}["priority"] == "5"
    # Creating again reuses what exists; a partial update merges.
    await client.set_document_metadata(dataset_id, b, {"priority": 1.5}, partial_update=True)
    merged = await client.get_document_metadata(dataset_id, b)
    assert {e.name: e.value for e in merged if not e.is_built_in} == {
        "team": "blue",
        "priority": 1.5,
    }
    assert len(sim.requests_for(route="metadata_fields", method="POST")) == 2
    red = await client.retrieve(dataset_id, "ocelot", top_k=5, metadata_filter={"team": "red"})
    assert {c.document_id for c in red} == {a}
    high = await client.retrieve(
        dataset_id, "ocelot", metadata_filter={"$or": [{"priority": {"$gt": 4}}, {"team": "blue"}]}
    )
    assert {c.document_id for c in high} == {a, b}


async def test_metadata_field_lifecycle_and_input_errors(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    a, _ = await _ready_document(sim, clock, dataset_id)
    field = await client.create_metadata_field(dataset_id, "tag", "string")
    with pytest.raises(DifyAPIError, match="Metadata name already exists"):
        await client.create_metadata_field(dataset_id, "tag")
    with pytest.raises(ValueError, match="built-in"):
        await client.create_metadata_field(dataset_id, "source")
    with pytest.raises(ValueError, match="type"):
        await client.create_metadata_field(dataset_id, "flag", "boolean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strings and numbers"):
        await client.set_document_metadata(dataset_id, a, {"flag": True})
    with pytest.raises(ValueError, match="no metadata field named missing"):
        await client.set_document_metadata(dataset_id, a, {"missing": "x"}, create_fields=False)
    await client.create_metadata_field(dataset_id, "rank", "number")
    with pytest.raises(ValueError, match="number field"):
        await client.set_document_metadata(dataset_id, a, {"rank": "high"})
    await client.set_document_metadata(dataset_id, a, {"tag": 7})  # fits a string field
    tagged = await client.get_document_metadata(dataset_id, a)
    assert (tagged[0].name, tagged[0].value) == ("tag", "7")
    renamed = await client.rename_metadata_field(dataset_id, field.id, "label")
    assert renamed.name == "label"
    await client.delete_metadata_field(dataset_id, field.id)
    await client.delete_metadata_field(dataset_id, field.id)  # 204 again
    assert await client.get_document_metadata(dataset_id, a) == []
    assert "source" in await client.list_builtin_metadata_fields(dataset_id)
    await client.set_builtin_metadata(dataset_id, True)
    assert (await client.list_metadata_fields(dataset_id)).built_in_field_enabled
    by_name = await client.retrieve(dataset_id, "alpha", metadata_filter={"document_name": "a.txt"})
    assert {c.document_id for c in by_name} == {a}


def test_metadata_filter_translation() -> None:
    assert metadata_conditions({"a": "x", "n": 2}) == {
        "logical_operator": "and",
        "conditions": [
            {"name": "a", "comparison_operator": "is", "value": "x"},
            {"name": "n", "comparison_operator": "=", "value": 2},
        ],
    }
    ops = metadata_conditions(
        {"n": {"$gte": 1, "$lt": 9, "$ne": 3}, "t": {"$in": ["a"], "$exists": True}, "z": None},
        field_name=lambda key: f"lc_{key}",
    )["conditions"]
    assert [(c["name"], c["comparison_operator"], c.get("value")) for c in ops] == [
        ("lc_n", "≥", 1),
        ("lc_n", "<", 9),
        ("lc_n", "≠", 3),
        ("lc_t", "in", ["a"]),
        ("lc_t", "not empty", None),
        ("lc_z", "empty", None),
    ]
    native = {
        "logical_operator": "or",
        "conditions": [{"name": "a", "comparison_operator": "is", "value": "x"}],
    }
    assert metadata_conditions(native) == native
    for bad in (
        {"flag": True},
        {"a": {"$regex": "x"}},
        {"$and": [{"$or": [{"a": 1}]}]},
        {"$and": [{"a": 1}], "b": 2},
        {"a": {"$in": "abc"}},
        {"logical_operator": "and", "conditions": [{"name": "a", "comparison_operator": "eq"}]},
        {},
    ):
        with pytest.raises(ValueError):
            metadata_conditions(bad)


# -- segments --------------------------------------------------------------------------------


async def test_segments_list_page_filter_and_detail(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    text = "\n\n".join(f"Paragraph {i} lynx{i % 2}." for i in range(5))
    document_id, _ = await _ready_document(sim, clock, dataset_id, "s.txt", text)
    page = await client.list_segments(dataset_id, document_id, limit=2)
    assert [s.position for s in page.data] == [1, 2] and page.total == 5 and page.has_more
    odd = await client.list_segments(dataset_id, document_id, keyword="LYNX1")
    assert [s.position for s in odd.data] == [2, 4]
    done = await client.list_segments(dataset_id, document_id, status=["completed", "waiting"])
    assert done.total == 5
    every = await client.all_segments(dataset_id, document_id)
    assert [s.content for s in every] == text.split("\n\n")
    one = await client.get_segment(dataset_id, document_id, every[0].id)
    assert (one.id, one.enabled, one.status) == (every[0].id, True, "completed")
    with pytest.raises(ValueError, match="500"):
        await client.list_segments(dataset_id, document_id, status="bogus")
    with pytest.raises(ValueError):
        await client.list_segments(dataset_id, document_id, limit=101)
    with pytest.raises(DifyNotFoundError, match="Segment not found"):
        await client.get_segment(dataset_id, document_id, "7789611a-7d24-4b75-ab16-a005f3cbd9b4")


# -- enable / disable / archive ----------------------------------------------------------------


async def test_disabled_and_archived_documents_leave_retrieval(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    a, _ = await _ready_document(sim, clock, dataset_id, "a.txt", "Jaguar one.")
    b, _ = await _ready_document(sim, clock, dataset_id, "b.txt", "Jaguar two.")
    await client.disable_documents(dataset_id, [a])
    with pytest.raises(DifyDocumentNotAvailableError, match="please try again later"):
        await client.enable_documents(dataset_id, [a])  # the status change still holds its lock
    clock.advance(1)
    assert {c.document_id for c in await client.retrieve(dataset_id, "jaguar")} == {b}
    assert (await client.get_document(dataset_id, a)).display_status == "disabled"
    await client.archive_documents(dataset_id, b)
    clock.advance(1)
    assert await client.retrieve(dataset_id, "jaguar") == []
    with pytest.raises(DifyAPIError) as caught:
        await client.delete_document(dataset_id, b)
    assert (caught.value.status, caught.value.code) == (403, "archived_document_immutable")
    await client.unarchive_documents(dataset_id, [b])
    clock.advance(1)
    await client.enable_documents(dataset_id, [a], retry_unavailable=True)
    clock.advance(1)
    assert {c.document_id for c in await client.retrieve(dataset_id, "jaguar")} == {a, b}
    await client.set_documents_status(dataset_id, "disable", [])  # nothing to send
    with pytest.raises(ValueError, match="action"):
        await client.set_documents_status(dataset_id, "pause", [a])  # type: ignore[arg-type]


async def test_status_change_is_retried_through_the_short_lock(
    sim: DifySimulator, fake_client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    client = fake_client
    a, _ = sim.add_document(dataset_id, "a.txt", TEXT)
    await client.wait_for_documents(dataset_id, a, timeout=60)
    await client.disable_documents(dataset_id, [a])
    await client.enable_documents(dataset_id, [a], retry_unavailable=True, retry_timeout=30)
    statuses = [r.status for r in sim.requests_for(route="document_status")]
    assert statuses[0] == 200 and statuses[-1] == 200


async def test_a_refused_change_is_retried_after_the_clients_backoff_on_its_clock(
    sim: DifySimulator, base_url: str, fake_clock: FakeClock, dataset_id: str
) -> None:
    # The policy's first backoff (equal jitter: 1 to 2 s here) outlasts the 0.3 s lock a
    # status change holds, so one retry, timed on the client's clock, goes through.
    async with (
        AsyncDifyKnowledgeClient(
            sim.api_key, base_url, clock=fake_clock, backoff_base=2.0, backoff_max=2.0
        ) as client,
        fake_clock.autojump(),
    ):
        a, _ = sim.add_document(dataset_id, "a.txt", TEXT)
        await client.wait_for_documents(dataset_id, a, timeout=60)
        await client.disable_documents(dataset_id, [a])
        sim.clear_requests()
        await client.enable_documents(dataset_id, [a], retry_unavailable=True, retry_timeout=30)
    refused, accepted = sim.requests_for(route="document_status")
    assert (refused.status, accepted.status) == (400, 200)
    assert accepted.at - refused.at >= 1.0


def test_blocking_client_metadata_segments_and_status(
    sim: DifySimulator, clock: FakeClock, sync_client: DifyKnowledgeClient
) -> None:
    dataset_id = sim.create_dataset("sync-meta")
    document_id, _ = sim.add_document(dataset_id, "m.txt", "Lemur text.")
    clock.advance(10)
    field = sync_client.create_metadata_field(dataset_id, "kind")
    assert sync_client.ensure_metadata_fields(dataset_id, {"kind": "string"})["kind"].id == field.id
    sync_client.set_document_metadata(dataset_id, document_id, {"kind": "note"})
    sync_client.set_documents_metadata(dataset_id, {document_id: {"kind": "memo"}})
    memo = sync_client.get_document_metadata(dataset_id, document_id)
    assert memo[0].value == "memo"
    assert sync_client.list_metadata_fields(dataset_id).by_name("kind") is not None
    sync_client.rename_metadata_field(dataset_id, field.id, "sort")
    assert "uploader" in sync_client.list_builtin_metadata_fields(dataset_id)
    sync_client.set_builtin_metadata(dataset_id, False)
    [segment] = sync_client.all_segments(dataset_id, document_id)
    assert sync_client.get_segment(dataset_id, document_id, segment.id).content == "Lemur text."
    assert sync_client.list_segments(dataset_id, document_id).total == 1
    hits = sync_client.retrieve(dataset_id, "lemur", metadata_filter={"sort": "memo"})
    assert [h.document_id for h in hits] == [document_id]
    sync_client.disable_documents(dataset_id, document_id)
    clock.advance(1)
    sync_client.enable_documents(dataset_id, [document_id])
    clock.advance(1)
    sync_client.archive_documents(dataset_id, [document_id])
    clock.advance(1)
    sync_client.unarchive_documents(dataset_id, [document_id])
    sync_client.delete_metadata_field(dataset_id, field.id)
    assert sync_client.get_document_metadata(dataset_id, document_id) == []
