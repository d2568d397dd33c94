"""The pending ledger: uploads survive restarts; waits resume; many processes share a file."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.backends.ledger import (
    Ledger,
    Outcome,
    SQLiteLedger,
    default_ledger_path,
    ledger_scope,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript

from .processes import run_all

QUICK = {"poll_interval": 0.01, "max_poll_interval": 0.05}


@pytest.fixture
def sim() -> DifySimulator:
    simulator = DifySimulator(time_scale=0.02)
    simulator.create_dataset("ledger")
    return simulator


@pytest.fixture
def served(sim: DifySimulator) -> Iterator[str]:
    with sim.serve_in_thread() as base_url:
        yield base_url


@pytest.fixture(params=["sqlite", "redis"])
def ledger_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger location both backends are tested through: a file path or a Redis URL."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    # Each test serves its own simulator (a new port), so its ledger scope is its own.
    redis_url: str = request.getfixturevalue("redis_url")
    return redis_url


@pytest.fixture
async def client(
    sim: DifySimulator, served: str, ledger_spec: str
) -> AsyncIterator[AsyncDifyKnowledgeClient]:
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=ledger_spec) as value:
        yield value


def scope_of(client: AsyncDifyKnowledgeClient) -> str:
    return ledger_scope(client.base_url, client.api_key.get_secret_value())


async def test_every_upload_is_recorded_with_its_name_hash_and_time(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient
) -> None:
    before = time.time()
    text_doc = await client.create_document_by_text(sim.dataset_id, "notes.txt", "alpha")
    file_doc = await client.create_document_by_file(sim.dataset_id, b"beta", filename="b.md")
    assert client.ledger is not None
    entries = await client.ledger.pending(scope_of(client), sim.dataset_id)
    by_name = {entry.name: entry for entry in entries}
    assert set(by_name) == {"notes.txt", "b.md"}
    assert by_name["notes.txt"].content_hash == hashlib.sha256(b"alpha").hexdigest()
    assert by_name["b.md"].content_hash == hashlib.sha256(b"beta").hexdigest()
    assert (by_name["notes.txt"].batch, by_name["notes.txt"].document_id) == (
        text_doc.batch,
        text_doc.document_id,
    )
    assert by_name["b.md"].document_id == file_doc.document_id
    assert all(before - 5 <= entry.uploaded_at <= time.time() + 5 for entry in entries)
    assert all(entry.state == "pending" and entry.is_pending for entry in entries)


async def test_a_fresh_client_resumes_what_a_closed_one_left_pending(
    sim: DifySimulator, served: str, ledger_spec: str
) -> None:
    sim.script("broken.pdf", DocumentScript(fail_at="parsing", error="PDFium: Data format error"))
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=ledger_spec) as first:
        good = [
            await first.create_document_by_text(sim.dataset_id, f"{i}.txt", "alpha")
            for i in range(3)
        ]
        await first.create_document_by_file(sim.dataset_id, b"%PDF", filename="broken.pdf")
    # "After a restart": a new client knows nothing in memory, only the ledger.
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=ledger_spec) as second:
        assert second.pending_batches(sim.dataset_id) == []
        statuses = await second.wait_for_pending(timeout=20, **QUICK)
        assert sorted(status.verdict for status in statuses) == ["failed", *["ready"] * 3]
        assert {s.batch for s in statuses if s.is_completed} == {doc.batch for doc in good}
        assert second.ledger is not None
        scope = scope_of(second)
        assert await second.ledger.pending(scope) == []
        latest = await second.ledger.latest(scope, sim.dataset_id)
        assert latest["broken.pdf"].state == "error"
        assert latest["broken.pdf"].error == "PDFium: Data format error"
        assert {latest[f"{i}.txt"].state for i in range(3)} == {"completed"}
        assert await second.wait_for_pending(timeout=5) == []


async def test_re_uploading_a_name_supersedes_its_older_entry(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient
) -> None:
    first = await client.create_document_by_text(sim.dataset_id, "same.txt", "v1")
    second = await client.create_document_by_text(sim.dataset_id, "same.txt", "v2")
    assert first.document_id == second.document_id and first.batch != second.batch
    assert client.ledger is not None
    pending = await client.ledger.pending(scope_of(client))
    assert [(entry.batch, entry.content_hash) for entry in pending] == [
        (second.batch, hashlib.sha256(b"v2").hexdigest())
    ]
    [status] = await client.wait_for_pending(timeout=20, **QUICK)
    assert status.batch == second.batch and status.is_completed


async def test_a_batch_dify_no_longer_knows_is_marked_missing_instead_of_waited_on(
    sim: DifySimulator, served: str, ledger_spec: str
) -> None:
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=ledger_spec) as first:
        gone = await first.create_document_by_text(sim.dataset_id, "gone.txt", "alpha")
        kept = await first.create_document_by_text(sim.dataset_id, "kept.txt", "alpha")
    sim.delete_document(sim.dataset_id, gone.document_id)
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=ledger_spec) as second:
        statuses = await second.wait_for_pending(timeout=20, not_found_grace=0, **QUICK)
        assert [status.batch for status in statuses] == [kept.batch]
        assert second.ledger is not None
        latest = await second.ledger.latest(scope_of(second), sim.dataset_id)
    assert (latest["gone.txt"].state, latest["gone.txt"].error) == (
        "missing",
        "Documents not found.",
    )


async def test_entries_belong_to_their_server_and_key(
    sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    other = DifySimulator(["dataset-other-key"], time_scale=0.02)
    other.create_dataset("other")
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=path) as mine:
        await mine.create_document_by_text(sim.dataset_id, "mine.txt", "alpha")
    async with (
        other.serve() as other_url,
        AsyncDifyKnowledgeClient(other.api_key, other_url, ledger=path) as theirs,
    ):
        assert await theirs.wait_for_pending(timeout=5) == []  # nothing of theirs pending
    ledger = SQLiteLedger(path)
    rows = await ledger.pending(ledger_scope(served, sim.api_key))
    await ledger.aclose()
    assert [row.name for row in rows] == ["mine.txt"]
    raw = path.read_bytes()
    assert sim.api_key.encode() not in raw  # a one-way fingerprint, never the key


async def test_a_datasets_pending_uploads_are_resumed_and_the_gate_asks_for_its_own(
    sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=path) as first:
        created = await first.create_document_by_text(sim.dataset_id, "a.txt", "alpha")
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=path) as second:
        # The retrievers' gate: this client's own uploads only.
        assert await second.wait_for_pending(sim.dataset_id, durable=False) == []
        # A crash-resume for one knowledge base: the ledger's entries for it (was: []).
        [status] = await second.wait_for_pending(sim.dataset_id, **QUICK)
    assert status.batch == created.batch and status.is_completed


def test_the_blocking_client_resumes_too(sim: DifySimulator, served: str, tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with DifyKnowledgeClient(sim.api_key, served, ledger=path) as first:
        created = first.create_document_by_text(sim.dataset_id, "a.txt", "alpha")
    with DifyKnowledgeClient(sim.api_key, served, ledger=path) as second:
        [status] = second.wait_for_pending(timeout=20, **QUICK)
    assert status.batch == created.batch and status.is_completed


def test_processes_share_one_ledger(sim: DifySimulator, served: str, ledger_spec: str) -> None:
    base = {"command": "upload", "base_url": served, "key": sim.api_key,
            "dataset": sim.dataset_id, "n": 10, "ledger": ledger_spec}  # fmt: skip
    uploads = run_all([{**base, "prefix": f"w{i}"} for i in range(4)])
    assert sum(answer["created"] for answer in uploads) == 40
    # A restarted worker (another process) resumes all of them; a second finds nothing left.
    resume = {"command": "resume", "base_url": served, "key": sim.api_key, "ledger": ledger_spec}
    first, second = run_all([resume]), run_all([resume])
    assert first == [{"completed": 40, "failed": 0}]
    assert second == [{"completed": 0, "failed": 0}]


def test_processes_resuming_at_the_same_time_share_the_work(
    sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    path = str(tmp_path / "ledger.db")
    base = {"command": "upload", "base_url": served, "key": sim.api_key,
            "dataset": sim.dataset_id, "n": 15, "ledger": path, "prefix": "x"}  # fmt: skip
    run_all([base])
    resume = {"command": "resume", "base_url": served, "key": sim.api_key, "ledger": path}
    answers = run_all([resume] * 3)
    # Whoever read an entry as pending waited for it; every entry was seen finish by one of
    # them, and the file stays consistent under concurrent writers.
    assert all(0 <= answer["completed"] <= 15 for answer in answers)
    assert sum(answer["completed"] for answer in answers) >= 15
    with sqlite3.connect(path) as db:
        states = dict(db.execute("SELECT state, count(*) FROM uploads GROUP BY state").fetchall())
    assert states == {"completed": 15}


async def test_a_ledger_that_cannot_be_written_never_fails_an_upload(
    sim: DifySimulator, served: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, "dify_ingest_tools"):
        async with AsyncDifyKnowledgeClient(
            sim.api_key, served, ledger=blocker / "ledger.db"
        ) as client:
            for i in range(3):
                await client.create_document_by_text(sim.dataset_id, f"{i}.txt", "alpha")
            statuses = await client.wait_for_pending(timeout=20, **QUICK)
    assert len(statuses) == 3  # the in-memory record still works
    warnings = [r.getMessage() for r in caplog.records if "pending ledger" in r.getMessage()]
    assert len(warnings) == 1  # once, then the ledger is left alone for a while
    assert sim.api_key not in warnings[0]


def test_the_ledger_can_be_turned_off_or_moved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert AsyncDifyKnowledgeClient("k", ledger=False).ledger is None
    monkeypatch.setenv("DIFY_INGEST_LEDGER", "off")
    assert AsyncDifyKnowledgeClient("k").ledger is None
    monkeypatch.setenv("DIFY_INGEST_LEDGER", str(tmp_path / "x.db"))
    ledger = AsyncDifyKnowledgeClient("k").ledger
    assert isinstance(ledger, SQLiteLedger) and ledger.path == tmp_path / "x.db"
    assert isinstance(ledger, Ledger)
    monkeypatch.delenv("DIFY_INGEST_LEDGER")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    default = AsyncDifyKnowledgeClient("k").ledger
    assert isinstance(default, SQLiteLedger)
    assert default.path == tmp_path / "cache" / "dify-ingest-tools" / "ledger.sqlite3"
    assert default.path == default_ledger_path()
    with pytest.raises(TypeError, match="ledger must be"):
        AsyncDifyKnowledgeClient("k", ledger=42)  # type: ignore[arg-type]


async def test_a_file_from_a_newer_version_is_refused_with_a_clear_message(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    ledger = SQLiteLedger(path)
    with pytest.raises(RuntimeError, match="newer dify-ingest-tools"):
        await ledger.pending("scope")
    await ledger.aclose()


async def test_old_settled_entries_are_pruned_and_pending_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = SQLiteLedger(path)
    for batch in ("old-done", "old-pending"):
        await ledger.record(
            "s", dataset_id="d", batch=batch, document_id=batch, name=batch, content_hash=None
        )
    await ledger.settle("s", "d", "old-done", [Outcome("old-done", "completed")])
    await ledger.aclose()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE uploads SET updated_at = updated_at - 90 * 86400")
    reopened = SQLiteLedger(path, retention_days=30)
    assert [e.batch for e in (await reopened.latest("s", "d")).values()] == ["old-pending"]
    await reopened.aclose()
