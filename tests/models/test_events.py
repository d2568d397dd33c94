"""`IndexingEvent` shown to people: ``on_event=print`` prints one readable line per event.

Driven by a real wait against the simulator, with a document whose error text is hostile
(the API key echoed, a terminal escape, newlines, kilobytes).
"""

from __future__ import annotations

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, IndexingEvent, IndexingFailedError
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock
from tests.conftest import FAST, QUICK

SECRET = "dataset-Zq8pL2mN4vR6tY1uW3xK5bH7"
HOSTILE = f"boom\n\x1b[2J\x1b]0;pwned\x07 Authorization: Bearer {SECRET}\r\n" + "x" * 5000


async def test_on_event_print_shows_one_short_safe_line_per_event(
    clock: ManualClock, capsys: pytest.CaptureFixture[str], advancing: None
) -> None:
    sim = DifySimulator(api_key=SECRET, clock=clock)
    dataset_id = sim.create_dataset("events")
    sim.script("bad.txt", DocumentScript(fail_at="splitting", error=HOSTILE))
    events: list[IndexingEvent] = []

    def seen(event: IndexingEvent) -> None:
        events.append(event)
        print(event)

    async with (
        sim.serve() as base_url,
        AsyncDifyKnowledgeClient(SECRET, base_url, **FAST) as client,
    ):
        good = await client.create_document_by_text(dataset_id, "good.txt", "alpha")
        bad = await client.create_document_by_text(dataset_id, "bad.txt", "beta")
        await client.wait_for_indexing(dataset_id, good.batch, on_event=seen, **QUICK)
        with pytest.raises(IndexingFailedError):
            await client.wait_for_indexing(dataset_id, bad.batch, on_event=seen, **QUICK)
    printed = capsys.readouterr().out.splitlines()
    kinds = [event.kind for event in events]
    assert {"progress", "document_completed", "batch_completed", "document_failed"} <= set(kinds)
    assert len(printed) == len(events)  # one line each, whatever the server sent
    for line, event in zip(printed, events, strict=True):
        assert line.startswith(f"{event.kind}: batch {event.batch} of dataset {dataset_id}")
        assert len(line) < 400, line
        assert SECRET not in line and "\x1b" not in line and "\x07" not in line and "\r" not in line
        shown = repr(event)
        assert shown.startswith(f"IndexingEvent(kind={event.kind!r}") and len(shown) < 400
        assert SECRET not in shown and "\x1b" not in shown
    completed = printed[kinds.index("batch_completed")]
    assert "1/1 documents completed" in completed and "(100%)" in completed
    failed = printed[kinds.index("document_failed")]
    assert f"document {bad.document_id} error" in failed
    # The error arrives escaped (newline as \n): one line either way, nothing raw.
    assert "error: boom" in failed and "\\x1b[2J" in failed
    assert "[redacted]" in failed and failed.endswith("…")
