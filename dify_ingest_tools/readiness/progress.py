"""Progress bars for waits (``progress=True``): one `tqdm.auto` bar per batch.

`tqdm.auto` picks a notebook widget in Jupyter and a text bar in a terminal. Bars count
segments done / total, show the current stages and failures, and are closed on every exit
path by the wait that opened them. A bar ends green only when its batch is ready: a failed
batch, and one the wait stopped watching before it was ready (a timeout, a stall, a
cancelled or failed sibling), ends red (``colour="red"``; the ``danger`` style for widgets)
and says so in its label.

On a terminal the text bars share the screen with whatever else is printed: lines printed
while bars are live go through `ProgressBars.write` (which lifts the bars, prints, and redraws
them below), every bar is cut to the terminal's width (a line that wraps cannot be redrawn
in place and leaves fragments), and the finished bars are printed once, in order, as plain
lines. `should_draw_bars` is the one place that decides whether a command draws them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from tqdm.utils import disp_len

from dify_ingest_tools._base.shown import error_text
from dify_ingest_tools.events import EventCallback, IndexingEvent
from dify_ingest_tools.models.status import BatchIndexingStatus

_FAILED_COLOUR = "red"


def should_draw_bars(stream: IO[str] | None = None, asked: bool | None = None) -> bool:
    """Whether a command draws progress bars on ``stream`` (default: stderr).

    ``asked`` is the user's explicit choice (``--progress`` / ``--no-progress``) and wins;
    without one, bars are drawn only on a terminal that can move its cursor: piped or
    redirected output, and ``TERM=dumb``, get none (text bars there are ``\\r`` noise).
    """
    if asked is not None:
        return asked
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        terminal = bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
    return terminal and os.environ.get("TERM", "") != "dumb"


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


def _printable(text: str) -> str:
    """``text`` with control characters shown escaped (``\\n``, ``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _width(bar: Any) -> int | None:
    """The columns a text bar may use now (None: unknown, e.g. not a terminal)."""
    measure = bar.dynamic_ncols
    if callable(measure):
        columns = measure(bar.fp)[0]
        return int(columns) if columns else None
    return int(bar.ncols) if bar.ncols else None


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
    postfix: str = ""  # the stages or the retry/stall note, before `_fit` cuts it


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
        if not self._widgets and "ncols" not in tqdm_options:
            # tqdm measures the terminal only when the file *is* sys.stdout/stderr, so a
            # wrapped stream (the CLI's redacting one) got unbounded lines that wrap and
            # cannot be redrawn in place. Measured on every refresh: a resize is followed.
            self._options.setdefault("dynamic_ncols", True)
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
            entry.postfix = _stages(status)
        if event.kind in ("rate_limited", "retrying", "stalled", "summarizing"):
            entry.postfix = f"{event.kind.replace('_', ' ')}: {event.error}"[:80]
        if event.kind == "batch_completed":
            entry.ready = True
            empty = status is not None and status.is_empty
            _label(
                bar,
                f"batch {event.batch} EMPTY (no chunks)" if empty else f"batch {event.batch} ready",
            )
        elif event.kind == "batch_failed":
            self._fail(entry, f"batch {event.batch} FAILED")
        elif event.kind == "stalled":
            self._fail(entry, f"batch {event.batch} STALLED")
        self._fit(entry)
        bar.refresh()

    def _lock(self) -> Any:
        """tqdm's lock around every bar's drawing (reentrant: bars take it too)."""
        return self._tqdm.get_lock()  # type: ignore[no-untyped-call]

    def _fit(self, entry: _Bar) -> None:
        """Give the bar its postfix, cut (with "…") so its line fits the terminal.

        tqdm would cut the line itself, but from the end and down to a one-cell bar: the
        postfix (stages, a failure's text) gives way first, the bar keeps its 10 cells.
        """
        bar = entry.bar
        # One line, whatever the server sent: a line break or an escape in a failure's
        # text would move the cursor under the bar's feet.
        postfix = bar.postfix = _printable(entry.postfix)
        width = _width(bar) if not self._widgets else None
        if not width or not postfix:
            return
        unbounded = bar.format_meter(**{**bar.format_dict, "ncols": None})
        excess = disp_len(unbounded) - width
        if excess > 0:
            keep = max(0, len(postfix) - excess - 1)
            bar.postfix = f"{postfix[:keep]}…" if keep else ""

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
        """Print a line (to ``file``, default stdout) without garbling the bars.

        On a terminal the live bars are lifted first and redrawn below the line, whatever
        stream each goes to: stdout and stderr share the screen. (``tqdm.write`` does that
        only for bars whose file is the very same object, or ``sys.stdout``/``sys.stderr``.)
        """
        if self._widgets:
            self._tqdm.write(text, file=file)
            return
        target = sys.stdout if file is None else file
        live = list(self._bars.values())
        with self._lock():
            for entry in live:
                entry.bar.clear(nolock=True)
            target.write(f"{text}\n")
            target.flush()
            for entry in live:
                self._fit(entry)
                entry.bar.refresh(nolock=True)

    def close(self) -> None:
        """Close every bar (idempotent). A batch not seen ready ends red, "not ready"."""
        bars, self._bars = self._bars, {}
        for entry in bars.values():
            if not entry.ready:
                self._fail(entry, f"batch {entry.batch} not ready")
                if self._widgets:
                    entry.bar.refresh()
        if not self._widgets:
            self._close_text(list(bars.values()))
            return
        for entry in bars.values():
            entry.bar.close()
            if entry.display is not None and self._leave:
                entry.display.update(entry.bar.container)

    def _close_text(self, entries: list[_Bar]) -> None:
        # tqdm's own `leave` redraws each closing bar on the cursor's line and moves down,
        # while the bars still open stay where they were, relative to a cursor that has
        # moved: several bars closed in turn overwrite each other. Instead all are lifted
        # (leave=False clears a bar at its position), then their final lines printed once.
        for entry in entries:
            self._fit(entry)
        finals = [str(entry.bar) for entry in entries]
        with self._lock():
            for entry in entries:
                entry.bar.leave = False
                entry.bar.close()
            if not self._leave or not entries:
                return
            file = entries[0].bar.fp
            # A bar closed below the first leaves the cursor at the end of its blanked line.
            file.write("\r")
            for line in finals:
                file.write(f"{line}\n")
            file.flush()

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


class FilesProgress:
    """An ``on_event`` callback drawing ONE bar for many files (`upload_files_and_wait`).

    The bar counts the files whose document Dify reports ``completed``, out of all of them;
    while uploads run its label says how many were sent, and failures are counted after it.
    It ends red unless every file's document was seen completed.
    """

    def __init__(self, total: int, *, file: IO[str] | None = None, **tqdm_options: Any) -> None:
        from tqdm.auto import tqdm

        self.total = total
        self.sent = 0
        self._done: dict[tuple[str, str], tuple[int, int]] = {}
        options = {"file": file, "unit": "file", "dynamic_ncols": True, **tqdm_options}
        self._bar: Any = tqdm(total=total, desc=f"uploading 0/{total}", **options)

    @property
    def ready(self) -> int:
        """Files seen ``completed`` so far."""
        return sum(completed for completed, _ in self._done.values())

    def uploaded(self) -> None:
        """One more file was sent (its document is now indexing)."""
        self.sent += 1
        label = f"uploading {self.sent}/{self.total}" if self.sent < self.total else "indexing"
        _label(self._bar, label)
        self._bar.refresh()

    def __call__(self, event: IndexingEvent) -> None:
        status = event.status
        if status is None:
            return
        counts = status.status_counts()
        key = (event.dataset_id, event.batch)
        self._done[key] = (counts.get("completed", 0), counts.get("error", 0))
        self._bar.n = self.ready
        failed = sum(errors for _, errors in self._done.values())
        self._bar.set_postfix_str(f"{failed} failed" if failed else "", refresh=False)
        if self.ready >= self.total:
            _label(self._bar, "files ready")
        self._bar.refresh()

    def close(self) -> None:
        """Close the bar: red, "not ready", unless every file was seen ready."""
        if self.ready < self.total:
            _label(self._bar, "files not ready")
            self._bar.colour = _FAILED_COLOUR
        self._bar.close()


@contextlib.contextmanager
def files_progress(total: int, enabled: bool) -> Iterator[FilesProgress | None]:
    """One bar for a many-file upload (None when ``enabled`` is False), closed on every exit."""
    if not enabled:
        yield None
        return
    bar = FilesProgress(total)
    try:
        yield bar
    finally:
        bar.close()
