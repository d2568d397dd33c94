"""Progress bars for waits (``progress=True``): one `tqdm.auto` bar per batch.

`tqdm.auto` picks a notebook widget in Jupyter and a text bar in a terminal. Bars count
segments done / total, show the current stages and failures, and are closed on every exit
path by the wait that opened them. A bar ends green only when its batch is ready: a failed
batch, and one the wait stopped watching before it was ready (a timeout, a stall, a
cancelled or failed sibling), ends red (``colour="red"``; the ``danger`` style for widgets)
and says so in its label.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ._shown import error_text
from .events import EventCallback, IndexingEvent
from .models import BatchIndexingStatus

__all__ = ["ProgressBars", "wait_callbacks"]

_FAILED_COLOUR = "red"


def _stages(status: BatchIndexingStatus) -> str:
    counts = status.status_counts()
    text = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    if status.failed_documents:
        # Redacted before it is cut: a key cut in half would no longer be recognised.
        text += f" | failed: {error_text(status.failed_documents[0].error)}"[:80]
    return text


def _label(bar: Any, text: str) -> None:
    # tqdm adds its own ": " after the description when the total is unknown, and none when
    # it is known; set_description would add a second one in the first case.
    bar.desc = f"{text}: " if bar.total else text


def _is_notebook(tqdm_class: type) -> bool:
    """Whether `tqdm.auto` chose notebook widgets (without importing IPython ourselves)."""
    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm_class.__mro__)


@dataclass
class _Bar:
    """One batch's bar, and how its batch ended (as far as the events said)."""

    batch: str
    bar: Any
    display: Any = None  # the IPython display handle of a widget bar
    ready: bool = False
    failed: bool = False


class ProgressBars:
    """An ``on_event`` callback that draws one bar per batch; call `close` when done.

    Args:
        file: Where text bars go (default: stderr, so stdout stays clean for results).
        leave: Keep finished bars on screen.
        **tqdm_options: Passed to each ``tqdm`` bar.
    """

    def __init__(self, *, file: IO[str] | None = None, leave: bool = True, **tqdm_options: Any):
        from tqdm.auto import tqdm  # optional at import time of the package

        self._tqdm = tqdm
        self._widgets = _is_notebook(tqdm)
        self._leave = leave
        self._options = {"file": file, "leave": leave, "unit": "seg", **tqdm_options}
        self._bars: dict[tuple[str, str], _Bar] = {}

    def __call__(self, event: IndexingEvent) -> None:
        key = (event.dataset_id, event.batch)
        entry = self._bars.get(key)
        if entry is None:
            entry = self._bars[key] = self._open(event.batch)
        bar = entry.bar
        status = event.status
        if status is not None:
            total = status.total_segments
            self._set_total(bar, total if total > 0 else None)
            bar.n = status.completed_segments
            if status.is_completed and total == 0:
                self._set_total(bar, 0)
                bar.n = 0
            bar.set_postfix_str(_stages(status), refresh=False)
        if event.kind in ("rate_limited", "retrying", "stalled"):
            bar.set_postfix_str(
                f"{event.kind.replace('_', ' ')}: {event.error}"[:80], refresh=False
            )
        if event.kind == "batch_completed":
            entry.ready = True
            _label(bar, f"batch {event.batch} ready")
        elif event.kind == "batch_failed":
            self._fail(entry, f"batch {event.batch} FAILED")
        elif event.kind == "stalled":
            self._fail(entry, f"batch {event.batch} STALLED")
        bar.refresh()

    def _open(self, batch: str) -> _Bar:
        options = dict(self._options, total=None, desc=f"batch {batch}")
        options["position"] = len(self._bars)
        if not self._widgets:
            return _Bar(batch, self._tqdm(**options))
        # A widget's text/plain form (what a saved notebook, a GitHub preview or nbconvert
        # shows) is frozen when it is displayed: display it ourselves, with a handle, and
        # refresh that form when the bar closes, so it shows the final counts, not "0seg".
        from IPython import display as ipython_display  # there whenever tqdm picks widgets

        show: Any = ipython_display.display
        bar: Any = self._tqdm(display=False, **options)
        return _Bar(batch, bar, display=show(bar.container, display_id=True))

    def _set_total(self, bar: Any, total: int | None) -> None:
        if bar.total == total:
            return
        bar.total = total
        if self._widgets:
            # The widget's range is fixed when tqdm builds it (a full "unknown total" bar):
            # give it the new range, as tqdm's own reset(total=...) does.
            widget = bar.container.children[-2]
            widget.max = total or 1
            if total:
                widget.layout.width = None
                if widget.bar_style == "info":
                    widget.bar_style = ""

    def _fail(self, entry: _Bar, label: str) -> None:
        if entry.failed:
            return
        entry.failed = True
        bar = entry.bar
        _label(bar, label)
        bar.colour = _FAILED_COLOUR
        if self._widgets:
            # tqdm's widgets end green ("success") when closed with n == total; "danger"
            # is the one style it keeps.
            bar.container.children[-2].bar_style = "danger"

    def write(self, text: str, file: IO[str] | None = None) -> None:
        """Print a line (to ``file``, default stdout) without garbling the bars."""
        self._tqdm.write(text, file=file)

    def close(self) -> None:
        """Close every bar (idempotent). A batch not seen ready ends red, "not ready"."""
        bars, self._bars = self._bars, {}
        for entry in bars.values():
            if not entry.ready:
                self._fail(entry, f"batch {entry.batch} not ready")
                entry.bar.refresh()
            entry.bar.close()
            if entry.display is not None and self._leave:
                entry.display.update(entry.bar.container)

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def wait_callbacks(on_event: EventCallback | None, progress: bool) -> Iterator[list[EventCallback]]:
    """The callbacks of one wait: the caller's, plus bars closed on every exit path."""
    callbacks: list[EventCallback] = [on_event] if on_event is not None else []
    if not progress:
        yield callbacks
        return
    bars = ProgressBars()
    try:
        yield [*callbacks, bars]
    finally:
        bars.close()
