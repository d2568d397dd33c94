"""Document timelines on a manual clock: stages, stamps, counters and scripted behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from .helpers import Api, serving

PARAGRAPHS = "\n\n".join(f"Paragraph {i} about alpha and omega." for i in range(8))
STAMPS = (
    "processing_started_at",
    "parsing_completed_at",
    "cleaning_completed_at",
    "splitting_completed_at",
    "completed_at",
)


async def walk(
    api: Api, clock: ManualClock, dataset_id: str, batch: str, seconds: float, step: float = 0.01
) -> list[dict[str, Any]]:
    """Poll every ``step`` of simulated time for ``seconds``; return each distinct entry."""
    seen: list[dict[str, Any]] = []
    for _ in range(round(seconds / step) + 1):
        (entry,) = await api.status(dataset_id, batch)
        if not seen or entry != seen[-1]:
            seen.append(entry)
        clock.advance(step)
    return seen


def statuses(entries: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for entry in entries:
        if not out or out[-1] != entry["indexing_status"]:
            out.append(entry["indexing_status"])
    return out


async def test_default_timeline_never_reports_cleaning(
    api: Api, clock: ManualClock, dataset_id: str
) -> None:
    created = await api.create_text(dataset_id, "a.txt", PARAGRAPHS)
    assert created["document"]["indexing_status"] == "waiting"
    assert created["document"]["display_status"] == "queuing"
    seen = await walk(api, clock, dataset_id, created["batch"], 1.6)
    assert statuses(seen) == ["waiting", "parsing", "splitting", "indexing", "completed"]


async def test_stamps_are_set_when_stages_are_entered(clock: ManualClock) -> None:
    # Stages of 2/2/4/6 s make every boundary a distinct whole second.
    sim = DifySimulator(clock=clock, time_scale=10)
    dataset_id = sim.create_dataset()
    async with serving(sim) as api:
        created = await api.create_text(dataset_id, "a.txt", PARAGRAPHS)
        seen = await walk(api, clock, dataset_id, created["batch"], 15, step=0.1)
    start = created["document"]["created_at"]
    by_status = {entry["indexing_status"]: entry for entry in seen}
    waiting, parsing = by_status["waiting"], by_status["parsing"]
    splitting, indexing = by_status["splitting"], by_status["indexing"]
    completed = by_status["completed"]
    assert all(waiting[key] is None for key in STAMPS)
    assert parsing["processing_started_at"] == start + 2
    assert all(parsing[key] is None for key in STAMPS[1:])
    assert splitting["parsing_completed_at"] == start + 4
    assert splitting["splitting_completed_at"] is None
    assert indexing["cleaning_completed_at"] == indexing["splitting_completed_at"] == start + 8
    assert indexing["completed_at"] is None
    assert completed["completed_at"] == start + 14
    for entry in by_status.values():
        assert entry["paused_at"] is None
        assert entry["error"] is None
        assert entry["stopped_at"] is None


async def test_segments_grow_while_splitting_and_complete_in_coarse_steps(
    api: Api, clock: ManualClock, dataset_id: str
) -> None:
    created = await api.create_text(dataset_id, "a.txt", PARAGRAPHS)
    seen = await walk(api, clock, dataset_id, created["batch"], 1.6)
    total = seen[-1]["total_segments"]
    assert total == 8
    splitting = [e["total_segments"] for e in seen if e["indexing_status"] == "splitting"]
    assert splitting == sorted(splitting)
    assert splitting[0] < total
    assert len(set(splitting)) > 2
    for entry in seen:
        if entry["indexing_status"] in ("waiting", "parsing", "splitting"):
            assert entry["completed_segments"] == 0
    indexing = [e["completed_segments"] for e in seen if e["indexing_status"] == "indexing"]
    assert indexing[0] == 0
    assert indexing[-1] == total  # completed == total while still indexing (01c, 05b)
    assert len(set(indexing)) <= 5
    assert {e["total_segments"] for e in seen if e["indexing_status"] == "indexing"} == {total}
    assert (seen[-1]["completed_segments"], seen[-1]["indexing_status"]) == (total, "completed")


@pytest.mark.parametrize(
    ("stage", "counts"), [("parsing", (0, 0)), ("splitting", (0, 0)), ("indexing", (0, 8))]
)
async def test_fail_at_turns_the_document_into_an_error(
    sim: DifySimulator,
    api: Api,
    clock: ManualClock,
    dataset_id: str,
    stage: str,
    counts: tuple[int, int],
) -> None:
    sim.script("bad.txt", DocumentScript(fail_at=stage, error="boom"))
    created = await api.create_text(dataset_id, "bad.txt", PARAGRAPHS)
    seen = await walk(api, clock, dataset_id, created["batch"], 2)
    final = seen[-1]
    assert final["indexing_status"] == "error"
    assert final["error"] == "boom"
    assert final["stopped_at"] is not None
    assert final["completed_at"] is None
    assert (final["completed_segments"], final["total_segments"]) == counts
    assert "completed" not in statuses(seen)


async def test_stall_at_holds_the_stage_until_released(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    document_id, batch = sim.add_document(
        dataset_id, "stuck.txt", PARAGRAPHS, script=DocumentScript(stall_at="indexing")
    )
    clock.advance(600)
    (stuck,) = await api.status(dataset_id, batch)
    assert (stuck["indexing_status"], stuck["completed_segments"]) == ("indexing", 0)
    clock.advance(600)
    assert await api.status(dataset_id, batch) == [stuck]
    sim.release(document_id)
    clock.advance(0.59)
    (still,) = await api.status(dataset_id, batch)
    assert still["indexing_status"] == "indexing"
    clock.advance(0.02)
    (done,) = await api.status(dataset_id, batch)
    assert done["indexing_status"] == "completed"


async def test_release_before_the_stall_cancels_it(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    document_id, batch = sim.add_document(
        dataset_id, "x.txt", "text", script=DocumentScript(stall_at="waiting")
    )
    sim.release(document_id)
    clock.advance(2)
    assert (await api.status(dataset_id, batch))[0]["indexing_status"] == "completed"


async def test_pause_freezes_the_timeline_and_resume_continues(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    document_id, batch = sim.add_document(dataset_id, "p.txt", PARAGRAPHS)
    clock.advance(1.0)  # 0.2 s into indexing
    (before,) = await api.status(dataset_id, batch)
    sim.pause(document_id)
    sim.pause(document_id)  # a second pause is a no-op, as in 07c
    clock.advance(100)
    (paused,) = await api.status(dataset_id, batch)
    assert paused["indexing_status"] == "paused"
    assert (
        paused["paused_at"] == before["splitting_completed_at"]
        or paused["paused_at"] >= (before["splitting_completed_at"])
    )
    assert paused["completed_segments"] == before["completed_segments"]
    listed = (await api.get(f"/v1/datasets/{dataset_id}/documents")).json["data"][0]
    assert (listed["indexing_status"], listed["display_status"]) == ("indexing", "paused")
    sim.resume(document_id)
    (resumed,) = await api.status(dataset_id, batch)
    assert (resumed["indexing_status"], resumed["paused_at"]) == ("indexing", None)
    clock.advance(0.39)
    assert (await api.status(dataset_id, batch))[0]["indexing_status"] == "indexing"
    clock.advance(0.02)
    assert (await api.status(dataset_id, batch))[0]["indexing_status"] == "completed"


async def test_pause_at_pauses_on_entering_the_stage(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    document_id, batch = sim.add_document(
        dataset_id, "p.txt", "text", script=DocumentScript(pause_at="splitting")
    )
    clock.advance(50)
    (paused,) = await api.status(dataset_id, batch)
    assert paused["indexing_status"] == "paused"
    assert paused["paused_at"] == paused["parsing_completed_at"]
    sim.resume(document_id)
    clock.advance(1.0)
    assert (await api.status(dataset_id, batch))[0]["indexing_status"] == "completed"


def test_pausing_a_finished_document_is_refused(sim: DifySimulator, clock: ManualClock) -> None:
    dataset_id = sim.create_dataset()
    document_id, _ = sim.add_document(dataset_id, "a.txt", "text")
    clock.advance(5)
    with pytest.raises(ValueError, match="already completed"):
        sim.pause(document_id)
    with pytest.raises(KeyError):
        sim.pause("00000000-0000-4000-8000-000000000000")


async def test_recreating_a_name_reuses_the_document_and_keeps_old_values_while_waiting(
    api: Api, clock: ManualClock, dataset_id: str
) -> None:
    first = await api.create_text(dataset_id, "note.txt", PARAGRAPHS)
    clock.advance(5)
    (old,) = await api.status(dataset_id, first["batch"])
    clock.advance(5)
    second = await api.create_text(dataset_id, "note.txt", PARAGRAPHS + "\n\nOne more.")
    assert second["document"]["id"] == first["document"]["id"]
    assert second["batch"] != first["batch"]
    assert second["document"]["indexing_status"] == "waiting"
    assert second["document"]["position"] == first["document"]["position"]
    old_batch = await api.get(
        f"/v1/datasets/{dataset_id}/documents/{first['batch']}/indexing-status"
    )
    assert old_batch.status == 404
    (waiting,) = await api.status(dataset_id, second["batch"])
    assert waiting["indexing_status"] == "waiting"
    assert {k: waiting[k] for k in STAMPS} == {k: old[k] for k in STAMPS}
    assert (waiting["completed_segments"], waiting["total_segments"]) == (8, 8)
    clock.advance(0.25)
    (parsing,) = await api.status(dataset_id, second["batch"])
    assert parsing["indexing_status"] == "parsing"
    assert parsing["processing_started_at"] > old["processing_started_at"]
    assert parsing["completed_at"] == old["completed_at"]
    assert (parsing["completed_segments"], parsing["total_segments"]) == (0, 0)
    clock.advance(2)
    (done,) = await api.status(dataset_id, second["batch"])
    assert done["completed_at"] > old["completed_at"]
    assert done["total_segments"] == 9


async def test_multi_document_batch_is_processed_one_at_a_time_in_shuffled_order(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    first, batch = sim.add_document(dataset_id, "m0.txt", PARAGRAPHS)
    second, _ = sim.add_document(dataset_id, "m1.txt", PARAGRAPHS, batch=batch)
    third, _ = sim.add_document(dataset_id, "m2.txt", PARAGRAPHS, batch=batch)
    clock.advance(0.3)
    entries = {e["id"]: e for e in await api.status(dataset_id, batch)}
    assert {e["indexing_status"] for e in entries.values()} == {"parsing"}
    assert len({e["processing_started_at"] for e in entries.values()}) == 1
    clock.advance(1.4)  # the first is done; the second is working; the third still parses
    entries = {e["id"]: e for e in await api.status(dataset_id, batch)}
    assert entries[first]["indexing_status"] == "completed"
    assert entries[second]["indexing_status"] == "splitting"
    assert entries[third]["indexing_status"] == "parsing"
    orders = {tuple(e["id"] for e in await api.status(dataset_id, batch)) for _ in range(10)}
    assert len(orders) > 1
    assert {frozenset(order) for order in orders} == {frozenset({first, second, third})}
    clock.advance(5)
    assert {e["indexing_status"] for e in await api.status(dataset_id, batch)} == {"completed"}


async def test_shuffle_can_be_switched_off(clock: ManualClock) -> None:
    sim = DifySimulator(clock=clock, shuffle=False)
    dataset_id = sim.create_dataset()
    ids = [sim.add_document(dataset_id, "a.txt", "a")[0]]
    batch = sim.add_document(dataset_id, "b.txt", "b", batch=None)[1]
    ids = [sim.add_document(dataset_id, f"c{i}.txt", "c", batch=batch)[0] for i in range(3)]
    async with serving(sim) as api:
        orders = {tuple(e["id"] for e in await api.status(dataset_id, batch)) for _ in range(5)}
    assert len(orders) == 1
    assert list(orders.pop())[1:] == ids


async def test_custom_stages_report_unknown_statuses_verbatim(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    script = DocumentScript(stages=[("waiting", 0.1), ("vectorizing", 0.2)])
    _, batch = sim.add_document(dataset_id, "v.txt", "text", script=script)
    clock.advance(0.15)
    (entry,) = await api.status(dataset_id, batch)
    assert entry["indexing_status"] == "vectorizing"
    assert entry["processing_started_at"] is not None
    listed = (await api.get(f"/v1/datasets/{dataset_id}/documents")).json["data"][0]
    assert (listed["indexing_status"], listed["display_status"]) == ("vectorizing", "indexing")
    clock.advance(0.2)
    assert (await api.status(dataset_id, batch))[0]["indexing_status"] == "completed"


async def test_initial_status_only_changes_the_create_response(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    sim.script("fast.txt", DocumentScript(initial_status="splitting"))
    created = await api.create_text(dataset_id, "fast.txt", "text")
    assert created["document"]["indexing_status"] == "splitting"
    assert created["document"]["display_status"] == "indexing"
    assert (await api.status(dataset_id, created["batch"]))[0]["indexing_status"] == "waiting"
    sim.script("fast.txt", None)
    again = await api.create_text(dataset_id, "fast.txt", "text")
    assert again["document"]["indexing_status"] == "waiting"


async def test_time_scale_and_script_overrides(clock: ManualClock) -> None:
    sim = DifySimulator(clock=clock, time_scale=0.1)
    dataset_id = sim.create_dataset()
    _, fast = sim.add_document(dataset_id, "fast.txt", "text")
    _, slow = sim.add_document(
        dataset_id, "slow.txt", "text", script=DocumentScript(time_scale=1.0)
    )
    _, explicit = sim.add_document(
        dataset_id, "explicit.txt", "text", script=DocumentScript(stages=[("waiting", 1.0)])
    )
    sim.default_script = DocumentScript(segments=3)
    _, three = sim.add_document(dataset_id, "three.txt", "one two three four")
    clock.advance(0.5)
    async with serving(sim) as api:
        assert (await api.status(dataset_id, fast))[0]["indexing_status"] == "completed"
        assert (await api.status(dataset_id, slow))[0]["indexing_status"] == "splitting"
        assert (await api.status(dataset_id, explicit))[0]["indexing_status"] == "waiting"
        assert (await api.status(dataset_id, three))[0]["total_segments"] == 3


def test_scripts_are_validated() -> None:
    with pytest.raises(ValueError, match="not a stage"):
        DocumentScript(fail_at="cleaning")
    with pytest.raises(ValueError, match="not a stage"):
        DocumentScript(stages=[("waiting", 1)], stall_at="indexing")
    with pytest.raises(ValueError, match="negative"):
        DocumentScript(stages=[("waiting", -1)])
    with pytest.raises(ValueError, match="non-empty"):
        DocumentScript(stages=[("", 1)])
    with pytest.raises(ValueError, match="segments"):
        DocumentScript(segments=-1)
    with pytest.raises(ValueError, match="time_scale"):
        DocumentScript(time_scale=-1)


def test_manual_clock() -> None:
    clock = ManualClock(5)
    clock.advance(1.5)
    assert clock() == clock.now == 6.5
    assert "6.5" in repr(clock)
    with pytest.raises(ValueError, match="monotonic"):
        clock.advance(-1)
