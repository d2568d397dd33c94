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
            bar.set_description(f"batch {event.batch} ready", refresh=False)
        elif event.kind == "batch_failed":
            bar.set_description(f"batch {event.batch} FAILED", refresh=False)
        bar.refresh()

    def close(self) -> None:
        """Close every bar (idempotent)."""
        bars, self._bars = self._bars, {}
        for bar in bars.values():
            bar.close()

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
