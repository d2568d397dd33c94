"""``sync`` touches only what it owns: the knowledge base is its manifest, deletions are guarded.

Every test runs the real CLI (in-process ``main`` or a child process) against the simulator
over loopback HTTP, on a knowledge base that also holds other people's documents.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.backends.ledger import SQLiteLedger
from dify_ingest_tools.cli import main
from dify_ingest_tools.folder_sync.plan import SyncItem
from dify_ingest_tools.folder_sync.sync import list_all, sync_folder
from dify_ingest_tools.models.ownership import HASH_FIELD, OWNER_FIELD, SOURCE_FIELD, Mark
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault

from .processes import ROOT
from .redis_server import RedisServer

WRITES = ("create_by_file", "create_by_text", "delete_document", "documents_metadata")


@pytest.fixture
def sim() -> DifySimulator:
    simulator = DifySimulator(time_scale=0.02)
    simulator.create_dataset("shared")
    return simulator


@pytest.fixture
def served(sim: DifySimulator) -> Iterator[str]:
    with sim.serve_in_thread() as base_url:
        yield base_url


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "a.md").write_text("alpha")
    (root / "b.md").write_text("beta")
    (root / "guides" / "setup.md").write_text("setup steps")
    return root


def cli(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path, *extra: str
) -> tuple[int, dict[str, object], str]:
    argv = ["sync", str(folder), "--dataset", sim.dataset_id, "--json", "--no-progress",
            "--api-key", sim.api_key, "--base-url", served, *extra]  # fmt: skip
    if "--ledger" not in extra:
        argv += ["--ledger", str(folder.parent / "ledger.db")]
    code = main(argv)
    captured = capsys.readouterr()
    report = json.loads(captured.out) if captured.out.strip().startswith("{") else {}
    return code, report, captured.err


def documents(sim: DifySimulator, served: str) -> dict[str, tuple[str, Mark]]:
    with DifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        listing = client.list_documents(sim.dataset_id)
    return {doc.name: (doc.id, Mark.of(doc)) for doc in listing.data}


def writes(sim: DifySimulator) -> int:
    return sum(len(sim.requests_for(route)) for route in WRITES)


def foreign(sim: DifySimulator, served: str, name: str, text: str = "someone else's") -> str:
    with DifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        return client.create_document_by_text(sim.dataset_id, name, text).document_id


def test_synced_documents_carry_owner_source_and_hash_in_dify_metadata(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    code, report, _ = cli(capsys, sim, served, docs, "--owner", "handbook")
    assert code == 0, report
    marks = {name: mark for name, (_, mark) in documents(sim, served).items()}
    assert marks["guides__setup.md"].owner == "handbook"
    assert marks["guides__setup.md"].source == "guides/setup.md"
    assert marks["a.md"].content_hash is not None and len(marks["a.md"].content_hash) == 64
    # All the marks went out in one metadata request, whatever the number of files.
    assert len(sim.requests_for("documents_metadata")) == 1
    with DifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        fields = {f.name for f in client.list_metadata_fields(sim.dataset_id).fields}
    assert {OWNER_FIELD, SOURCE_FIELD, HASH_FIELD} <= fields


def test_the_owner_defaults_to_the_folders_name(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    code, report, _ = cli(capsys, sim, served, docs)
    assert (code, report["owner"]) == (0, "docs")
    assert {mark.owner for _, mark in documents(sim, served).values()} == {"docs"}


def test_a_second_run_from_a_fresh_home_uploads_nothing(
    sim: DifySimulator, served: str, docs: Path, tmp_path: Path
) -> None:
    # Two machines: each its own HOME (so its own default ledger); only Dify is shared.
    def run(home: Path) -> tuple[int, dict[str, object]]:
        env = {**os.environ, "HOME": str(home), "DIFY_API_KEY": sim.api_key,
               "DIFY_API_BASE_URL": served}  # fmt: skip
        env.pop("XDG_CACHE_HOME", None)
        env.pop("DIFY_INGEST_LEDGER", None)
        done = subprocess.run(
            [sys.executable, "-m", "dify_ingest_tools.cli", "sync", str(docs), "--dataset",
             sim.dataset_id, "--json", "--no-progress"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return done.returncode, json.loads(done.stdout)

    assert run(tmp_path / "laptop")[0] == 0
    sim.clear_requests()
    code, report = run(tmp_path / "ci-runner")
    assert code == 0
    assert sorted(report["skipped"]) == ["a.md", "b.md", "guides__setup.md"]  # type: ignore[arg-type]
    assert writes(sim) == 0
    assert {r.route for r in sim.requests} == {"list_documents"}


def test_an_empty_folder_with_delete_is_refused_and_deletes_nothing(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    assert cli(capsys, sim, served, docs)[0] == 0
    for path in [docs / "a.md", docs / "b.md", docs / "guides" / "setup.md"]:
        path.unlink()  # an unmounted mount point looks like this
    sim.clear_requests()
    code, _, err = cli(capsys, sim, served, docs, "--delete")
    assert code == 2
    assert "refusing to delete all 3 documents owned by 'docs'" in err
    assert "nothing was written" in err and err.count("\n") == 1
    assert writes(sim) == 0 and len(documents(sim, served)) == 3
    code, report, _ = cli(capsys, sim, served, docs, "--delete", "--force")
    assert code == 0 and sorted(report["deleted"]) == ["a.md", "b.md", "guides__setup.md"]  # type: ignore[arg-type]


def test_deleting_more_than_the_limit_needs_max_delete_or_force(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    for i in range(7):
        (docs / f"n{i}.md").write_text(f"note {i}")
    assert cli(capsys, sim, served, docs)[0] == 0  # 10 owned documents
    for i in range(3):
        (docs / f"n{i}.md").unlink()
    code, _, err = cli(capsys, sim, served, docs, "--delete")
    assert code == 2 and "refusing to delete 3 of 10" in err and "--max-delete 3" in err
    code, report, _ = cli(capsys, sim, served, docs, "--delete", "--max-delete", "3")
    assert code == 0 and sorted(report["deleted"]) == ["n0.md", "n1.md", "n2.md"]  # type: ignore[arg-type]


def test_files_left_out_by_include_are_out_of_scope_not_removed(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    assert cli(capsys, sim, served, docs)[0] == 0
    sim.clear_requests()
    code, report, _ = cli(capsys, sim, served, docs, "--include", "a*", "--delete")
    assert code == 0
    assert report["deleted"] == [] and report["skipped"] == ["a.md"]
    assert len(sim.requests_for("delete_document")) == 0
    assert set(documents(sim, served)) == {"a.md", "b.md", "guides__setup.md"}


def test_delete_never_touches_other_owners_uploads_or_peoples_documents(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path, tmp_path: Path
) -> None:
    foreign(sim, served, "console-notes.md")  # a person's upload: no owner tag
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.md").write_text("another folder's file")
    assert cli(capsys, sim, served, other)[0] == 0  # owner "other"
    upload = ["upload", "--dataset", sim.dataset_id, "--api-key", sim.api_key,
              "--base-url", served, str(docs / "b.md")]  # fmt: skip
    assert main(upload) == 0  # `upload` of a file of the same folder: not sync's
    capsys.readouterr()
    (docs / "b.md").unlink()
    code, report, _ = cli(capsys, sim, served, docs, "--delete")
    # b.md's document is the upload's (no owner tag): a conflict-free delete of nothing.
    assert code == 0 and report["deleted"] == []
    assert {"console-notes.md", "o.md", "b.md"} <= set(documents(sim, served))


def test_a_document_of_the_same_name_that_is_not_ours_is_left_untouched(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    theirs = foreign(sim, served, "a.md", "the team's own a.md")
    code, report, _ = cli(capsys, sim, served, docs)
    assert code == 4  # not everything is synced: the report says why
    [conflict] = report["conflicts"]  # type: ignore[misc]
    assert conflict["name"] == "a.md" and "no owner tag" in conflict["reason"]
    doc_id, mark = documents(sim, served)["a.md"]
    assert (doc_id, mark) == (theirs, Mark())
    assert not [r for r in sim.requests_for("create_by_file") if "a.md" in r.path]
    # --adopt claims it in so many words: then it is updated and marked.
    code, report, _ = cli(capsys, sim, served, docs, "--adopt")
    assert code == 0 and report["updated"] == ["a.md"]
    assert documents(sim, served)["a.md"][1].owner == "docs"


def test_another_owners_document_is_a_conflict_even_with_adopt(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.md").write_text("the mirror's a.md")
    assert cli(capsys, sim, served, mirror)[0] == 0
    code, report, _ = cli(capsys, sim, served, docs, "--adopt")
    assert code == 4
    assert [c["name"] for c in report["conflicts"]] == ["a.md"]  # type: ignore[attr-defined]
    assert "belongs to owner 'mirror'" in report["conflicts"][0]["reason"]  # type: ignore[index]
    assert documents(sim, served)["a.md"][1].owner == "mirror"


def test_dry_run_prints_the_plan_per_file_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    assert cli(capsys, sim, served, docs)[0] == 0
    (docs / "a.md").write_text("alpha, edited")
    (docs / "c.md").write_text("gamma")
    (docs / "b.md").unlink()
    foreign(sim, served, "c.md")
    sim.clear_requests()
    argv = ["sync", str(docs), "--dataset", sim.dataset_id, "--api-key", sim.api_key,
            "--base-url", served, "--no-progress", "--delete", "--dry-run",
            "--ledger", str(docs.parent / "ledger.db")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing written" in out
    assert "  update   a.md  (changed)" in out
    assert "  delete   b.md" in out
    assert "  conflict c.md  (the name belongs to a document with no owner tag" in out
    assert "  skip     guides__setup.md  (unchanged)" in out
    assert writes(sim) == 0


def test_symlinks_are_not_followed_and_never_out_of_the_folder(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "credentials").write_text("password=hunter2")
    (docs / "notes.md").symlink_to(outside / "credentials")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    (docs / "inside.md").symlink_to(docs / "a.md")
    code, report, _ = cli(capsys, sim, served, docs)
    assert code == 0
    left = {item["name"]: item["reason"] for item in report["left_out"]}  # type: ignore[attr-defined]
    assert set(left) == {"notes.md", "linked", "inside.md"}
    assert all("symlink" in reason for reason in left.values())
    code, report, _ = cli(capsys, sim, served, docs, "--follow-symlinks")
    assert code == 0 and report["uploaded"] == ["inside.md"]
    left = {item["name"]: item["reason"] for item in report["left_out"]}  # type: ignore[attr-defined]
    assert "outside the folder" in left["notes.md"] and "outside the folder" in left["linked"]
    assert "credentials" not in str(documents(sim, served))
    with DifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        assert not client.retrieve(sim.dataset_id, "hunter2", top_k=5)


def test_a_fifo_is_left_out_instead_of_blocking_the_run(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    os.mkfifo(docs / "pipe.md")
    code, report, _ = cli(capsys, sim, served, docs)
    assert code == 0
    assert report["left_out"] == [{"name": "pipe.md", "reason": "not a regular file"}]


def test_a_file_over_the_upload_limit_is_left_out_before_any_request(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    (docs / "big.pdf").write_bytes(b"x" * 2048)
    code, report, _ = cli(capsys, sim, served, docs, "--max-file-size", "1K")
    assert code == 0
    [left] = report["left_out"]  # type: ignore[misc]
    assert left["name"] == "big.pdf" and "over the upload limit of 1024 bytes" in left["reason"]
    assert not [r for r in sim.requests_for("create_by_file") if "big" in r.path]
    with pytest.raises(SystemExit) as usage:
        main(["sync", str(docs), "--dataset", sim.dataset_id, "--max-file-size", "-3"])
    assert usage.value.code == 2


async def test_a_file_deleted_mid_run_is_reported_and_the_run_goes_on(
    sim: DifySimulator, served: str, docs: Path
) -> None:
    def delete_one(items: list[SyncItem]) -> None:
        (docs / "b.md").unlink()  # after the folder was read, before the upload

    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        report = await sync_folder(client, docs, sim.dataset_id, on_plan=delete_one, timeout=30)
    assert report.vanished == ["b.md"]
    assert sorted(report.uploaded) == ["a.md", "guides__setup.md"]
    assert not report.ok


async def test_a_file_that_changes_while_it_is_read_is_reported(
    sim: DifySimulator, served: str, docs: Path
) -> None:
    def grow(items: list[SyncItem]) -> None:
        with (docs / "a.md").open("a") as handle:
            handle.write(" and more")  # after hashing, before the upload's check

    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        report = await sync_folder(client, docs, sim.dataset_id, on_plan=grow, timeout=30)
        assert report.changed == ["a.md"]
        # Marked as ours without a hash: the next run uploads it again, and is then done.
        again = await sync_folder(client, docs, sim.dataset_id, timeout=30)
    assert again.updated == ["a.md"] and again.ok


def test_a_locked_ledger_never_turns_an_unfinished_file_into_done(
    sim: DifySimulator, served: str, docs: Path, tmp_path: Path
) -> None:
    path = tmp_path / "locked.db"
    SQLiteLedger(path)  # the file exists; another process now holds it locked
    holder = sqlite3.connect(path)
    holder.execute("CREATE TABLE IF NOT EXISTS lockme (x)")
    holder.execute("BEGIN EXCLUSIVE")
    sim.script("slow.md", DocumentScript(stall_at="indexing"))
    (docs / "slow.md").write_text("takes forever")

    async def run() -> object:
        ledger = SQLiteLedger(path, busy_timeout=0.2)
        async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=ledger) as client:
            return await sync_folder(client, docs, sim.dataset_id, timeout=3)

    try:
        report = asyncio.run(run())
    finally:
        holder.rollback()
        holder.close()
    assert report.not_ready == ["slow.md"]  # type: ignore[attr-defined]
    assert "slow.md" not in report.uploaded  # type: ignore[attr-defined]
    assert sorted(report.uploaded) == ["a.md", "b.md", "guides__setup.md"]  # type: ignore[attr-defined]
    assert not report.ok  # type: ignore[attr-defined]


def test_a_locked_ledger_in_the_cli_exits_4_with_a_clear_line(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, sim: DifySimulator,
    served: str, docs: Path, tmp_path: Path,
) -> None:  # fmt: skip
    path = tmp_path / "locked.db"
    SQLiteLedger(path)
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("CREATE TABLE IF NOT EXISTS lockme (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, report, err = cli(capsys, sim, served, docs, "--ledger", str(path), "--no-wait")
        err += caplog.text  # the library logs it; the CLI's stderr shows the same line
    finally:
        holder.rollback()
        holder.close()
    assert code == 4
    assert report["uploaded"] == [] and sorted(report["not_ready"]) == [  # type: ignore[arg-type]
        "a.md",
        "b.md",
        "guides__setup.md",
    ]
    assert "could not record an upload in the pending ledger" in err
    assert "database is locked" in err and "internal error" not in err


def test_marks_that_cannot_be_written_are_a_warning_and_a_rerun_adopts_the_documents(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    sim.inject(Fault.server_error(500), route="documents_metadata", times=-1)
    code, report, _ = cli(capsys, sim, served, docs)
    assert code == 4
    assert any("owner marks of 3 documents could not be written" in w for w in report["warnings"])  # type: ignore[attr-defined]
    sim.clear_faults()
    sim.clear_requests()
    code, report, _ = cli(capsys, sim, served, docs)  # same machine: its ledger saw the uploads
    assert code == 0 and sorted(report["skipped"]) == ["a.md", "b.md", "guides__setup.md"]  # type: ignore[arg-type]
    assert len(sim.requests_for("create_by_file")) == 0
    assert {mark.owner for _, mark in documents(sim, served).values()} == {"docs"}


def test_a_huge_sparse_file_costs_no_memory(sim: DifySimulator, served: str, docs: Path) -> None:
    with (docs / "huge.bin").open("wb") as handle:
        handle.truncate(2 * 1024**3)  # 2 GiB, sparse: nothing on disk
    # The child's own peak (VmHWM): ru_maxrss would still count the test runner's memory at
    # the moment of the fork.
    script = (
        "import re, sys\n"
        "from dify_ingest_tools.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read()\n"
        "print(re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "DIFY_API_KEY": sim.api_key, "DIFY_API_BASE_URL": served}
    done = subprocess.run(
        [sys.executable, "-c", script, "sync", str(docs), "--dataset", sim.dataset_id,
         "--json", "--no-progress", "--ledger", "off"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [item["name"] for item in report["left_out"]] == ["huge.bin"]
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    assert peak_kb < 200 * 1024  # under 200 MB for a 2 GiB file


def test_a_full_redis_ledger_never_turns_an_unfinished_file_into_done(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, sim: DifySimulator,
    served: str, docs: Path, own_redis: RedisServer,
) -> None:  # fmt: skip
    import redis

    full = redis.Redis.from_url(own_redis.url)
    full.config_set("maxmemory-policy", "noeviction")
    full.config_set("maxmemory", 1)  # every write is refused: "OOM command not allowed"
    full.close()
    sim.script("slow.md", DocumentScript(stall_at="indexing"))
    (docs / "slow.md").write_text("takes forever")
    code, report, err = cli(capsys, sim, served, docs, "--ledger", own_redis.url, "--timeout", "3")
    assert code == 4
    assert report["not_ready"] == ["slow.md"]
    assert sorted(report["uploaded"]) == ["a.md", "b.md", "guides__setup.md"]  # type: ignore[arg-type]
    assert "could not record an upload in the pending ledger" in caplog.text
    assert "internal error" not in err


async def test_a_listing_that_never_ends_stops_at_difys_total(
    aiohttp_server: Any, docs: Path
) -> None:
    pages: list[int] = []

    async def documents_page(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        pages.append(page)
        data = [{"id": str(uuid.uuid4()), "name": f"p{page}-{i}.md", "indexing_status": "completed"}
                for i in range(100)]  # fmt: skip
        return web.json_response({"data": data, "has_more": True, "total": 250, "page": page,
                                  "limit": 100})  # fmt: skip

    app = web.Application()
    app.router.add_get("/v1/datasets/{dataset}/documents", documents_page)
    server = await aiohttp_server(app)
    dataset = str(uuid.uuid4())
    async with AsyncDifyKnowledgeClient("dataset-k", str(server.make_url("/v1"))) as client:
        found = await list_all(client, dataset)
    assert pages == [1, 2, 3] and len(found) == 300


def test_file_names_with_terminal_escapes_are_reported_escaped(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, docs: Path
) -> None:
    (docs / "clear\x1b[2Jscreen\x07.md").write_text("bell and clear-screen in the name")
    (docs / "two\nlines.md").write_text("a newline in the name")
    argv = ["sync", str(docs), "--dataset", sim.dataset_id, "--api-key", sim.api_key,
            "--base-url", served, "--no-progress", "--ledger", "off"]  # fmt: skip
    assert main(argv) == 4  # Dify refuses control characters in file names: two failures
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "clear\\x1b[2Jscreen\\x07.md" in out and "two\\nlines.md" in out
    assert re.search(r"failed\s+2\n", out)


async def test_a_file_whose_indexing_stalls_is_sent_once_more_and_then_done(
    sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    # One file: the simulator's worker is serial, so files queued behind a dead one stall too
    # (and are healed the same way, but in an order the test cannot fix).
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "b.md").write_text("beta")
    uploads: list[str] = []

    def first_upload_stalls(name: str) -> DocumentScript | None:
        uploads.append(name)
        return DocumentScript(stall_at="indexing") if len(uploads) == 1 else None

    sim.script_resolver = first_upload_stalls
    async with AsyncDifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        report = await sync_folder(client, folder, sim.dataset_id, timeout=60, stall_timeout=2.0)
    assert report.ok, [(i.name, i.outcome, i.error) for i in report.items]
    assert report.uploaded == ["b.md"] and uploads == ["b.md", "b.md"]  # sent once more
    assert list(documents(sim, served)) == ["b.md"]  # re-sent by name: the same document
