"""Progress bars (text form): counts, labels, and red for every batch that did not get ready.

The widget form (Jupyter) is exercised by ``tests/test_notebooks.py``, in a real kernel.
Documents and waits share one autojumping `FakeClock`: a timeout or a stall is reached the
same way however busy the machine is.
"""

from __future__ import annotations

import io

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools._base.clock import FakeClock
from dify_ingest_tools.readiness.progress import ProgressBars
from dify_ingest_tools.testing import DifySimulator, DocumentScript

RED = "\x1b[31m"  # tqdm's ANSI colour for colour="red", around the bar


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    """The simulator's documents move on the client's fake time."""
    return fake_clock


@pytest.fixture
def client(fake_client: AsyncDifyKnowledgeClient) -> AsyncDifyKnowledgeClient:
    return fake_client


def last_line(text: str) -> str:
    return text.replace("\r", "\n").strip().splitlines()[-1]


async def test_a_ready_batch_counts_its_segments_and_is_not_red(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha\n\nbeta\n\ngamma")
    out = io.StringIO()
    with ProgressBars(file=out) as bars:
        await client.wait_for_indexing(dataset_id, batch, timeout=60, on_event=bars)
    line = last_line(out.getvalue())
    assert line.startswith(f"batch {batch} ready: 100%") and "3/3" in line
    assert RED not in out.getvalue()


async def test_a_failed_batch_ends_red_with_its_real_counts(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    script = DocumentScript(fail_at="indexing", error="boom.")
    _, batch = sim.add_document(dataset_id, "b.txt", "\n\n".join("abcd"), script=script)
    out = io.StringIO()
    with ProgressBars(file=out) as bars, pytest.raises(IndexingFailedError):
        await client.wait_for_indexing(dataset_id, batch, timeout=60, on_event=bars)
    line = last_line(out.getvalue())
    assert line.startswith(f"batch {batch} FAILED:") and "/4 " in line and "failed: boom." in line
    assert RED in line


async def test_a_timed_out_batch_ends_red_and_not_ready(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    # No event says "timed out": the wait raises. Closing the bars tells them.
    _, batch = sim.add_document(
        dataset_id, "c.txt", "a\n\nb", script=DocumentScript(stall_at="indexing")
    )
    clock.advance(10)
    out = io.StringIO()
    with ProgressBars(file=out) as bars, pytest.raises(IndexingTimeoutError):
        await client.wait_for_indexing(dataset_id, batch, timeout=30, on_event=bars)
    line = last_line(out.getvalue())
    assert line.startswith(f"batch {batch} not ready:") and "/2 " in line
    assert RED in line and "1 indexing" in line


async def test_a_batch_without_segments_yet_says_not_ready_in_its_label(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    # Before Dify counts segments there is no bar to colour: the label says it.
    _, batch = sim.add_document(
        dataset_id, "c.txt", "text", script=DocumentScript(stall_at="waiting")
    )
    out = io.StringIO()
    with ProgressBars(file=out) as bars, pytest.raises(IndexingTimeoutError):
        # The first answer comes before any time passes (the fake clock stands still while
        # a poll is out); the batch never leaves the queue.
        await client.wait_for_indexing(dataset_id, batch, timeout=30, on_event=bars)
    line = last_line(out.getvalue())
    assert line.startswith(f"batch {batch} not ready: 0seg") and "1 waiting" in line


async def test_a_stalled_batch_says_so_in_red(
    sim: DifySimulator, clock: FakeClock, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    _, batch = sim.add_document(
        dataset_id, "d.txt", "text", script=DocumentScript(stall_at="indexing")
    )
    clock.advance(10)
    out = io.StringIO()
    with ProgressBars(file=out) as bars, pytest.raises(IndexingStalledError):
        await client.wait_for_indexing(
            dataset_id, batch, timeout=60, stall_timeout=5, on_event=bars
        )
    line = last_line(out.getvalue())
    assert line.startswith(f"batch {batch} STALLED") and RED in line
