"""Dify Cloud's knowledge rate limit: a per-workspace sliding window, refused calls counted.

Dify (``cloud_edition_billing_rate_limit_check`` in ``controllers/service_api/wraps.py``)
adds each request's time to a Redis sorted set per tenant, drops entries older than 60 s, and
answers 403 when more than the plan's limit remain. The request is added before the check,
so refused calls keep the window full. The decorator sits inside the dataset-token check:
requests refused for their key (401) or their dataset (404, API disabled) are not counted.

One difference, deliberate: Dify's set members are millisecond timestamps, so two requests
in the same millisecond count once there. The simulator counts every request, which makes
it at least as strict as Dify and keeps tests deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from ._core import Core
from ._faults import RATE_LIMIT_MESSAGE
from ._http import error_response

__all__ = ["COUNTED_ROUTES", "DEFAULT_WORKSPACE", "WorkspaceRateLimit", "admit"]

#: Routes whose writes carry the decorator in Dify (the simulator's names for them); a GET
#: never does. Status polls, document lists and details, and the batch status actions
#: (``PATCH .../documents/status/{action}``) are not rate limited.
COUNTED_ROUTES = frozenset(
    {
        "create_dataset",
        "delete_dataset",
        "create_by_text",
        "create_by_file",
        "update_by_text",
        "update_by_file",
        "delete_document",
        "retrieve",
        "metadata_fields",
        "metadata_field",
        "builtin_action",
        "documents_metadata",
    }
)
#: The workspace of every key not named in ``workspaces``.
DEFAULT_WORKSPACE = "default"


@dataclass
class WorkspaceRateLimit:
    """The windows of every workspace of one simulator.

    Attributes:
        limit: Requests admitted per window and workspace (Dify: 10, 100 or 1000 per plan).
        window: The window in simulator-clock seconds (Dify: 60).
        workspaces: API key -> workspace name; other keys share `DEFAULT_WORKSPACE`.
        hits: Per workspace, the arrival times still inside the window.
        refused: Per workspace, how many requests were answered with the 403.
    """

    limit: int
    window: float
    workspaces: Mapping[str, str] = field(default_factory=dict)
    hits: dict[str, deque[float]] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"the rate limit must be >= 1 request per window, not {self.limit}")
        if self.window <= 0:
            raise ValueError(f"the window must be > 0 seconds, not {self.window!r}")

    def workspace_of(self, key: str) -> str:
        return self.workspaces.get(key, DEFAULT_WORKSPACE)

    def hit(self, workspace: str, now: float) -> bool:
        """Count one request; True if it is admitted."""
        hits = self.hits.setdefault(workspace, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        hits.append(now)
        if len(hits) > self.limit:
            self.refused[workspace] = self.refused.get(workspace, 0) + 1
            return False
        return True


def admit(
    core: Core, route: str, method: str, params: Mapping[str, str], authorization: str | None
) -> web.Response | None:
    """The 403 for a request over its workspace's limit, or None to let it through.

    Called for authenticated requests only, just before the route handler.
    """
    limiter = core.rate_limit
    if limiter is None or route not in COUNTED_ROUTES or method in ("GET", "HEAD"):
        return None
    key = (authorization or "").split(None, 1)[-1]
    with core.store.lock:
        dataset_id = params.get("dataset_id")
        if dataset_id is not None:
            dataset = core.store.dataset(dataset_id)
            if dataset is None or not dataset.enable_api:
                return None  # the dataset check answers first, uncounted
        if limiter.hit(limiter.workspace_of(key), core.store.clock()):
            return None
    return error_response(403, "forbidden", RATE_LIMIT_MESSAGE)
