"""Progress bars for waits (``progress=True``): one `tqdm.auto` bar per batch.

`tqdm.auto` picks a notebook widget in Jupyter and a text bar in a terminal. Bars count
segments done / total, show the current stages and failures, and are closed on every exit
path by the wait that opened them.
"""

from __future__ import annotations

from typing import IO, Any

from .events import IndexingEvent
from .models import BatchIndexingStatus

__all__ = ["ProgressBars"]


def _stages(status: BatchIndexingStatus) -> str:
    counts = status.status_counts()
    text = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    if status.failed_documents:
        text += f" | failed: {status.failed_documents[0].error or 'no error text'}"[:80]
    return text


def _label(bar: Any, text: str) -> None:
    # tqdm adds its own ": " after the description when the total is unknown, and none when
    # it is known; set_description would add a second one in the first case.
    bar.desc = f"{text}: " if bar.total else text


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
        self._options = {"file": file, "leave": leave, "unit": "seg", **tqdm_options}
        self._bars: dict[tuple[str, str], Any] = {}

    def __call__(self, event: IndexingEvent) -> None:
        key = (event.dataset_id, event.batch)
        bar = self._bars.get(key)
        if bar is None:
            bar = self._tqdm(
                total=None,
                desc=f"batch {event.batch}",
                position=len(self._bars),
                **self._options,
            )
            self._bars[key] = bar
        status = event.status
        if status is not None:
            total = status.total_segments
            bar.total = total if total > 0 else None
            bar.n = status.completed_segments
            if status.is_completed and total == 0:
                bar.total = bar.n = 0
            bar.set_postfix_str(_stages(status), refresh=False)
        if event.kind in ("rate_limited", "retrying", "stalled"):
            bar.set_postfix_str(
                f"{event.kind.replace('_', ' ')}: {event.error}"[:80], refresh=False
            )
        elif event.kind == "batch_completed":
            _label(bar, f"batch {event.batch} ready")
        elif event.kind == "batch_failed":
            _label(bar, f"batch {event.batch} FAILED")
        bar.refresh()

    def write(self, text: str, file: IO[str] | None = None) -> None:
        """Print a line (to ``file``, default stdout) without garbling the bars."""
        self._tqdm.write(text, file=file)

    def close(self) -> None:
        """Close every bar (idempotent)."""
        bars, self._bars = self._bars, {}
        for bar in bars.values():
            bar.close()

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
