"""Summary indexing in the simulator: ``need_summary`` / ``summary_index_status`` over HTTP.

Dify 1.14 reports ``summary_index_status: "SUMMARIZING"`` on the document list and detail
while a segment's summary is pending, and null otherwise (a failed summary too); summaries
are made for ``high_quality`` datasets only. The 1.14.1 recordings show the keys with
summaries off: ``need_summary: false``, ``summary_index_status: null``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from dify_ingest_tools.testing import DifySimulator, ManualClock

from .helpers import Api


async def _summary(api: Api, dataset_id: str, document_id: str) -> tuple[Any, Any, Any, Any]:
    listed = await api.get(f"/v1/datasets/{dataset_id}/documents")
    (item,) = [d for d in listed.json["data"] if d["id"] == document_id]
    detail = (await api.get(f"/v1/datasets/{dataset_id}/documents/{document_id}")).json
    return (
        item["need_summary"],
        item["summary_index_status"],
        detail["need_summary"],
        detail["summary_index_status"],
    )


async def test_a_summarizing_dataset_shows_summarizing_then_null(
    sim: DifySimulator, clock: ManualClock, api: Api
) -> None:
    dataset = sim.create_dataset("s", indexing_technique="high_quality", summaries=True)
    sim.set_summaries(dataset, seconds=5.0)
    created = await api.create_text(dataset, "s.txt", "alpha\n\nbeta")
    document_id = created["document"]["id"]
    assert created["document"]["need_summary"] is False  # set when indexing completes
    assert await _summary(api, dataset, document_id) == (False, None, False, None)
    clock.advance(2)  # completed (1.4 s of stages), summaries pending
    assert await _summary(api, dataset, document_id) == (True, "SUMMARIZING") * 2
    clock.advance(5)
    assert await _summary(api, dataset, document_id) == (True, None) * 2
    setting = (await api.get(f"/v1/datasets/{dataset}")).json["summary_index_setting"]
    assert setting["enable"] is True


async def test_summaries_off_look_like_the_recordings(
    sim: DifySimulator, clock: ManualClock, api: Api, dataset_id: str
) -> None:
    created = await api.create_text(dataset_id, "plain.txt", "alpha")
    clock.advance(10)
    assert await _summary(api, dataset_id, created["document"]["id"]) == (False, None) * 2
    setting = (await api.get(f"/v1/datasets/{dataset_id}")).json["summary_index_setting"]
    assert setting == {
        "enable": None,
        "model_name": None,
        "model_provider_name": None,
        "summary_prompt": None,
    }


async def test_stuck_summaries_never_end_and_failed_ones_end_like_success(
    sim: DifySimulator, clock: ManualClock, api: Api
) -> None:
    dataset = sim.create_dataset("s", indexing_technique="high_quality", summaries=True)
    sim.set_summaries(dataset, seconds=1.0, failure="stuck")
    stuck = (await api.create_text(dataset, "stuck.txt", "alpha"))["document"]["id"]
    clock.advance(3600)
    assert await _summary(api, dataset, stuck) == (True, "SUMMARIZING") * 2
    sim.set_summaries(dataset, seconds=1.0, failure="error")
    assert await _summary(api, dataset, stuck) == (True, None) * 2


async def test_empty_and_economy_documents_need_a_summary_that_never_comes(
    sim: DifySimulator, clock: ManualClock, api: Api
) -> None:
    hq = sim.create_dataset("hq", indexing_technique="high_quality", summaries=True)
    economy = sim.create_dataset("economy", summaries=True)
    blank = (await api.create_text(hq, "blank.txt", "   "))["document"]["id"]
    plain = (await api.create_text(economy, "plain.txt", "alpha"))["document"]["id"]
    clock.advance(2)
    assert await _summary(api, hq, blank) == (True, None) * 2
    assert await _summary(api, economy, plain) == (True, None) * 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seconds": -1.0}, "seconds must be >= 0"),
        ({"seconds": math.nan}, "seconds must be >= 0"),
        ({"seconds": "2"}, "seconds must be >= 0"),
        ({"failure": "sometimes"}, "failure must be None, 'error' or 'stuck'"),
    ],
)
def test_confused_summary_settings_are_refused(
    sim: DifySimulator, options: dict[str, Any], message: str
) -> None:
    dataset = sim.create_dataset("s", indexing_technique="high_quality")
    with pytest.raises(ValueError, match=message):
        sim.set_summaries(dataset, **options)
    with pytest.raises(KeyError):
        sim.set_summaries("00000000-0000-4000-8000-000000000000")
