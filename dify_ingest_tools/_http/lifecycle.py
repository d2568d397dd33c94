"""A client's lifecycle: open until closed, and closing ends every request in flight.

Each request is bracketed by `Lifecycle.enter` and `Lifecycle.leave`, which know the task it
runs in. Closing cancels those tasks and turns the cancellation into `DifyClientClosedError`
where it surfaces, so a caller blocked in a retry backoff, a budget slot or a slow answer
gets one typed error at once instead of waiting out its timeout. Waits are ended by
whatever feeds them their updates (the monitor, or a document-scoped poll loop registered
with `Lifecycle.on_close`), which tells each of them the client closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from dify_ingest_tools._base import fork as _fork
from dify_ingest_tools._http.transport import Transport
from dify_ingest_tools.errors import DifyClientClosedError

#: How long closing waits for cancelled requests to unwind (sockets released).
CLOSE_GRACE = 1.0


def closed_error(*, running: bool) -> DifyClientClosedError:
    if running:
        return DifyClientClosedError("the Dify client was closed while this call was running")
    return DifyClientClosedError("the Dify client is closed; create a new one")


class Lifecycle:
    """Whether a client is closed, and the tasks that are running one of its requests."""

    def __init__(self) -> None:
        self.closed = False
        #: Set in a forked child when the client cannot start afresh there.
        self.unusable: str | None = None
        self._running: dict[asyncio.Task[Any], int] = {}
        self._ended: set[asyncio.Task[Any]] = set()
        # What to call when the client closes, with the loop to call it on.
        self._enders: dict[int, tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = {}

    def check(self) -> None:
        """Raise `DifyClientClosedError` if no new request may start."""
        if self.unusable is not None:
            raise DifyClientClosedError(self.unusable)
        if self.closed:
            raise closed_error(running=False)

    # Called by the transport around every request (see `~._transport.RequestGuard`).
    def enter(self) -> asyncio.Task[Any] | None:
        """Register the current task as running a request (refused once closed)."""
        if self.closed or self.unusable is not None:
            self.check()
        task = asyncio.current_task()
        if task is not None:
            running = self._running
            running[task] = running.get(task, 0) + 1
        return task

    def cancelled(self, task: asyncio.Task[Any] | None) -> None:
        """A request of ``task`` was cancelled: raise `DifyClientClosedError` if closing did it.

        Returns (the caller re-raises the cancellation) when it was not the close, or when
        another cancellation (the caller's own timeout) came as well.
        """
        if task is None or task not in self._ended:
            return
        self._ended.discard(task)
        if sys.version_info >= (3, 11) and task.uncancel() > 0:
            return
        raise closed_error(running=True) from None

    def leave(self, task: asyncio.Task[Any] | None) -> None:
        if task is None:  # pragma: no cover - requests always run in a task
            return
        depth = self._running.pop(task) - 1
        if depth:
            self._running[task] = depth

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run a block so that closing the client ends it with `DifyClientClosedError`.

        The transport brackets requests with `enter` / `leave` inline (the hot path); this is
        the same for other code that sleeps on the client's behalf.
        """
        task = self.enter()
        try:
            yield
        except asyncio.CancelledError:
            self.cancelled(task)
            raise
        finally:
            self.leave(task)

    @contextlib.contextmanager
    def on_close(self, end: Callable[[], None]) -> Iterator[None]:
        """Call ``end`` (on the current loop) if the client closes while the block runs.

        For poll loops that sleep between requests: closing ends their requests, but only
        ``end`` can wake a loop that is asleep.
        """
        self.check()
        token = id(end)
        self._enders[token] = (asyncio.get_running_loop(), end)
        try:
            yield
        finally:
            self._enders.pop(token, None)

    async def close(self) -> None:
        """Refuse new requests; end those in flight and give them a moment to unwind."""
        self.closed = True
        current = asyncio.current_task()
        loop = asyncio.get_running_loop()
        enders, self._enders = list(self._enders.values()), {}
        for owner, end in enders:
            if owner is loop:
                end()
            elif not owner.is_closed():
                owner.call_soon_threadsafe(end)
        ending = [task for task in self._running if task is not current and not task.done()]
        for task in ending:
            self._ended.add(task)
            if task.get_loop() is loop:
                task.cancel()
            else:  # a client shared across loops: cancel it where it runs
                task.get_loop().call_soon_threadsafe(task.cancel)
        local = [task for task in ending if task.get_loop() is loop]
        if local:
            await asyncio.wait(local, timeout=CLOSE_GRACE)

    def after_fork_in_child(self) -> None:
        # The parent's tasks do not run here.
        self._running = {}
        self._ended = set()
        self._enders = {}


class GuardedTransport(Transport):
    """The client's transport: every request runs under the client's `Lifecycle`."""

    def __init__(self, lifecycle: Lifecycle, **options: Any) -> None:
        super().__init__(guard=lifecycle, **options)
        self.lifecycle = lifecycle

    def after_fork_in_child(self) -> None:
        """Let go of the parent's session: the child opens its own on first use."""
        session = self._session
        if session is None:
            return
        if not self._owns_session:
            self.lifecycle.unusable = (
                "this client was created in another process (before os.fork) with an aiohttp "
                "session of its own; sessions cannot cross fork: create the session and the "
                "client in this process"
            )
            return
        # Detached, the session counts as closed. Its connector holds the parent's pooled
        # connections: closing them here (its finalizer would, at the latest when this
        # process exits) unregisters their sockets from the epoll instance the parent's loop
        # shares with us, and the parent then never hears its answers. Marked closed, the
        # connector leaves them alone; the OS closes our copies of the sockets at exit.
        connector = session.connector
        session.detach()
        if connector is not None and isinstance(getattr(connector, "_closed", None), bool):
            connector._closed = True
        _fork.abandon(session, connector)
        self._session = None
