"""langchain-tests' `VectorStoreIntegrationTests`, unmodified, sync and async, on the simulator.

Every test gets a fresh ``high_quality`` knowledge base: searched semantically, the simulator
ranks every indexed chunk (as a vector index returns its nearest neighbours), so the suite's
"top k of everything" expectations hold. Documents move through Dify's stages in real time
(scaled down), so each ``add_documents`` really waits for indexing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from dify_ingest_tools.langchain import DifyVectorStore
from dify_ingest_tools.testing import DifySimulator

from .conftest import QUICK


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[DifySimulator, str]]:
    sim = DifySimulator(time_scale=0.02)
    with sim.serve_in_thread() as base_url:
        yield sim, base_url


class TestDifyVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, served: tuple[DifySimulator, str]) -> Iterator[VectorStore]:
        sim, base_url = served
        dataset_id = sim.create_dataset("standard", indexing_technique="high_quality")
        store = DifyVectorStore(
            dataset_id, api_key=sim.api_key, base_url=base_url, timeout=30, **QUICK
        )
        try:
            yield store
        finally:
            store.close()
