"""The summary phase of a wait with ``summaries=True``: once every document is indexed,
wait until Dify has made their summaries (read from the dataset's document list)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from dify_ingest_tools._base.clock import Clock
from dify_ingest_tools._http.retry import is_transient
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.events import IndexingEvent
from dify_ingest_tools.models.created import BatchRef
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.wait_errors import shown_ids, stalled_error, timeout_error
from dify_ingest_tools.readiness.wait_options import WaitOptions


async def wait_for_summaries(
    monitor: IndexingMonitor,
    status: BatchIndexingStatus,
    options: WaitOptions,
    emit: Callable[[IndexingEvent], Coroutine[Any, Any, None]],
    *,
    clock: Clock,
    deadline: float,
) -> None:
    """Wait until no document of a completed batch is still being summarized.

    Reads the dataset's document list (``need_summary`` and ``summary_index_status`` are not
    on ``indexing-status``), at the wait's cadence; emits ``summarizing`` whenever the set of
    documents still summarizing changes; raises the wait's timeout or stall as `policy.decide` does.
    """
    ref = BatchRef(dataset_id=status.dataset_id, batch=status.batch)
    ids = [doc.id for doc in status.documents]
    cadence = options.cadence()
    interval: float | None = None
    pending: tuple[str, ...] | None = None
    last_change = clock.monotonic()
    last_error: DifyError | None = None
    while True:
        try:
            listed = await monitor.listed(status.dataset_id, ids, deadline=deadline)
        except DifyError as error:
            if not is_transient(error):
                raise error.with_context(last_status=status) from error
            last_error = error
            await emit(
                IndexingEvent.for_error("retrying", ref.dataset_id, ref.batch, error, status)
            )
        else:
            last_error = None
            now_pending = tuple(sorted(i for i in ids if i in listed and listed[i].is_summarizing))
            changed = now_pending != pending
            if changed:
                pending = now_pending
                last_change = clock.monotonic()
                if pending:
                    await emit(_summarizing(status, pending))
            if not pending:
                return
            interval = cadence.next_interval(interval, changed)
        now = clock.monotonic()
        if now >= deadline:
            raise timeout_error(ref, options, status, last_error, summarizing=pending or ())
        if options.stall_timeout is not None and now - last_change >= options.stall_timeout:
            stalled = stalled_error(ref, options, status, last_error, summarizing=pending or ())
            await emit(
                IndexingEvent.for_error("stalled", ref.dataset_id, ref.batch, stalled, status)
            )
            raise stalled
        gap = cadence.jittered(interval if interval is not None else cadence.initial)
        if options.stall_timeout is not None:
            gap = min(gap, last_change + options.stall_timeout - now)
        await clock.sleep(max(0.0, min(gap, deadline - now)))


def _summarizing(status: BatchIndexingStatus, pending: tuple[str, ...]) -> IndexingEvent:
    return IndexingEvent(
        kind="summarizing",
        dataset_id=status.dataset_id,
        batch=status.batch,
        status=status,
        error=f"{len(pending)} document(s) still summarizing: {shown_ids(pending)}",
    )
