"""The options every wait takes: `WaitOptions` (checked, with Dify-tuned defaults) and the
`WaitKwargs` the client's wait methods accept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from dify_ingest_tools._base.inputs import check_number, check_optional_number
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.readiness.heal import OnStall
from dify_ingest_tools.readiness.policy import Cadence, ContactBudget, OnEmpty, OnPaused


class WaitKwargs(TypedDict, total=False):
    """The keyword options every wait method takes (see `WaitOptions` for the defaults)."""

    timeout: float
    poll_interval: float
    max_poll_interval: float
    stall_timeout: float | None
    not_found_grace: float
    contact_timeout: float
    on_paused: OnPaused
    raise_on_error: bool
    on_empty: OnEmpty
    summaries: bool
    on_event: EventCallback | None
    progress: bool
    on_stall: OnStall
    max_resubmits: int


@dataclass(frozen=True)
class WaitOptions:
    """How a wait behaves. Defaults are chosen for Dify's observed timings.

    Attributes:
        timeout: Seconds the whole wait may take, retries and sleeps included (600: a large
            document takes minutes; a small one about a second).
        poll_interval: First gap between polls, and the gap after any change (1 s).
        max_poll_interval: Longest gap while nothing changes (10 s).
        stall_timeout: Raise `IndexingStalledError` when nothing observable changed for this
            long (None: only the deadline applies).
        not_found_grace: Seconds ``Documents not found.`` is tolerated after the wait starts
            (10 s: a batch can be invisible for a moment right after creation).
        contact_timeout: Until a poll gets a status or one of Dify's JSON errors, the wait
            gives up once 3 requests of the client failed over 2 s (connection errors, HTML
            pages, proxy errors) or its polls went this many seconds unanswered (10 s), with
            the error and a hint on what to check: a wrong ``base_url`` is not slow indexing.
            Time a poll waits behind the client's own request budget, concurrency cap or
            cool-down does not count. Once Dify has answered, transient failures are retried
            up to ``timeout``.
        on_paused: ``"wait"`` (a paused document may be resumed from Dify's console; it counts
            toward the stall timeout) or ``"fail"`` (raise `IndexingFailedError`).
        raise_on_error: Raise `IndexingFailedError` as soon as a document is in ``error``;
            with False, wait until every document is terminal and return that status.
        on_empty: What a batch Dify reports ``completed`` with a document of 0 segments
            (empty or whitespace-only text; recordings 02c, 02d) does to the wait: it is
            indexed, but nothing will be found. ``"raise"`` (default) raises
            `IndexingEmptyError`; ``"warn"`` logs a warning and returns the status;
            ``"accept"`` returns it (``status.is_empty`` still says so).
        summaries: Also wait, once every document is ``completed``, until Dify has made their
            summaries (datasets with summary indexing: no document of the batch has
            ``need_summary`` with ``summary_index_status`` still set, e.g. ``"SUMMARIZING"``),
            read from the dataset's document list, with ``summarizing`` events meanwhile.
            The deadline and ``stall_timeout`` cover this phase too.
    """

    timeout: float = 600.0
    poll_interval: float = 1.0
    max_poll_interval: float = 10.0
    stall_timeout: float | None = None
    not_found_grace: float = 10.0
    contact_timeout: float = 10.0
    on_paused: OnPaused = "wait"
    raise_on_error: bool = True
    on_empty: OnEmpty = "raise"
    summaries: bool = False

    def __post_init__(self) -> None:
        check_number(self.timeout, "timeout", minimum=0, exclusive_minimum=True)
        check_optional_number(
            self.stall_timeout, "stall_timeout", minimum=0, exclusive_minimum=True
        )
        check_number(self.not_found_grace, "not_found_grace", minimum=0)
        if self.on_paused not in ("wait", "fail"):
            raise ValueError("on_paused must be 'wait' or 'fail'")
        if not isinstance(self.raise_on_error, bool):
            raise TypeError(
                f"raise_on_error must be True or False, got {self.raise_on_error!r:.40}"
            )
        if not isinstance(self.on_empty, str) or self.on_empty not in ("raise", "warn", "accept"):
            raise ValueError(
                f"on_empty must be 'raise', 'warn' or 'accept', got {self.on_empty!r:.40}"
            )
        if not isinstance(self.summaries, bool):
            raise TypeError(f"summaries must be True or False, got {self.summaries!r:.40}")
        self.cadence()  # validates the intervals
        self.contact()

    def cadence(self) -> Cadence:
        return Cadence(initial=self.poll_interval, maximum=self.max_poll_interval)

    def contact(self) -> ContactBudget:
        return ContactBudget(seconds=self.contact_timeout)

    @classmethod
    def split(cls, options: WaitKwargs) -> tuple[WaitOptions, EventCallback | None, bool]:
        """``(WaitOptions, on_event, progress)`` from a wait method's keyword options."""
        on_event = options.get("on_event")
        progress = bool(options.get("progress", False))
        if options.get("on_stall", "raise") != "raise":
            raise ValueError(
                "on_stall='resubmit' heals wait_for_indexing and wait_for_batches (and what is "
                "built on them); this wait takes on_stall='raise' only"
            )
        skipped = ("on_event", "progress", "on_stall", "max_resubmits")
        rest = {k: v for k, v in options.items() if k not in skipped}
        unknown = set(rest) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unexpected wait option(s): {', '.join(sorted(unknown))}")
        return cls(**rest), on_event, progress  # type: ignore[arg-type]
