"""A knowledge base named by its name: the client's lookup, the CLI's ``--dataset-name``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyDatasetNameError,
    DifyKnowledgeClient,
    DifyResponseError,
    cli,
)
from dify_ingest_tools.testing import DifySimulator, Fault

SECRET = "dataset-CANARY-names-77"


async def test_find_dataset_matches_the_exact_name_only(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator
) -> None:
    wanted = sim.create_dataset("handbook")
    for other in ("handbook-old", "Handbook", "the handbook", "hand_ook", "handbook%"):
        sim.create_dataset(other)
    found = await client.find_dataset("handbook")
    assert found is not None and found["id"] == wanted
    assert await client.dataset_id_for("handbook") == wanted
    assert await client.find_dataset("hand") is None
    assert (await client.find_dataset("hand_ook") or {}).get("name") == "hand_ook"
    # Looked up with the keyword (Dify filters server-side), never by listing everything.
    assert {r.query.get("keyword") for r in sim.requests_for(route="list_datasets")} == {
        "handbook",
        "hand",
        "hand_ook",
    }


async def test_find_dataset_reads_every_page(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator
) -> None:
    for number in range(130):
        sim.create_dataset(f"handbook copy {number}")
    wanted = sim.create_dataset("handbook")
    assert await client.dataset_id_for("handbook") == wanted
    assert len(sim.requests_for(route="list_datasets")) == 2


async def test_two_knowledge_bases_with_one_name_are_an_error_naming_both(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator
) -> None:
    first, second = sim.create_dataset("policies"), sim.create_dataset("policies")
    with pytest.raises(DifyDatasetNameError) as caught:
        await client.dataset_id_for("policies", create_if_missing=True)
    assert first in str(caught.value) and second in str(caught.value)
    assert sorted(caught.value.dataset_ids) == sorted([first, second])
    assert isinstance(caught.value, LookupError)
    assert sim.requests_for(route="create_dataset") == []  # nothing created


async def test_a_missing_name_is_an_error_unless_asked_to_create_it(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator
) -> None:
    with pytest.raises(DifyDatasetNameError, match="create_if_missing") as caught:
        await client.dataset_id_for("new kb")
    assert caught.value.dataset_ids == ()
    created = await client.dataset_id_for("new kb", create_if_missing=True)
    detail = await client.get_dataset(created)
    assert (detail["name"], detail["indexing_technique"]) == ("new kb", "economy")
    # Asked again, it is found, not created twice.
    assert await client.dataset_id_for("new kb", create_if_missing=True) == created
    assert len(sim.requests_for(route="create_dataset")) == 1
    hq = await client.dataset_id_for(
        "vectors", create_if_missing=True, indexing_technique="high_quality"
    )
    assert (await client.get_dataset(hq))["indexing_technique"] == "high_quality"


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "tab\there", None, 42])
async def test_a_bad_name_is_refused_before_any_request(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator, name: object
) -> None:
    with pytest.raises((ValueError, TypeError)):
        await client.find_dataset(name)  # type: ignore[arg-type]
    assert sim.requests_for(route="list_datasets") == []


async def test_a_hostile_name_travels_as_a_query_value(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator
) -> None:
    name = "a&keyword=b?#/../%2F 知识库"
    wanted = sim.create_dataset(name)
    assert await client.dataset_id_for(name) == wanted
    (request,) = sim.requests_for(route="list_datasets")
    assert request.query["keyword"] == name and request.path == "/v1/datasets"


def test_the_blocking_twin_finds_by_name(
    sync_client: DifyKnowledgeClient, sim: DifySimulator
) -> None:
    wanted = sim.create_dataset("blocking")
    assert sync_client.dataset_id_for("blocking") == wanted
    assert sync_client.find_dataset("absent") is None


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[DifySimulator]:
    sim = DifySimulator(api_key=SECRET, time_scale=0.02)
    with sim.serve_in_thread() as url:
        monkeypatch.setenv("DIFY_API_KEY", SECRET)
        monkeypatch.setenv("DIFY_API_BASE_URL", url)
        monkeypatch.delenv("DIFY_DATASET_ID", raising=False)
        yield sim


def test_cli_upload_and_sync_by_dataset_name(
    served: DifySimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.md"
    note.write_text("Herons nest in colonies.")
    args = ["upload", str(note), "--dataset-name", "field notes", "--wait", "--no-progress"]
    assert cli.main(args) == cli.EXIT_API  # no such knowledge base
    err = capsys.readouterr().err
    assert "no knowledge base is named 'field notes'" in err and SECRET not in err
    assert cli.main([*args, "--create-if-missing"]) == cli.EXIT_OK
    capsys.readouterr()
    (dataset_id,) = served.dataset_ids
    assert cli.main(["documents", "--dataset-name", "field notes", "--json"]) == cli.EXIT_OK
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == ["note.md"]
    assert cli.main(["search", "herons", "--dataset-name", "field notes"]) == cli.EXIT_OK
    assert "note.md" in capsys.readouterr().out

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("Alpha.")
    code = cli.main(["sync", str(folder), "--dataset-name", "field notes", "--no-progress"])
    assert code == cli.EXIT_OK, capsys.readouterr()
    assert dataset_id in capsys.readouterr().out
    assert served.dataset_ids == [dataset_id]  # found, not created again


def test_cli_dataset_name_conflicts_and_dry_runs(
    served: DifySimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = served.create_dataset("twins"), served.create_dataset("twins")
    assert cli.main(["documents", "--dataset-name", "twins"]) == cli.EXIT_API
    err = capsys.readouterr().err
    assert first in err and second in err and len(err.strip().splitlines()) == 1
    both = ["documents", "--dataset", first, "--dataset-name", "twins"]
    assert cli.main(both) == cli.EXIT_USAGE
    assert "not both" in capsys.readouterr().err
    assert cli.main(["documents", "--dataset", first, "--create-if-missing"]) == cli.EXIT_USAGE
    assert "needs --dataset-name" in capsys.readouterr().err
    # $DIFY_DATASET_ID is a default a name overrides.
    monkeypatch.setenv("DIFY_DATASET_ID", first)
    served.create_dataset("solo")
    assert cli.main(["documents", "--dataset-name", "solo"]) == cli.EXIT_OK
    capsys.readouterr()
    before = len(served.dataset_ids)
    dry = ["sync", str(tmp_path), "--dataset-name", "later", "--create-if-missing", "--dry-run"]
    assert cli.main(dry) == cli.EXIT_USAGE
    assert "dry run creates nothing" in capsys.readouterr().err
    assert len(served.dataset_ids) == before
    assert cli.main(["sync", str(tmp_path)]) == cli.EXIT_USAGE
    assert "--dataset-name" in capsys.readouterr().err


async def test_a_garbled_list_answer_is_a_response_error_not_a_guess(
    client: AsyncDifyKnowledgeClient, sim: DifySimulator
) -> None:
    sim.create_dataset("handbook")
    sim.inject(Fault.wrong_shape(), route="list_datasets")
    with pytest.raises(DifyResponseError, match="data"):
        await client.find_dataset("handbook")
    sim.inject(Fault.proxy_html(502), route="list_datasets", times=1)
    # A transient proxy error on a read is retried: the name is still found.
    assert await client.find_dataset("handbook") is not None


def test_cli_wait_pending_by_dataset_name(
    served: DifySimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.db"
    mine, other = served.create_dataset("mine"), served.create_dataset("other")
    url = os.environ["DIFY_API_BASE_URL"]
    with DifyKnowledgeClient(SECRET, url, ledger=ledger) as client:
        client.create_document_by_text(mine, "a.txt", "alpha")
        client.create_document_by_text(other, "o.txt", "omega")
    base = ["--ledger", str(ledger), "--no-progress", "--poll-interval", "0.05", "--json"]
    assert cli.main(["wait", "--pending", "--dataset-name", "other", *base]) == cli.EXIT_OK
    [only] = json.loads(capsys.readouterr().out)["batches"]
    assert only["dataset_id"] == other
    both = ["wait", "--pending", "--dataset", mine, "--dataset-name", "other", *base]
    assert cli.main(both) == cli.EXIT_USAGE
    assert "not both" in capsys.readouterr().err
    assert cli.main(["wait", mine, "1", "--dataset-name", "other"]) == cli.EXIT_USAGE
    assert "goes with --pending" in capsys.readouterr().err
