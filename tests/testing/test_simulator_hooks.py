"""The simulator's extension hooks: scripts chosen by a function of the name, request listeners."""

from __future__ import annotations

import fnmatch

import pytest

from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock, RequestRecord

from .helpers import Api


async def test_script_resolver_scripts_documents_by_name_pattern(
    api: Api, sim: DifySimulator, clock: ManualClock, dataset_id: str
) -> None:
    failing = DocumentScript(fail_at="parsing", error="Scripted failure.")

    def resolve(name: str) -> DocumentScript | None:
        return failing if fnmatch.fnmatchcase(name, "bad*") else None

    sim.script_resolver = resolve
    assert sim.script_resolver is resolve
    bad = await api.create_text(dataset_id, "bad-one.txt", "alpha")
    good = await api.create_text(dataset_id, "good.txt", "beta")
    clock.advance(60)
    [bad_doc] = await api.status(dataset_id, bad["batch"])
    [good_doc] = await api.status(dataset_id, good["batch"])
    assert (bad_doc["indexing_status"], bad_doc["error"]) == ("error", "Scripted failure.")
    assert good_doc["indexing_status"] == "completed"


async def test_exact_name_scripts_win_over_the_resolver(
    api: Api, sim: DifySimulator, clock: ManualClock, dataset_id: str
) -> None:
    sim.script_resolver = lambda name: DocumentScript(fail_at="parsing")
    sim.script("exact.txt", DocumentScript(stall_at="indexing"))
    created = await api.create_text(dataset_id, "exact.txt", "alpha")
    clock.advance(60)
    [doc] = await api.status(dataset_id, created["batch"])
    assert doc["indexing_status"] == "indexing"
    sim.script_resolver = None
    other = await api.create_text(dataset_id, "other.txt", "beta")
    clock.advance(60)
    [doc] = await api.status(dataset_id, other["batch"])
    assert doc["indexing_status"] == "completed"


async def test_request_listeners_see_every_finished_request(
    api: Api, sim: DifySimulator, dataset_id: str
) -> None:
    seen: list[RequestRecord] = []
    sim.add_request_listener(seen.append)
    await api.create_text(dataset_id, "a.txt", "alpha")
    await api.get("/v1/nowhere")
    sim.remove_request_listener(seen.append)
    sim.remove_request_listener(seen.append)  # removing twice is a no-op
    await api.get("/v1/nowhere")
    assert [(r.method, r.route, r.status) for r in seen] == [
        ("POST", "create_by_text", 200),
        ("GET", None, 404),
    ]


async def test_a_failing_request_listener_does_not_break_the_response(
    api: Api, sim: DifySimulator, dataset_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: RequestRecord) -> None:
        raise RuntimeError("log sink is gone")

    sim.add_request_listener(broken)
    created = await api.create_text(dataset_id, "a.txt", "alpha")
    assert created["batch"]
    assert "request listener" in caplog.text and "log sink is gone" in caplog.text
