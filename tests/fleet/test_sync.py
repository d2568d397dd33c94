"""``dify-ingest sync`` and ``wait --pending``: incremental, resumable, honest exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dify_ingest_tools import DifyKnowledgeClient
from dify_ingest_tools.cli import main
from dify_ingest_tools.testing import DifySimulator, DocumentScript

from .processes import ROOT

BROKEN_ERROR = "Failed to load document (PDFium: Data format error)."


@pytest.fixture
def sim() -> DifySimulator:
    simulator = DifySimulator(time_scale=0.02)
    simulator.create_dataset("sync")
    simulator.script("broken.pdf", DocumentScript(fail_at="parsing", error=BROKEN_ERROR))
    return simulator


@pytest.fixture
def served(sim: DifySimulator) -> Iterator[str]:
    with sim.serve_in_thread() as base_url:
        yield base_url


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "b.md").write_text("# beta")
    (root / "guides" / "setup.md").write_text("setup steps")
    (root / ".hidden").write_text("never uploaded")
    return root


def sync(
    sim: DifySimulator, served: str, folder: Path, ledger: Path, *extra: str
) -> tuple[int, dict[str, object]]:
    argv = ["sync", str(folder), "--dataset", sim.dataset_id, "--json", "--no-progress",
            "--api-key", sim.api_key, "--base-url", served,
            "--ledger", str(ledger), *extra]  # fmt: skip
    return main(argv), {}


def run_folder_sync(
    capsys: pytest.CaptureFixture[str],
    sim: DifySimulator,
    served: str,
    folder: Path,
    ledger: Path,
    *extra: str,
) -> tuple[int, dict[str, object]]:
    code, _ = sync(sim, served, folder, ledger, *extra)
    out = capsys.readouterr().out
    return code, json.loads(out)


def creates(sim: DifySimulator) -> int:
    return len(sim.requests_for("create_by_file"))


def test_a_first_sync_uploads_everything_and_reports_difys_error(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    code, report = run_folder_sync(capsys, sim, served, folder, tmp_path / "l.db")
    assert code == 4  # one file failed to index: not everything is done
    assert sorted(report["uploaded"]) == ["a.txt", "b.md", "guides__setup.md"]  # type: ignore[arg-type]
    assert report["failed"] == [{"name": "broken.pdf", "error": BROKEN_ERROR}]
    assert report["skipped"] == report["updated"] == report["deleted"] == []
    assert creates(sim) == 4


def test_an_unchanged_folder_costs_no_upload(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    ledger = tmp_path / "l.db"
    assert run_folder_sync(capsys, sim, served, folder, ledger)[0] == 0
    sim.clear_requests()
    code, report = run_folder_sync(capsys, sim, served, folder, ledger)
    assert code == 0
    assert sorted(report["skipped"]) == ["a.txt", "b.md", "guides__setup.md"]  # type: ignore[arg-type]
    assert report["uploaded"] == report["updated"] == []
    assert creates(sim) == 0


def test_changed_files_are_updated_in_place_new_ones_added_removed_ones_deleted(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    ledger = tmp_path / "l.db"
    run_folder_sync(capsys, sim, served, folder, ledger)
    with DifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        before = {doc.name: doc.id for doc in client.list_documents(sim.dataset_id).data}
    (folder / "a.txt").write_text("alpha, edited")
    (folder / "c.txt").write_text("gamma")
    (folder / "b.md").unlink()
    code, kept = run_folder_sync(capsys, sim, served, folder, ledger)
    assert code == 0
    assert (kept["updated"], kept["uploaded"], kept["kept"]) == (["a.txt"], ["c.txt"], ["b.md"])
    assert kept["deleted"] == []
    code, report = run_folder_sync(capsys, sim, served, folder, ledger, "--delete")
    assert code == 0
    assert report["deleted"] == ["b.md"]
    assert sorted(report["skipped"]) == ["a.txt", "c.txt", "guides__setup.md"]  # type: ignore[arg-type]
    with DifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        after = {doc.name: doc.id for doc in client.list_documents(sim.dataset_id).data}
    assert set(after) == {"a.txt", "c.txt", "guides__setup.md"}
    assert after["a.txt"] == before["a.txt"]  # the same document, re-indexed


def test_the_table_and_exit_code_for_people(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    (folder / "broken.pdf").write_bytes(b"%PDF")
    argv = ["sync", str(folder), "--dataset", sim.dataset_id, "--no-progress",
            "--api-key", sim.api_key, "--base-url", served,
            "--ledger", str(tmp_path / "l.db")]  # fmt: skip
    assert main(argv) == 4
    out = capsys.readouterr().out
    assert re.search(r"uploaded\s+3\n", out) and re.search(r"failed\s+1\n", out)
    assert f"FAILED broken.pdf: {BROKEN_ERROR}" in out
    assert sim.api_key not in out


def test_a_wrong_key_is_an_api_error_and_the_key_is_never_printed(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    argv = ["sync", str(folder), "--dataset", sim.dataset_id, "--no-progress",
            "--api-key", "dataset-wrong-secret", "--base-url", served,
            "--ledger", str(tmp_path / "l.db")]  # fmt: skip
    assert main(argv) == 3
    captured = capsys.readouterr()
    assert "DifyAuthenticationError" in captured.err
    assert "dataset-wrong-secret" not in captured.err + captured.out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = [
        "--api-key",
        "k",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--ledger",
        str(tmp_path / "l"),
    ]
    dataset = "00000000-0000-4000-8000-000000000000"
    assert main(["sync", str(tmp_path / "nope"), "--dataset", dataset, *base]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["sync", str(tmp_path), "--dataset", dataset, "--concurrency", "0", *base]) == 2
    assert (
        main(["sync", str(tmp_path), "--dataset", dataset, "--redis-url", "redis://x", *base]) == 2
    )
    assert "--workspace" in capsys.readouterr().err
    assert main(["wait", *base]) == 2
    assert "--pending" in capsys.readouterr().err


def test_wait_pending_resumes_what_an_earlier_process_uploaded(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    other = sim.create_dataset("other")
    with DifyKnowledgeClient(sim.api_key, served, ledger=ledger) as client:
        client.create_document_by_text(sim.dataset_id, "a.txt", "alpha")
        client.create_document_by_file(sim.dataset_id, b"%PDF", filename="broken.pdf")
        client.create_document_by_text(other, "o.txt", "omega")
    base = ["--api-key", sim.api_key, "--base-url", served, "--ledger", str(ledger),
            "--no-progress", "--poll-interval", "0.05", "--json"]  # fmt: skip
    assert main(["wait", "--pending", "--dataset", other, *base]) == 0
    [only] = json.loads(capsys.readouterr().out)["batches"]
    assert only["dataset_id"] == other
    assert main(["wait", "--pending", *base]) == 1  # the broken upload failed
    report = json.loads(capsys.readouterr().out)
    assert (report["reason"], len(report["batches"])) == ("failed", 2)
    assert main(["wait", "--pending", *base[:-1]]) == 0
    assert capsys.readouterr().out.strip() == "nothing pending"


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dify_ingest_tools.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("how", ["ctrl-c", "crash"])
def test_a_sync_stopped_half_way_loses_nothing_and_a_rerun_finishes_it(
    how: str, sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        (folder / f"{i:02}.txt").write_text(f"document {i}")
    env = {"DIFY_API_KEY": sim.api_key, "DIFY_API_BASE_URL": served}
    args = ["sync", str(folder), "--dataset", sim.dataset_id, "--ledger", str(tmp_path / "l.db"),
            "--json", "--no-progress", "--concurrency", "2",
            "--requests-per-minute", "900"]  # fmt: skip
    process = _cli(args, env)
    deadline = time.monotonic() + 30
    while creates(sim) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    if how == "ctrl-c":
        assert process.returncode == 130, err
        assert json.loads(out)["interrupted"] is True
    else:
        assert process.returncode == -signal.SIGKILL
    first_run = creates(sim)
    assert 8 <= first_run < 30
    rerun = _cli(args, env)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    report = json.loads(out)
    with DifyKnowledgeClient(sim.api_key, served, ledger=False) as client:
        names = [doc.name for doc in client.list_documents(sim.dataset_id).data]
    assert sorted(names) == sorted(f"{i:02}.txt" for i in range(30))  # none lost, none doubled
    if how == "ctrl-c":
        assert creates(sim) == 30  # every file uploaded exactly once
        assert len(report["uploaded"]) == 30 - first_run
    else:
        # A crash can lose the answers of the uploads in flight (at most --concurrency);
        # Dify's upsert by name re-indexes those documents instead of duplicating them.
        assert 30 <= creates(sim) <= 32


def test_a_report_in_words_says_what_was_kept_and_what_is_still_indexing(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    ledger = tmp_path / "l.db"
    base = [str(folder), "--dataset", sim.dataset_id, "--no-progress", "--api-key", sim.api_key,
            "--base-url", served, "--ledger", str(ledger)]  # fmt: skip
    sim.script("slow.txt", DocumentScript(stall_at="indexing"))
    (folder / "slow.txt").write_text("takes forever")
    assert main(["sync", *base, "--no-wait"]) == 4  # uploaded, nobody saw them finish
    out = capsys.readouterr().out
    assert re.search(r"not ready\s+4\n", out) and "wait --pending" in out
    (folder / "b.md").unlink()
    # The others index in 1.4 s (the simulator's default), slow.txt never: still indexing.
    assert main(["sync", *base, "--timeout", "3"]) == 4
    out = capsys.readouterr().out
    assert re.search(r"kept\s+1\n", out) and "pass --delete" in out
    assert re.search(r"not ready\s+1\n", out)


def test_include_exclude_and_retrying_failed_files(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    ledger = tmp_path / "l.db"
    (folder / "broken.pdf").write_bytes(b"%PDF")
    code, report = run_folder_sync(
        capsys, sim, served, folder, ledger, "--include", "*.pdf", "--include", "*.txt",
        "--exclude", "guides__*",
    )  # fmt: skip
    assert code == 4
    assert report["uploaded"] == ["a.txt"]
    assert [failure["name"] for failure in report["failed"]] == ["broken.pdf"]  # type: ignore[union-attr]
    # Unchanged and failed: reported again, not re-sent, unless --retry-failed.
    sim.clear_requests()
    code, again = run_folder_sync(capsys, sim, served, folder, ledger, "--include", "*.pdf")
    assert code == 4 and again["failed"] == report["failed"] and creates(sim) == 0
    code, retried = run_folder_sync(
        capsys, sim, served, folder, ledger, "--include", "*.pdf", "--retry-failed"
    )
    assert code == 4 and retried["failed"] == report["failed"] and creates(sim) == 1


def test_two_files_that_would_share_a_name_are_refused(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    (folder / "guides__setup.md").write_text("a clash")
    code, _ = sync(sim, served, folder, tmp_path / "l.db")
    assert code == 2
    assert "would both be the document 'guides__setup.md'" in capsys.readouterr().err
    assert creates(sim) == 0


def test_a_sync_on_the_shared_budget(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, folder: Path,
    tmp_path: Path, redis_url: str, workspace: str,
) -> None:  # fmt: skip
    sim.set_rate_limit(4, window=1.0)
    code, report = run_folder_sync(
        capsys, sim, served, folder, tmp_path / "l.db", "--redis-url", redis_url,
        "--workspace", workspace, "--requests-per-minute", "4", "--budget-window", "1",
        "--latency-allowance", "0.1",
    )  # fmt: skip
    assert code == 0 and len(report["uploaded"]) == 3  # type: ignore[arg-type]
    assert sim.rate_limited_count() == 0


def test_wait_pending_in_words(
    capsys: pytest.CaptureFixture[str], sim: DifySimulator, served: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    with DifyKnowledgeClient(sim.api_key, served, ledger=ledger) as client:
        client.create_document_by_file(sim.dataset_id, b"%PDF", filename="broken.pdf")
    base = ["--api-key", sim.api_key, "--base-url", served, "--ledger", str(ledger),
            "--no-progress", "--poll-interval", "0.05"]  # fmt: skip
    assert main(["wait", "--pending", *base]) == 1
    out = capsys.readouterr().out
    assert f"error: {BROKEN_ERROR}" in out
    assert main(["wait", "--pending", "--max-poll-interval", "0.01", *base]) == 2
    off = ["--api-key", sim.api_key, "--base-url", served, "--ledger", "off"]
    assert main(["wait", "--pending", *off]) == 2
    assert "ledger is off" in capsys.readouterr().err
