"""`Outcome`: how a wait ended, the one vocabulary every surface maps from."""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    """How a wait ended: one vocabulary for the CLI's exit codes, tool answers, telemetry,
    readiness gates and events (`readiness.policy.outcome_of` computes it from a status or an
    error).
    """

    ready = "ready"
    """Every document ``completed`` (and produced chunks)."""
    failed = "failed"
    """A document ended in ``error``: Dify's text says why."""
    paused = "paused"
    """A document is paused; only Dify's console resumes it."""
    stalled = "stalled"
    """Nothing changed for ``stall_timeout``: the indexing worker may be down."""
    timed_out = "timed_out"
    """The deadline passed while Dify was still working."""
    unreachable = "unreachable"
    """Dify could not be reached or refused the request (connection, auth, configuration)."""
    not_found = "not_found"
    """Dify does not know the batch, document or dataset."""
    cancelled = "cancelled"
    """The caller gave up (task cancelled, Ctrl-C, a watch no longer read)."""
    empty = "empty"
    """``completed`` with 0 segments: indexed, but nothing will be found."""

    def __str__(self) -> str:
        return self.value
