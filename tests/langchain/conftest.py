"""Fixtures of the LangChain adapter tests: a moving simulator clock, and a seeded simulator.

Nothing here imports LangChain: each test module skips itself when ``langchain_core`` is
missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dify_ingest_tools.testing import DifySimulator

from ..conftest import QUICK as QUICK  # re-exported for the tests of this package

#: Paragraphs the seeded simulator serves; each is one segment mentioning "refund".
REFUND_FAQ = (
    "Refund policy: a full refund is possible within 30 days of purchase.",
    "A refund is paid back to the card used for the purchase within five days.",
    "A refund for a gift goes to the person who bought it.",
    "Shipping costs are part of the refund when the item arrived damaged.",
)


@dataclass(frozen=True)
class Seeded:
    """A served simulator whose documents are already indexed."""

    sim: DifySimulator
    base_url: str
    dataset_id: str
    batch: str


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    """For the langchain-tests standard suites: indexed documents, served from a thread."""
    sim = DifySimulator(time_scale=0)  # every stage takes no time: documents are ready at once
    dataset_id = sim.create_dataset("standard-tests")
    _, batch = sim.add_document(dataset_id, "faq.txt", "\n\n".join(REFUND_FAQ[:2]))
    for number, text in enumerate(REFUND_FAQ[2:]):
        sim.add_document(dataset_id, f"faq-{number}.txt", text)
    with sim.serve_in_thread() as base_url:
        yield Seeded(sim, base_url, dataset_id, batch)
