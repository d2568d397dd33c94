"""Fixtures for the simulator tests: a plain HTTP client on the served simulator.

The simulator, its manual clock, a dataset and the base URL come from ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from dify_ingest_tools.testing import DifySimulator

from .helpers import Api


@pytest.fixture
async def api(sim: DifySimulator, base_url: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, base_url, sim.api_key)
