"""``dify-ingest upload | search | documents``, run through main() against the simulator."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dify_ingest_tools import cli
from dify_ingest_tools.testing import DifySimulator, DocumentScript

SECRET = "dataset-CANARY-cli-job-99"


@pytest.fixture
def dataset(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DifySimulator, str]]:
    sim = DifySimulator(api_key=SECRET, time_scale=0.02)
    dataset_id = sim.create_dataset("cli")
    with sim.serve_in_thread() as url:
        monkeypatch.setenv("DIFY_API_KEY", SECRET)
        monkeypatch.setenv("DIFY_API_BASE_URL", url)
        monkeypatch.setenv("DIFY_DATASET_ID", dataset_id)
        yield sim, dataset_id


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "refunds.md").write_text("Refunds are paid within 30 days.")
    (tmp_path / "sub" / "shipping.txt").write_text("Orders ship in two days.")
    (tmp_path / "sub" / "notes.csv").write_text("a,b")
    (tmp_path / ".git" / "config").write_text("hidden")
    return tmp_path


def test_upload_a_folder_with_a_glob_and_wait_then_search_and_list(
    dataset: tuple[DifySimulator, str],
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["upload", str(folder), "--glob", "**/*.[mt][dx]*", "--wait", "--no-progress"])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    # Named as sync names them: the path relative to the folder, folders joined by __.
    assert "uploaded refunds.md: document " in out and "uploaded sub__shipping.txt" in out
    assert "notes.csv" not in out and "config" not in out  # glob and hidden folders
    assert out.count(": ready — 1/1 documents completed") == 2

    assert cli.main(["search", "refunds", "--top-k", "2"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "hit(s) for 'refunds'" in out and "refunds.md: Refunds are paid" in out

    assert cli.main(["documents", "--json"]) == cli.EXIT_OK
    names = sorted(doc["name"] for doc in json.loads(capsys.readouterr().out))
    assert names == ["refunds.md", "sub__shipping.txt"]
    assert SECRET not in out


def test_upload_from_stdin_with_json_output(
    dataset: tuple[DifySimulator, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Text piped in from a script."))
    assert cli.main(["upload", "-", "--name", "piped.txt", "--json"]) == cli.EXIT_OK
    [row] = json.loads(capsys.readouterr().out)
    assert row["name"] == "piped.txt" and row["source"] == "-" and row["batch"]


def test_upload_wait_exit_codes_say_failed_and_not_ready(
    dataset: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, _ = dataset
    sim.script("broken.pdf", DocumentScript(fail_at="parsing", error="PDFium: Data format error"))
    sim.script("stuck.txt", DocumentScript(stall_at="indexing"))
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf")
    (tmp_path / "stuck.txt").write_text("stuck")
    code = cli.main(["upload", str(tmp_path / "broken.pdf"), "--wait", "--no-progress"])
    assert code == cli.EXIT_FAILED
    assert "PDFium: Data format error" in capsys.readouterr().out
    stuck = [str(tmp_path / "stuck.txt"), "--wait", "--timeout", "0.5", "--no-progress"]
    assert cli.main(["upload", *stuck]) == cli.EXIT_NOT_READY


@pytest.mark.parametrize(
    "argv",
    [
        ["upload", "/no/such/path"],
        ["upload", ".", "--glob", "*.nothing-matches-this"],
        ["upload", "-", "--concurrency", "0"],
        ["search", "q", "--dataset", "not-a-uuid"],
    ],
)
def test_usage_errors_exit_2(
    dataset: tuple[DifySimulator, str], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE
    assert "dify-ingest: error:" in capsys.readouterr().err


def test_a_rejected_key_exits_3_with_one_line_and_the_key_stays_out(
    dataset: tuple[DifySimulator, str], folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["upload", str(folder / "refunds.md"), "--api-key", "dataset-wrong-key"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_API
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("dify-ingest: DifyAuthenticationError:")
    assert "dataset-wrong-key" not in captured.out + captured.err


def test_missing_dataset_is_a_usage_error(
    dataset: tuple[DifySimulator, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DIFY_DATASET_ID")
    assert cli.main(["documents"]) == cli.EXIT_USAGE
    assert "--dataset is required" in capsys.readouterr().err
