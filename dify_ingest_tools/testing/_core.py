"""Everything the HTTP layer needs from one simulator, in one object."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._faults import FaultPlan
from ._records import RequestLog
from ._state import Store
from ._uploads import DEFAULT_MAX_FILE_SIZE

if TYPE_CHECKING:
    from ._ratelimit import WorkspaceRateLimit


@dataclass
class Core:
    """The shared state behind a simulator and every app or server built from it.

    Attributes:
        store: Datasets and documents (its lock guards the whole core).
        rng: The seeded random source (ids, shuffles, chaos).
        keys: Accepted dataset API keys.
        shuffle: Shuffle ``data[]`` of multi-document batches on every poll.
        faults: Queued faults and chaos settings.
        log: The request log.
        dataset_detail_error: Make ``GET /datasets/{id}`` fail like a server without a plugin
            daemon (08).
        rate_limit: Dify Cloud's per-workspace knowledge rate limit, when enabled.
        max_file_size: The upload limit in bytes; a larger file is answered 413.
    """

    store: Store
    rng: random.Random
    keys: tuple[str, ...]
    shuffle: bool
    faults: FaultPlan = field(init=False)
    log: RequestLog = field(default_factory=RequestLog)
    dataset_detail_error: bool = False
    rate_limit: WorkspaceRateLimit | None = None
    max_file_size: int = DEFAULT_MAX_FILE_SIZE

    def __post_init__(self) -> None:
        self.faults = FaultPlan(self.rng)
