"""`IndexingEvent` → LangChain custom events, delivered from the caller's run context.

Every event a wait observes is dispatched as a custom event named ``dify_indexing_<kind>``
(``dify_indexing_progress``, ``dify_indexing_document_completed``,
``dify_indexing_document_failed``, ``dify_indexing_batch_completed``,
``dify_indexing_batch_failed``, ``dify_indexing_stalled``, ``dify_indexing_rate_limited``,
``dify_indexing_retrying``, ``dify_indexing_summarizing``). The data is the event as JSON
(``IndexingEvent.model_dump(mode="json")``: ``kind``, ``dataset_id``, ``batch``, ``status``,
``document``, ``error``, ``error_type``, ``retry_in``, ``at``) plus ``message``, its one-line
``describe()``.

The waits run on the client's event loop (for a `DifyKnowledgeClient`, in its worker
thread), where the caller's run (its callbacks, its ``astream_events`` stream) is unknown.
So the events are handed over to the caller, who dispatches them: the async path through an
``asyncio.Queue`` read in the caller's task, the sync path through a thread-safe queue read
in the caller's thread while the wait runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar, get_args

from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.callbacks.manager import AsyncParentRunManager, ParentRunManager
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import (
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
)

from dify_ingest_tools._base.shown import scrubbed_event
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.bridge import ClientBridge, DifyKnowledgeClient
from dify_ingest_tools.events import EventCallback, EventKind, IndexingEvent

__all__ = [
    "CUSTOM_EVENT_NAMES",
    "CUSTOM_EVENT_PREFIX",
    "adispatch_indexing_event",
    "custom_event_data",
    "custom_event_name",
    "dispatch_indexing_event",
]

T = TypeVar("T")

CUSTOM_EVENT_PREFIX: Final = "dify_indexing_"
"""Every custom event of this package starts with this (filter ``on_custom_event`` on it)."""

CUSTOM_EVENT_NAMES: Final = frozenset(
    f"{CUSTOM_EVENT_PREFIX}{kind}" for kind in get_args(EventKind)
)
"""All the custom event names: ``dify_indexing_`` + each `IndexingEvent` kind."""

Work = Callable[[AsyncDifyKnowledgeClient, EventCallback], Coroutine[Any, Any, T]]
"""A coroutine factory taking the client and the ``on_event`` callback to pass to a wait."""


def custom_event_name(kind: EventKind) -> str:
    """The custom event name of an `IndexingEvent` kind: ``dify_indexing_<kind>``."""
    return f"{CUSTOM_EVENT_PREFIX}{kind}"


def custom_event_data(event: IndexingEvent) -> dict[str, Any]:
    """The event as JSON-ready data, plus ``message`` (its one-line description)."""
    # Dify's document errors go to the run's callbacks and traces: redacted and bounded.
    return {**scrubbed_event(event).model_dump(mode="json"), "message": event.describe()}


def dispatch_indexing_event(event: IndexingEvent, config: RunnableConfig | None = None) -> None:
    """Dispatch one event to the run of ``config``; outside a run, do nothing.

    LangChain refuses custom events without a parent run (a RuntimeError); a waiter used
    outside any run simply has no one to tell.
    """
    manager = get_callback_manager_for_config(config or {})
    if manager.parent_run_id is None or not manager.handlers:
        return
    dispatch_custom_event(custom_event_name(event.kind), custom_event_data(event), config=config)


async def adispatch_indexing_event(
    event: IndexingEvent, config: RunnableConfig | None = None
) -> None:
    """Async `dispatch_indexing_event`."""
    manager = get_async_callback_manager_for_config(config or {})
    if manager.parent_run_id is None or not manager.handlers:
        return
    await adispatch_custom_event(
        custom_event_name(event.kind), custom_event_data(event), config=config
    )


_DONE: Final = object()


def call_with_events(
    bridge: ClientBridge, work: Work[T], deliver: Callable[[IndexingEvent], None]
) -> T:
    """Run ``work`` on the client's loop; call ``deliver`` in *this* thread for each event.

    Blocks until the work is done. If ``deliver`` raises (or Ctrl-C), the work is cancelled.
    """
    client = bridge.client
    if not isinstance(client, DifyKnowledgeClient):
        # Refused by the bridge with its explanation (an async client cannot block).
        return bridge.call(lambda async_client: work(async_client, _ignore))
    inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
    # The worker's thread calls inbox.put for each event, before the work can finish, so
    # every event is queued ahead of _DONE. (submit refuses to run on the worker's own
    # thread: blocking there would block the loop the work has to run on.)
    future = bridge.submit(lambda async_client: work(async_client, inbox.put))
    future.add_done_callback(lambda _: inbox.put(_DONE))
    try:
        while (item := inbox.get()) is not _DONE:
            assert isinstance(item, IndexingEvent)
            deliver(item)
        return future.result()
    except BaseException:
        if not future.done():
            future.cancel()
            concurrent.futures.wait([future], timeout=5)
        raise


async def acall_with_events(
    bridge: ClientBridge, work: Work[T], deliver: Callable[[IndexingEvent], Awaitable[None]]
) -> T:
    """Await ``work`` on the client's loop; await ``deliver`` in *this* task for each event."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[IndexingEvent] = asyncio.Queue()

    def on_event(event: IndexingEvent) -> None:
        # Called on the client's loop, which may run in another thread.
        loop.call_soon_threadsafe(inbox.put_nowait, event)

    task = asyncio.ensure_future(bridge.acall(lambda client: work(client, on_event)))
    try:
        while not task.done():
            getter = asyncio.ensure_future(inbox.get())
            try:
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    # A cancelled get leaves its item in the queue: nothing is lost.
                    getter.cancel()
                    await asyncio.wait({getter})
            if not getter.cancelled():
                await deliver(getter.result())
        # Hand-overs are scheduled before the work's completion is, so they are all queued.
        while not inbox.empty():
            await deliver(inbox.get_nowait())
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def run_with_events(bridge: ClientBridge, work: Work[T], run: ParentRunManager | None) -> T:
    """`call_with_events`, dispatching each event as a custom event of ``run`` (a tool's or
    a retriever's run manager; None: nobody listens)."""
    config = RunnableConfig(callbacks=run.get_child()) if run else None
    return call_with_events(bridge, work, lambda event: dispatch_indexing_event(event, config))


async def arun_with_events(
    bridge: ClientBridge, work: Work[T], run: AsyncParentRunManager | None
) -> T:
    """Async `run_with_events`."""
    config = RunnableConfig(callbacks=run.get_child()) if run else None

    async def deliver(event: IndexingEvent) -> None:
        await adispatch_indexing_event(event, config)

    return await acall_with_events(bridge, work, deliver)


def _ignore(event: IndexingEvent) -> None:
    return None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
