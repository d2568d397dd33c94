"""Per-document scripts: how a simulated document moves through Dify's indexing stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The stage sequence a real Dify 1.14.1 worker reported, with the simulator's base durations
#: in seconds (before ``time_scale``). ``cleaning`` is deliberately absent: the indexing runner
#: never sets it, and no poll in the recordings ever showed it, even at 20 ms intervals.
DEFAULT_STAGES: tuple[tuple[str, float], ...] = (
    ("waiting", 0.2),
    ("parsing", 0.2),
    ("splitting", 0.4),
    ("indexing", 0.6),
)

#: What Dify reported for a ``.pdf`` whose bytes are not a PDF (recording 02a).
PDF_ERROR = "Failed to load document (PDFium: Data format error)."


@dataclass(frozen=True)
class DocumentScript:
    """How one simulated document behaves while it is indexed.

    Every stage is entered in order and lasts its duration; after the last one the document is
    ``completed``. The flags below turn that happy path into the failure modes seen in real
    deployments.

    Attributes:
        stages: Explicit ``(status, seconds)`` pairs before ``completed``. Any status string is
            allowed (e.g. ``"vectorizing"``) and is reported verbatim, so clients can be tested
            against statuses they do not know. ``None`` uses the default timeline
            (``waiting 0.2 s, parsing 0.2 s, splitting 0.4 s, indexing 0.6 s``), which the
            simulator's ``time_scale`` multiplies. Explicit durations are taken as given (only
            this script's own ``time_scale`` multiplies them).
        fail_at: A stage name; on entering it the document goes to ``error`` with ``error`` as
            its message and ``stopped_at`` set, keeping the segment counts it had then.
        error: The error text reported for ``fail_at``.
        stall_at: A stage name; the document stays in it forever (a dead worker) until
            ``DifySimulator.release`` is called. Releasing before the stage is reached
            cancels the stall.
        pause_at: A stage name; on entering it the document is paused as if from Dify's
            console (status ``paused``, ``paused_at`` set) until ``DifySimulator.resume``.
        segments: Total segment count. ``None`` derives it from the text (paragraphs cut to
            about 500 characters; empty or whitespace-only text gives 0 segments and still
            ends ``completed``, as recorded in 02c/02d).
        time_scale: Multiplies this document's durations, overriding the simulator's
            ``time_scale`` for the default timeline.
        initial_status: The ``indexing_status`` shown in the create response. ``None`` shows
            whatever the timeline says at that instant. Real servers often answer with a
            status already past ``waiting`` (01a) or already ``error`` (02a).

    Raises:
        ValueError: If a stage name is empty, a duration, ``segments`` or ``time_scale`` is
            negative, or ``fail_at``/``stall_at``/``pause_at`` names no stage of the timeline.
    """

    stages: Sequence[tuple[str, float]] | None = None
    fail_at: str | None = None
    error: str = PDF_ERROR
    stall_at: str | None = None
    pause_at: str | None = None
    segments: int | None = None
    time_scale: float | None = None
    initial_status: str | None = None

    def __post_init__(self) -> None:
        if self.segments is not None and self.segments < 0:
            raise ValueError(f"segments must be >= 0, not {self.segments!r}")
        if self.time_scale is not None and self.time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, not {self.time_scale!r}")
        if self.stages is not None:
            # Freeze the caller's list so later mutation cannot change a running timeline.
            object.__setattr__(self, "stages", tuple((str(n), float(s)) for n, s in self.stages))
        stages = DEFAULT_STAGES if self.stages is None else self.stages
        for name, seconds in stages:
            if not name:
                raise ValueError("stage names must be non-empty strings")
            if seconds < 0:
                raise ValueError(f"stage {name!r} has a negative duration ({seconds!r})")
        names = {name for name, _ in stages}
        for field_name in ("fail_at", "stall_at", "pause_at"):
            value = getattr(self, field_name)
            if value is not None and value not in names:
                raise ValueError(
                    f"{field_name}={value!r} is not a stage of this script; "
                    f"stages are {sorted(names)}"
                )

    def stage_plan(self, simulator_time_scale: float) -> tuple[tuple[str, float], ...]:
        """The stages this script runs, with durations in clock seconds.

        Args:
            simulator_time_scale: The simulator-wide multiplier for the default timeline.

        Returns:
            ``(status, seconds)`` pairs, in order, before ``completed``.
        """
        if self.stages is None:
            scale = simulator_time_scale if self.time_scale is None else self.time_scale
            return tuple((name, seconds * scale) for name, seconds in DEFAULT_STAGES)
        scale = 1.0 if self.time_scale is None else self.time_scale
        return tuple((name, seconds * scale) for name, seconds in self.stages)
