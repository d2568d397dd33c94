"""One indexing run of one document, evaluated lazily against the clock.

Nothing runs in the background: every read first calls :meth:`Timeline.advance` with the current
clock reading, which replays the stage transitions that happened since the previous read. A
test driving a ``ManualClock`` therefore sees exactly the same answers on every run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

COMPLETED = "completed"
ERROR = "error"
TERMINAL = frozenset({COMPLETED, ERROR})

#: The stamps a run sets, in the order of the indexing-status payload (``paused_at`` aside).
STAMP_KEYS = (
    "processing_started_at",
    "parsing_completed_at",
    "cleaning_completed_at",
    "splitting_completed_at",
    "completed_at",
    "stopped_at",
)

# completed_segments reaches the total at this fraction of the ``indexing`` stage, so the
# document briefly reports indexing with completed == total before the status flips, as
# observed in 01c (document B) and 05b.
_INDEXING_DONE_AT = 0.8
# Economy indexing commits segments in a few coarse buckets; a real poller never sees a
# smooth 1-by-1 climb.
_INDEXING_BUCKETS = 4

#: Asks whether the run this one queues behind has finished; returns the clock reading at
#: which it finished, or ``None`` while it is still running at ``now``.
Gate = Callable[[float], "float | None"]


@dataclass(frozen=True)
class Leftovers:
    """What an earlier run leaves visible when a document is re-created under its name.

    Recording 01e: the first poll of the new batch said ``waiting`` but still carried the old
    timestamps (``completed_at`` included) and the old segment counts 8/8.
    """

    stamps: Mapping[str, float | None]
    completed_segments: int
    total_segments: int
    error: str | None
    word_count: int | None
    tokens: int | None


class Timeline:
    """The status, stamps and counters of one indexing run.

    Args:
        stages: ``(status, seconds)`` pairs run in order before ``completed``.
        start: Clock reading at which the run begins (the create request).
        total_segments: Segments the run produces.
        word_count: The ``word_count`` Dify reports once splitting is done.
        tokens: The ``tokens`` Dify reports once the document is completed.
        fail_at: Stage whose entry turns the run into ``error``.
        error: The error text for ``fail_at``.
        stall_at: Stage in which the run stays until :meth:`release`.
        pause_at: Stage whose entry pauses the run until :meth:`resume`.
        leftovers: What the document's previous run left visible, if any.
        gate: For the second and later documents of a multi-document batch: the worker handles
            them one at a time (05b), so this run stays in its first processing stage until the
            gate reports that the previous document finished.
    """

    def __init__(
        self,
        stages: Sequence[tuple[str, float]],
        *,
        start: float,
        total_segments: int,
        word_count: int,
        tokens: int,
        fail_at: str | None = None,
        error: str = "",
        stall_at: str | None = None,
        pause_at: str | None = None,
        leftovers: Leftovers | None = None,
        gate: Gate | None = None,
    ) -> None:
        self._stages = tuple(stages)
        self._names = tuple(name for name, _ in self._stages)
        self._total = total_segments
        self._final_word_count = word_count
        self._final_tokens = tokens
        self._fail_at = fail_at
        self._error_text = error
        self._stall_at = stall_at
        self._pause_at = pause_at
        self.leftovers = leftovers
        self._gate = gate
        self._gate_index = next((i for i, n in enumerate(self._names) if n != "waiting"), None)
        self._gate_open = gate is None

        self.stamps: dict[str, float | None] = dict.fromkeys(STAMP_KEYS)
        self.error: str | None = None
        self.word_count: int | None = None
        self.tokens: int | None = None
        if leftovers is not None:
            self.stamps.update(leftovers.stamps)
            self.error = leftovers.error
            self.word_count = leftovers.word_count
            self.tokens = leftovers.tokens
        self.paused_at: float | None = None
        self.finished_at: float | None = None
        self.started_processing = False

        self._status = self._names[0] if self._names else COMPLETED
        self._index = 0
        self._active = 0.0
        self._t = start
        self._stalled = False
        self._released = False
        self._auto_paused = False
        self._abandoned_at: float | None = None
        self._failed_counts = (0, 0)
        self._enter(0, start)
        self.advance(start)

    # -- reading -------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """The stored status: a stage name, ``completed`` or ``error`` (never ``paused``)."""
        return self._status

    @property
    def is_terminal(self) -> bool:
        """Whether the run ended (``completed`` or ``error``)."""
        return self._status in TERMINAL

    @property
    def is_paused(self) -> bool:
        """Whether the run is paused (Dify then reports ``paused`` on indexing-status)."""
        return self.paused_at is not None and not self.is_terminal

    @property
    def reported_status(self) -> str:
        """The status the indexing-status endpoint shows: ``paused`` wins while paused."""
        return "paused" if self.is_paused else self._status

    @property
    def total_segments(self) -> int:
        """Segments this run produces once it is done."""
        return self._total

    def counts(self) -> tuple[int, int]:
        """``(completed_segments, total_segments)`` as of the last :meth:`advance`."""
        if self._status == COMPLETED:
            return self._total, self._total
        if self._status == ERROR:
            return self._failed_counts
        if not self.started_processing:
            if self.leftovers is not None:
                return self.leftovers.completed_segments, self.leftovers.total_segments
            return 0, 0
        name, seconds = self._stages[self._index]
        fraction = 1.0 if seconds <= 0 else min(1.0, self._active / seconds)
        if name == "splitting":
            # Segments are inserted while splitting, so the total grows 0 -> total (01b).
            return 0, math.floor(self._total * fraction)
        if name == "indexing":
            done = min(1.0, fraction / _INDEXING_DONE_AT)
            buckets = min(self._total, _INDEXING_BUCKETS)
            if buckets == 0:
                return 0, self._total
            return self._total * math.floor(buckets * done) // buckets, self._total
        before = self._names[: self._index]
        split_done = "splitting" in before or "indexing" in before
        index_done = "indexing" in before
        return (self._total if index_done else 0), (self._total if split_done else 0)

    def done_for_gate(self, now: float) -> float | None:
        """When this run stopped occupying the worker, or ``None`` if it still does at ``now``."""
        self.advance(now)
        for moment in (self.finished_at, self._abandoned_at):
            if moment is not None and moment <= now:
                return moment
        return None

    # -- driving -------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Replay every transition up to ``now`` (a clock reading; earlier readings are no-ops)."""
        t = self._t
        now = max(now, t)
        while not self.is_terminal and self.paused_at is None and not self._stalled:
            if not self._gate_open and self._index == self._gate_index:
                assert self._gate is not None
                opened = self._gate(now)
                if opened is None:
                    break
                t = max(t, opened)
                self._gate_open = True
            remaining = self._stages[self._index][1] - self._active
            if t + remaining > now:
                self._active += now - t
                break
            t += remaining
            self._leave(self._names[self._index], t)
            self._enter(self._index + 1, t)
        self._t = now

    def pause(self, now: float) -> None:
        """Pause as Dify's console does; a second pause is a no-op (07c)."""
        self.advance(now)
        if self.is_terminal:
            raise ValueError(
                f"the document is already {self._status}; only documents still indexing "
                "can be paused"
            )
        if self.paused_at is None:
            self.paused_at = now

    def resume(self, now: float) -> None:
        """Resume a paused run; ``paused_at`` goes back to null and the stage continues."""
        self.advance(now)
        self.paused_at = None

    def release(self, now: float) -> None:
        """Let a run stalled by ``stall_at`` continue (or cancel a stall not reached yet)."""
        self.advance(now)
        self._released = True
        self._stalled = False

    def abandon(self, now: float) -> None:
        """Mark the run as superseded (re-created or deleted) so queued runs stop waiting."""
        self.advance(now)
        if self._abandoned_at is None:
            self._abandoned_at = now

    # -- transitions ---------------------------------------------------------------------

    def _leave(self, name: str, at: float) -> None:
        if name == "parsing":
            self.stamps["parsing_completed_at"] = at
        elif name == "cleaning":
            self.stamps["cleaning_completed_at"] = at
        elif name == "splitting":
            # Dify sets cleaning_completed_at and splitting_completed_at to the same instant
            # when segments are saved; the cleaning stage itself is never reported.
            self.stamps["splitting_completed_at"] = at
            if "cleaning" not in self._names:
                self.stamps["cleaning_completed_at"] = at
            # word_count stayed null while a document was splitting (01a) and was set by the
            # time it was indexing (02b, 05).
            self.word_count = self._final_word_count

    def _enter(self, index: int, at: float) -> None:
        self._index = index
        self._active = 0.0
        if index >= len(self._stages):
            self._status = COMPLETED
            self.stamps["completed_at"] = at
            self.error = None
            self.word_count = self._final_word_count
            self.tokens = self._final_tokens
            self.finished_at = at
            return
        name = self._names[index]
        self._status = name
        if name != "waiting" and not self.started_processing:
            self.started_processing = True
            self.stamps["processing_started_at"] = at
        if name == self._fail_at:
            self._failed_counts = self.counts()
            self._status = ERROR
            self.error = self._error_text
            self.stamps["stopped_at"] = at
            self.finished_at = at
            return
        if name == self._stall_at and not self._released:
            self._stalled = True
        if name == self._pause_at and not self._auto_paused:
            self._auto_paused = True
            self.paused_at = at


def display_status(indexing_status: str, paused: bool) -> str:
    """Dify's ``Document.display_status`` for the list and detail endpoints.

    ``queuing`` for ``waiting``, ``paused`` for any unfinished paused document, ``error``,
    ``available`` for ``completed`` (documents here are always enabled and never archived) and
    ``indexing`` for every other stage, including statuses Dify does not know.
    """
    if indexing_status == ERROR:
        return "error"
    if indexing_status == COMPLETED:
        return "available"
    if paused or indexing_status == "paused":
        return "paused"
    if indexing_status == "waiting":
        return "queuing"
    return "indexing"
