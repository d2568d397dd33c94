"""The langchain-tests standard suites, unmodified, for both tools and the retriever.

The integration suites run against a served simulator whose documents are already indexed
(``seeded``). Each tool and retriever is built the way users build them, from ``api_key`` and
``base_url``, so it owns its own blocking client (closed when the component is collected).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import (
    RetrieversIntegrationTests,
    ToolsIntegrationTests,
)
from langchain_tests.unit_tests import ToolsUnitTests

from dify_ingest_tools.langchain import (
    DifyIndexingStatusTool,
    DifyRetriever,
    DifyWaitForIndexingTool,
)

from .conftest import QUICK, Seeded

# Construction only: nothing is sent to this address in the unit suites.
OFFLINE = {"api_key": "dataset-unit-test-key", "base_url": "http://127.0.0.1:9/v1"}
ENV: tuple[dict[str, str], dict[str, Any], dict[str, Any]] = (
    {"DIFY_API_KEY": "dataset-from-the-environment", "DIFY_API_BASE_URL": "http://127.0.0.1:9/v1"},
    {},
    {"api_key": "dataset-from-the-environment", "base_url": "http://127.0.0.1:9/v1"},
)
SOME_DATASET = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
SOME_BATCH = "20250612093011123456"


# -- unit suites ----------------------------------------------------------------------------


class TestStatusToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DifyIndexingStatusTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return dict(OFFLINE)

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"dataset_id": SOME_DATASET, "batch": SOME_BATCH}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ENV


class TestBoundStatusToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DifyIndexingStatusTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**OFFLINE, "dataset_id": SOME_DATASET}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"batch": SOME_BATCH}


class TestWaitToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DifyWaitForIndexingTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return dict(OFFLINE)

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"dataset_id": SOME_DATASET, "batch": SOME_BATCH, "timeout_seconds": 10}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ENV


class TestBoundWaitToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DifyWaitForIndexingTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**OFFLINE, "dataset_id": SOME_DATASET, "max_timeout_seconds": 60}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"batch": SOME_BATCH, "timeout_seconds": 10}


# -- integration suites, on the simulator ---------------------------------------------------


class OnSimulator:
    """Hands the module's seeded simulator to the suite's constructor properties."""

    seeded: ClassVar[Seeded]

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _on_simulator(cls, seeded: Seeded) -> None:
        cls.seeded = seeded

    def connection(self) -> dict[str, Any]:
        return {"api_key": self.seeded.sim.api_key, "base_url": self.seeded.base_url}


class TestStatusToolIntegration(OnSimulator, ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DifyIndexingStatusTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return self.connection()

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"dataset_id": self.seeded.dataset_id, "batch": self.seeded.batch}


class TestBoundStatusToolIntegration(OnSimulator, ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DifyIndexingStatusTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**self.connection(), "dataset_id": self.seeded.dataset_id}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"batch": self.seeded.batch}


class TestWaitToolIntegration(OnSimulator, ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DifyWaitForIndexingTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**self.connection(), **QUICK}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {
            "dataset_id": self.seeded.dataset_id,
            "batch": self.seeded.batch,
            "timeout_seconds": 5,
        }


class TestBoundWaitToolIntegration(OnSimulator, ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DifyWaitForIndexingTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {**self.connection(), **QUICK, "dataset_id": self.seeded.dataset_id}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"batch": self.seeded.batch, "timeout_seconds": 5}


class TestRetrieverIntegration(OnSimulator, RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return DifyRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {**self.connection(), "dataset_id": self.seeded.dataset_id}

    @property
    def retriever_query_example(self) -> str:
        return "refund policy"
