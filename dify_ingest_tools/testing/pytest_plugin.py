"""pytest plugin: the ``dify_simulator`` fixture.

Opt in from your ``conftest.py``::

    pytest_plugins = ["dify_ingest_tools.testing.pytest_plugin"]

It is deliberately not auto-registered through a ``pytest11`` entry point: that would import
this package (and aiohttp) into every pytest session of every project that has it installed,
before coverage measurement starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .simulator import DifySimulator


@pytest.fixture
def dify_simulator() -> Iterator[DifySimulator]:
    """A served Dify simulator with one dataset, for sync and async tests alike.

    The simulator runs ``time_scale=0.05`` (a default document completes in about 70 ms) and is
    served from its own thread, so blocking clients work as well as async ones. Use
    ``dify_simulator.base_url``, ``.api_key`` and ``.dataset_id``.
    """
    from .simulator import DifySimulator

    sim = DifySimulator(time_scale=0.05)
    sim.create_dataset("pytest")
    with sim.serve_in_thread():
        yield sim
