"""The ledger is private: its folder 0700, its file 0600, Dify's error texts redacted and cut."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient
from dify_ingest_tools.backends.ledger import SQLiteLedger, default_ledger_path
from dify_ingest_tools.testing import DifySimulator, DocumentScript

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "getuid"), reason="POSIX file modes")

QUICK = {"poll_interval": 0.01, "max_poll_interval": 0.05}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def sim() -> DifySimulator:
    simulator = DifySimulator(time_scale=0.02)
    simulator.create_dataset("ledger")
    return simulator


@pytest.fixture
def served(sim: DifySimulator) -> Iterator[str]:
    with sim.serve_in_thread() as base_url:
        yield base_url


async def test_a_new_ledger_is_created_owner_only(
    sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    path = tmp_path / "state" / "nested" / "ledger.db"
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=str(path)) as client:
        await client.create_document_by_text(sim.dataset_id, "a.txt", "alpha")
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    for companion in path.parent.glob("ledger.db-*"):
        assert mode(companion) & 0o077 == 0, companion


async def test_an_existing_world_readable_ledger_is_made_private_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = default_ledger_path()
    path.parent.mkdir(parents=True)
    path.parent.chmod(0o755)
    sqlite3.connect(path).close()
    path.chmod(0o644)
    ledger = SQLiteLedger()  # the default location: its folder is the ledger's own
    await ledger.pending("scope")
    await ledger.aclose()
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)


async def test_a_ledger_in_a_shared_folder_leaves_the_folder_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    ledger = SQLiteLedger(shared / "ledger.db")
    await ledger.pending("scope")
    await ledger.aclose()
    assert mode(shared) == 0o755  # not ours to lock others out of
    assert mode(shared / "ledger.db") == 0o600


async def test_dify_error_text_is_stored_redacted_escaped_and_cut(
    sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    hostile = f"\x1b[2J\x07boom {sim.api_key} " + "x" * 5000
    sim.script("broken.pdf", DocumentScript(fail_at="parsing", error=hostile))
    path = tmp_path / "ledger.db"
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=str(path)) as client:
        created = await client.create_document_by_file(
            sim.dataset_id, b"%PDF", filename="broken.pdf"
        )
        status = await client.wait_for_indexing(
            sim.dataset_id, created.batch, timeout=20, raise_on_error=False, **QUICK
        )
        assert status.is_failed
    with sqlite3.connect(path) as db:
        [(state, error)] = db.execute("SELECT state, error FROM uploads").fetchall()
    assert state == "error"
    assert sim.api_key not in error and "[redacted]" in error
    assert "\x1b" not in error and "\x07" not in error and "\\x1b[2J\\x07boom" in error
    assert len(error) <= 500
