"""Summary indexing: what Dify shows on documents while it makes their summaries.

On a dataset whose ``summary_index_setting.enable`` is true, Dify 1.14 sets a document's
``need_summary`` when indexing completes, then a task asks the summary model for every
segment. The document list and detail report ``summary_index_status: "SUMMARIZING"`` while any
segment's summary is ``not_started`` or ``generating`` and null otherwise: a summary that
failed (segment status ``error``) shows as null, exactly like one that succeeded. Summaries
are made for ``high_quality`` datasets only and never for a document with no segments. (Every
1.14.1 recording shows ``need_summary: false`` and ``summary_index_status: null``: the
recorded server had summaries off.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._timeline import COMPLETED, Timeline

__all__ = ["SUMMARIZING", "SummaryFailure", "SummarySettings", "summary_state"]

SUMMARIZING = "SUMMARIZING"

SummaryFailure = Literal["error", "stuck"]


@dataclass
class SummarySettings:
    """A dataset's summary indexing, as the simulator plays it.

    Attributes:
        enabled: ``summary_index_setting.enable``.
        seconds: How long a completed document stays ``SUMMARIZING`` (simulated clock).
        failure: ``"error"``: the summary model fails; the document goes null after
            ``seconds`` like a success (Dify shows no error on the document). ``"stuck"``: the
            summary task never finishes (a worker that died holding its claim); the document
            stays ``SUMMARIZING``.
    """

    enabled: bool = False
    seconds: float = 2.0
    failure: SummaryFailure | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seconds, (int, float)) or not self.seconds >= 0:
            raise ValueError(f"summary seconds must be >= 0, not {self.seconds!r}")
        if self.failure not in (None, "error", "stuck"):
            raise ValueError(f"summary failure must be None, 'error' or 'stuck': {self.failure!r}")


def summary_state(
    timeline: Timeline, settings: SummarySettings, technique: str | None, now: float
) -> tuple[bool, str | None]:
    """``(need_summary, summary_index_status)`` of a document at clock reading ``now``."""
    completed_at = timeline.stamps.get("completed_at")
    if not settings.enabled or timeline.status != COMPLETED or completed_at is None:
        return False, None
    if technique != "high_quality" or timeline.total_segments == 0:
        return True, None  # need_summary is set; the summary task skips the document
    if settings.failure == "stuck" or now < completed_at + settings.seconds:
        return True, SUMMARIZING
    return True, None
