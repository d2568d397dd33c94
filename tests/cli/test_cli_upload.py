"""``dify-ingest upload``: one document per file, named as sync names them; clashes refused
before any request; ``--owner`` marks; a misconfiguration ends the run at its first answer.

Run through main() against the simulator over real HTTP (and a port nothing listens on)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from dify_ingest_tools import AsyncDifyKnowledgeClient, cli
from dify_ingest_tools.models.ownership import Mark
from dify_ingest_tools.testing import DifySimulator, RequestRecord
from tests.hostile import free_port, serving_in_thread

SECRET = "dataset-CANARY-cli-upload-42"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DifySimulator, str]]:
    sim = DifySimulator(api_key=SECRET, time_scale=0.02)
    dataset_id = sim.create_dataset("upload")
    with sim.serve_in_thread() as url:
        monkeypatch.setenv("DIFY_API_KEY", SECRET)
        monkeypatch.setenv("DIFY_API_BASE_URL", url)
        monkeypatch.setenv("DIFY_DATASET_ID", dataset_id)
        yield sim, dataset_id


def tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def listed(sim: DifySimulator, dataset_id: str) -> dict[str, Mark]:
    """Every document's name and ownership mark, read back over HTTP from the list."""

    async def read() -> dict[str, Mark]:
        async with AsyncDifyKnowledgeClient(sim.api_key, sim.base_url) as client:
            page = await client.list_documents(dataset_id)
        return {document.name: Mark.of(document) for document in page.data}

    return asyncio.run(read())


def test_two_readmes_in_two_folders_are_two_documents(
    served: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, dataset_id = served
    folder = tree(tmp_path / "coll", {"a/readme.md": "Alpha.", "b/readme.md": "Beta."})
    assert cli.main(["upload", str(folder), "--wait", "--no-progress"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "uploaded a__readme.md" in out and "uploaded b__readme.md" in out
    assert sorted(listed(sim, dataset_id)) == ["a__readme.md", "b__readme.md"]


def in_one_folder(root: Path) -> tuple[list[str], list[Path]]:
    folder = tree(root / "coll", {"a__b.md": "one", "a/b.md": "two"})
    return [str(folder)], [folder / "a__b.md", folder / "a" / "b.md"]


def two_single_files(root: Path) -> tuple[list[str], list[Path]]:
    tree(root, {"x/n.md": "one", "y/n.md": "two"})
    both = [root / "x" / "n.md", root / "y" / "n.md"]
    return [str(path) for path in both], both


def a_folder_and_a_file(root: Path) -> tuple[list[str], list[Path]]:
    tree(root, {"d/n.md": "one", "n.md": "two"})
    return [str(root / "d"), str(root / "n.md")], [root / "d" / "n.md", root / "n.md"]


@pytest.mark.parametrize("case", [in_one_folder, two_single_files, a_folder_and_a_file])
def test_two_files_that_would_be_one_document_are_refused_before_any_request(
    served: tuple[DifySimulator, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: Callable[[Path], tuple[list[str], list[Path]]],
) -> None:
    sim, _ = served
    paths, both = case(tmp_path)
    assert cli.main(["upload", *paths]) == cli.EXIT_USAGE
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("dify-ingest: error: ") and "would both be the document" in line
    assert all(str(path) in line for path in both), line
    assert captured.out == ""
    assert sim.requests == []


def test_the_same_file_given_twice_is_uploaded_once(
    served: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, _ = served
    path = tmp_path / "once.md"
    path.write_text("Once.")
    assert cli.main(["upload", str(path), str(path)]) == cli.EXIT_OK
    assert capsys.readouterr().out.count("uploaded once.md") == 1
    assert len(sim.requests_for(route="create_by_file")) == 1


def test_owner_marks_every_upload_in_one_metadata_write(
    served: tuple[DifySimulator, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim, dataset_id = served
    folder = tree(tmp_path / "handbook", {"a/readme.md": "Alpha.", "guide.md": "Guide."})
    single = tmp_path / "extra.txt"
    single.write_text("Extra.")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("Piped."))
    argv = ["upload", str(folder), str(single), "-", "--name", "piped.md"]
    assert cli.main([*argv, "--owner", "team-docs"]) == cli.EXIT_OK
    capsys.readouterr()
    marks = listed(sim, dataset_id)

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    assert marks == {
        "a__readme.md": Mark("team-docs", "a/readme.md", sha(b"Alpha.")),
        "guide.md": Mark("team-docs", "guide.md", sha(b"Guide.")),
        "extra.txt": Mark("team-docs", "extra.txt", sha(b"Extra.")),
        "piped.md": Mark("team-docs", "piped.md", sha(b"Piped.")),
    }
    assert len(sim.requests_for(route="documents_metadata")) == 1


def test_without_owner_nothing_is_marked(
    served: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, dataset_id = served
    folder = tree(tmp_path / "plain", {"a.md": "A."})
    assert cli.main(["upload", str(folder)]) == cli.EXIT_OK
    assert listed(sim, dataset_id) == {"a.md": Mark()}
    assert sim.requests_for(route="documents_metadata") == []
    assert sim.requests_for(route="metadata_fields") == []


def test_an_empty_owner_is_a_usage_error(
    served: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, _ = served
    (tmp_path / "a.md").write_text("A.")
    assert cli.main(["upload", str(tmp_path / "a.md"), "--owner", "  "]) == cli.EXIT_USAGE
    assert "--owner must not be empty" in capsys.readouterr().err
    assert sim.requests == []


# -- a misconfiguration ends the run at its first answer ---------------------------------

FIVE = {f"doc{i}.md": f"Document {i}." for i in range(5)}


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda sim, ds: ["--api-key", "dataset-wrong-key"], "DifyAuthenticationError"),
        (
            lambda sim, ds: ["--dataset", "00000000-0000-4000-8000-000000000000"],
            "Dataset not found.",
        ),
        (
            lambda sim, ds: sim.set_api_enabled(ds, False) or [],
            "Dataset api access is not enabled.",
        ),
    ],
    ids=["wrong-key", "unknown-dataset", "api-disabled"],
)
def test_a_misconfiguration_ends_a_five_file_upload_after_one_request(
    served: tuple[DifySimulator, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: object,
    error: str,
) -> None:
    sim, dataset_id = served
    folder = tree(tmp_path / "five", FIVE)
    extra = setup(sim, dataset_id)  # type: ignore[operator]
    assert cli.main(["upload", str(folder), *extra]) == cli.EXIT_API
    captured = capsys.readouterr()
    assert captured.out == ""  # no FAILED line per file
    [line] = captured.err.splitlines()
    assert line.startswith("dify-ingest: ") and error in line
    assert "dataset-wrong-key" not in line
    assert len(sim.requests) == 1


def test_a_dead_port_ends_a_five_file_upload_with_one_line(tmp_path: Path) -> None:
    folder = tree(tmp_path / "five", FIVE)
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "dify_ingest_tools.cli", "upload", str(folder)],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "DIFY_INGEST_LEDGER": str(tmp_path / "ledger.db"),
            "DIFY_API_KEY": SECRET,
            "DIFY_API_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "DIFY_DATASET_ID": "7789611a-7d24-4b75-ab16-a005f3cbd9b4",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == cli.EXIT_API, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("dify-ingest: DifyConnectionError:")
    assert f"127.0.0.1:{port}" in line
    assert SECRET not in line


def test_a_file_over_the_upload_limit_fails_alone_before_its_request(
    served: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, _ = served
    folder = tree(tmp_path / "sizes", {"small.md": "Small.", "big.md": "B" * 2048})
    code = cli.main(["upload", str(folder), "--max-file-size", "1K", "--json"])
    assert code == cli.EXIT_API
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert "over the upload limit of 1,024 bytes" in rows["big.md"]["error"]
    assert rows["small.md"]["batch"]
    assert len(sim.requests_for(route="create_by_file")) == 1


@pytest.mark.parametrize("size", ["0", "-1", "1T", "lots", "1.5M"])
def test_a_bad_max_file_size_is_a_usage_error(
    served: tuple[DifySimulator, str], capsys: pytest.CaptureFixture[str], size: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["upload", "-", "--max-file-size", size])
    assert caught.value.code == cli.EXIT_USAGE
    assert "--max-file-size" in capsys.readouterr().err


def test_a_misconfiguration_mid_run_starts_nothing_more(
    served: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, dataset_id = served
    folder = tree(tmp_path / "five", FIVE)

    def switch_off_after_the_first_create(record: RequestRecord) -> None:
        if record.route == "create_by_file" and record.status == 200:
            sim.set_api_enabled(dataset_id, False)  # the listener runs under the (r)lock

    sim.add_request_listener(switch_off_after_the_first_create)
    code = cli.main(["upload", str(folder), "--concurrency", "1"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_API
    assert [line.split(":")[0] for line in captured.out.splitlines()] == ["uploaded doc0.md"]
    [line] = captured.err.splitlines()
    assert "Dataset api access is not enabled." in line
    assert [r.status for r in sim.requests_for(route="create_by_file")] == [200, 403]


@pytest.mark.parametrize("status", [200, 404])
def test_a_base_url_that_is_a_web_page_ends_the_run_at_the_first_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    folder = tree(tmp_path / "five", FIVE)
    seen: list[str] = []

    async def page(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="<html>console</html>", content_type="text/html", status=status)

    with serving_in_thread(page) as url:
        argv = ["upload", str(folder), "--api-key", SECRET, "--base-url", url]
        code = cli.main([*argv, "--dataset", "7789611a-7d24-4b75-ab16-a005f3cbd9b4"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_API
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert "--base-url" in line  # what to check
    assert len(seen) == 1


def test_owner_refuses_a_mark_field_of_another_type_before_any_upload(
    served: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim, dataset_id = served

    async def make_field() -> None:
        async with AsyncDifyKnowledgeClient(sim.api_key, sim.base_url) as client:
            await client.create_metadata_field(dataset_id, "dify_ingest_sha256", "number")

    asyncio.run(make_field())
    folder = tree(tmp_path / "owned", {"a.md": "A."})
    assert cli.main(["upload", str(folder), "--owner", "team"]) == cli.EXIT_API
    [line] = capsys.readouterr().err.splitlines()
    assert "dify_ingest_sha256 are not of type string" in line
    assert sim.requests_for(route="create_by_file") == []


def test_a_folder_uploaded_with_an_owner_is_unchanged_for_sync_of_that_owner(
    served: tuple[DifySimulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `upload --owner` and `sync` hash a file the same way (one `digest`), so sync finds
    # nothing to send: a hash computed twice two ways would re-upload every file.
    sim, dataset_id = served
    folder = tree(tmp_path / "handbook", {"a/readme.md": "Alpha.", "guide.md": "Guide."})
    assert cli.main(["upload", str(folder), "--owner", "team-docs"]) == cli.EXIT_OK
    created = len(sim.requests_for(route="create_by_file"))
    argv = ["sync", str(folder), "--owner", "team-docs", "--no-progress"]
    assert cli.main([*argv, "--dataset", dataset_id]) == cli.EXIT_OK
    assert len(sim.requests_for(route="create_by_file")) == created == 2
    assert sim.requests_for(route="update_by_file") == []
    capsys.readouterr()
