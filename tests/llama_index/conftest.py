"""Fixtures for the LlamaIndex adapter tests: moving clocks and a recording event handler.

The simulator, its URLs and the clients come from ``tests/conftest.py``. Nothing here imports
LlamaIndex at collection time: each test module skips itself when it is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ..conftest import QUICK as QUICK  # re-exported for the tests of this package

if TYPE_CHECKING:
    from .helpers import Recorder


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A handler on LlamaIndex's root dispatcher, removed after the test."""
    from llama_index.core.instrumentation import get_dispatcher

    from .helpers import Recorder

    root = get_dispatcher()
    handler = Recorder()
    root.add_event_handler(handler)
    yield handler
    root.event_handlers = [h for h in root.event_handlers if h is not handler]
