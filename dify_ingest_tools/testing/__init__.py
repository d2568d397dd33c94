"""A faithful Dify Knowledge API simulator for tests, demos and notebooks.

Example:
    >>> from dify_ingest_tools.testing import DifySimulator
    >>> sim = DifySimulator(time_scale=0.02)
    >>> dataset_id = sim.create_dataset("docs")
    >>> with sim.serve_in_thread() as base_url:  # doctest: +SKIP
    ...     ...  # talk to base_url with sim.api_key

The pytest plugin (installed with the package) provides a ready ``dify_simulator`` fixture.
"""

from ._clock import ManualClock
from ._faults import Fault
from ._records import RequestRecord
from ._script import DocumentScript
from ._serving import describe, serve_forever
from .simulator import DEFAULT_API_KEY, DifySimulator

__all__ = [
    "DEFAULT_API_KEY",
    "DifySimulator",
    "DocumentScript",
    "Fault",
    "ManualClock",
    "RequestRecord",
    "describe",
    "serve_forever",
]
