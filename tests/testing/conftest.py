"""Fixtures for the simulator tests: a manual clock, a served simulator, a plain HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from dify_ingest_tools.testing import DifySimulator, ManualClock

# The plugin is opted into by tests/conftest.py (`pytest_plugins`), as users do.
from .helpers import Api


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> DifySimulator:
    """A simulator on a manual clock: documents move only when a test advances time."""
    return DifySimulator(clock=clock)


@pytest.fixture
def dataset_id(sim: DifySimulator) -> str:
    return sim.create_dataset("tests")


@pytest.fixture
async def base_url(sim: DifySimulator) -> AsyncIterator[str]:
    async with sim.serve() as url:
        yield url


@pytest.fixture
async def api(sim: DifySimulator, base_url: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, base_url, sim.api_key)
