"""The simulator's fault controls: Dify Cloud's rate limit, injected faults, chaos mode.

A mixin of `DifySimulator` (its facade stays one class); every method takes the simulator's
lock, as the rest of the facade does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from ._core import Core
from ._faults import Fault
from ._ratelimit import DEFAULT_WORKSPACE, WorkspaceRateLimit
from ._routing import ROUTE_NAMES

__all__ = ["FaultControls"]


class FaultControls:
    """Rate limit and fault injection of `DifySimulator`."""

    _core: Core
    _lock: threading.RLock

    # -- Dify Cloud's knowledge rate limit -------------------------------------------------

    def set_rate_limit(
        self,
        limit: int | None,
        *,
        window: float = 60.0,
        workspaces: Mapping[str, str] | None = None,
    ) -> None:
        """Enforce Dify Cloud's per-workspace knowledge rate limit (off by default).

        Every key of one workspace shares a sliding window of ``window`` seconds (simulator
        clock) in which ``limit`` counted requests are admitted; the next ones get Dify's 403
        ``forbidden`` "Sorry, you have reached the knowledge base request rate limit of your
        subscription." (no ``Retry-After``) and, as in Dify, count too. Counted: creates,
        updates, deletes, dataset creation and retrieve; not status polls, lists or details.

        Args:
            limit: Requests per window and workspace (Dify: 10, 100, 1000 per plan); ``None``
                turns the limit off.
            window: The window in seconds (Dify: 60; scale it down for fast tests).
            workspaces: API key -> workspace name, to give keys separate windows; keys not
                named share one workspace.
        """
        limiter = None
        if limit is not None:
            limiter = WorkspaceRateLimit(limit, float(window), dict(workspaces or {}))
        with self._lock:
            self._core.rate_limit = limiter

    def rate_limited_count(self, workspace: str = DEFAULT_WORKSPACE) -> int:
        """How many requests of ``workspace`` were refused by the rate limit so far."""
        with self._lock:
            limiter = self._core.rate_limit
            return limiter.refused.get(workspace, 0) if limiter is not None else 0

    # -- faults ------------------------------------------------------------------------------

    def inject(
        self, fault: Fault, *, route: str | None = None, method: str | None = None, times: int = 1
    ) -> None:
        """Answer the next matching requests with ``fault`` instead of normally.

        Faults apply after route matching and before authentication.

        Args:
            fault: What to do (see :class:`Fault`).
            route: Only requests to this route (e.g. ``"indexing_status"``); ``None`` = any.
            method: Only this HTTP method; ``None`` = any.
            times: How many requests; -1 = every one until :meth:`clear_faults`.

        Raises:
            ValueError: For an unknown route name or a bad ``times``.
        """
        if route is not None and route not in ROUTE_NAMES:
            raise ValueError(f"unknown route {route!r}; routes are {', '.join(ROUTE_NAMES)}")
        with self._lock:
            self._core.faults.inject(fault, route, method, times)

    @property
    def fault_rate(self) -> float:
        """Chaos mode: the probability (0..1) that a request gets one of :attr:`random_faults`."""
        return self._core.faults.fault_rate

    @fault_rate.setter
    def fault_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault_rate must be within 0..1, not {rate!r}")
        with self._lock:
            self._core.faults.fault_rate = rate

    @property
    def random_faults(self) -> Sequence[Fault]:
        """The faults chaos mode draws from (default: transient 5xx/502-504/429/403/drops)."""
        return self._core.faults.random_faults

    @random_faults.setter
    def random_faults(self, faults: Sequence[Fault]) -> None:
        with self._lock:
            self._core.faults.random_faults = tuple(faults)

    def clear_faults(self) -> None:
        """Drop every queued fault and set :attr:`fault_rate` back to 0."""
        with self._lock:
            self._core.faults.clear()
