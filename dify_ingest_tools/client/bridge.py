"""The single sync-over-async bridge, and `DifyKnowledgeClient` built on it.

Every blocking call runs the async implementation on a private event loop in a daemon worker
thread. That works the same from a plain script and from inside a running loop (Jupyter,
an async web handler), where ``asyncio.run`` would refuse, and it keeps one aiohttp session
alive across calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import selectors
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from pydantic import SecretStr

from dify_ingest_tools._base import fork as _fork
from dify_ingest_tools._http.lifecycle import closed_error
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.blocking import BlockingMethods
from dify_ingest_tools.errors import DifyClientClosedError

T = TypeVar("T")

logger = logging.getLogger("dify_ingest_tools")

# How long stopping a loop waits for cancelled work (and worker threads) to finish.
_DRAIN_SECONDS = 1.0


class LoopThread:
    """An event loop running in its own daemon thread; `run` blocks until a coroutine is done.

    `stop` cancels whatever still runs on the loop, so no caller is left blocked. Across
    ``os.fork()`` the child gets a loop and thread of its own on first use; the parent's loop
    (whose kernel objects the child shares) is cut off in the child and never run or closed
    there.
    """

    def __init__(self, name: str = "dify-ingest-tools") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._stopped = False
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._fresh_loop()
        _fork.register(self)

    def _fresh_loop(self) -> None:
        # Our own selector, so that a forked child can cut this loop off from the parent's.
        self._selector = selectors.DefaultSelector()
        self._loop = asyncio.SelectorEventLoop(self._selector)
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._started = False
        self._inherited = False

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def started(self) -> bool:
        """Whether the loop has run in this process (a fork's child starts without)."""
        return self._started

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the worker loop and return its result (or raise its exception).

        Ctrl-C while waiting cancels the coroutine, so nothing keeps polling in the background.
        """
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "a blocking Dify client method was called from inside its own worker loop; "
                "use AsyncDifyKnowledgeClient in async code"
            )
        future = self.submit(coro)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._stopped:  # cancelled by `stop`, not by the caller
                raise closed_error(running=True) from None
            raise
        except BaseException:
            if not future.done():
                future.cancel()
                # Give the cancellation a moment to unwind (close sockets) before returning.
                concurrent.futures.wait([future], timeout=5)
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the worker loop without waiting."""
        with self._lock:
            if self._stopped:
                coro.close()
                raise closed_error(running=False)
            if self._inherited:
                self._fresh_loop()
            if not self._started:
                self._thread.start()
                self._started = True
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
            self._futures.add(future)
        future.add_done_callback(self._futures.discard)
        return future

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` running on the worker loop, from another event loop.

        Cancelling the caller cancels the work on the worker loop too.
        """
        future = self.submit(coro)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def iterate(self, stream: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator from sync code; closing the iterator closes the stream."""

        async def step() -> T:
            return await stream.__anext__()

        try:
            while True:
                try:
                    item = self.run(step())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None and not self._stopped:
                # The client may be closing meanwhile: then the loop closes the stream.
                with contextlib.suppress(DifyClientClosedError):
                    self.run(closer())

    def stop(self) -> None:
        """Cancel what still runs, stop the loop and join the thread. Idempotent.

        From the worker thread itself (a callback), the stop finishes on a helper thread as
        soon as the callback returns.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            started = self._started and not self._inherited
        if not started:
            if not self._inherited:  # a child never closes the parent's loop
                self._loop.close()
            return
        if threading.current_thread() is self._thread:
            threading.Thread(target=self._finish, name=f"{self._name}-stop").start()
            return
        self._finish()

    def _finish(self) -> None:
        drained = asyncio.run_coroutine_threadsafe(self._drain(), self._loop)
        with contextlib.suppress(Exception):
            drained.result(timeout=_DRAIN_SECONDS * 3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if self._thread.is_alive():  # a callback blocks the loop: leave it to the daemon
            logger.warning("the Dify client's event loop did not stop within 10 s")
        else:
            self._loop.close()
        for future in list(self._futures):  # only if the loop could not finish them
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                future.set_exception(closed_error(running=True))

    async def _drain(self) -> None:
        """Cancel every task still on the loop and let them, and worker threads, finish."""
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_DRAIN_SECONDS)
        loop = asyncio.get_running_loop()
        await loop.shutdown_asyncgens()
        # asyncio.to_thread (file uploads) runs on the default executor: join its threads.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(loop.shutdown_default_executor(), _DRAIN_SECONDS)

    def _after_fork_in_child(self) -> None:
        # The worker thread did not survive the fork; the loop's epoll instance, self-pipe
        # and sockets are shared with the parent. Cut them off here, keep the loop object
        # alive (its finalizer must not run), and build a new loop on first use.
        _cut_off(self._loop, self._selector)
        _fork.abandon(self._loop, self._selector, self._thread)
        self._lock = threading.Lock()
        self._futures = set()
        self._started = False
        self._inherited = True


def _cut_off(loop: asyncio.AbstractEventLoop, selector: selectors.BaseSelector) -> None:
    """In a forked child: point the parent's loop at nothing the parent still uses.

    Every descriptor the loop watches becomes ``/dev/null`` in this process and its epoll (or
    kqueue) descriptor a fresh, empty instance: whatever later happens to the loop here (its
    finalizer closing it, a connection's finalizer sending a TLS close) reaches neither the
    parent's sockets nor its event registrations.
    """
    loop.set_exception_handler(_ignore)  # finalizers' "unclosed ..." reports are ours to drop
    keys = selector.get_map()
    if keys is None:  # already closed
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for key in list(keys.values()):
            with contextlib.suppress(OSError):
                os.dup2(devnull, key.fd, inheritable=False)
        fileno = getattr(selector, "fileno", None)
        if fileno is not None:
            fresh = type(selector)()
            try:
                os.dup2(fresh.fileno(), fileno(), inheritable=False)  # type: ignore[attr-defined]
            finally:
                fresh.close()
    finally:
        os.close(devnull)


def _ignore(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    pass


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion from sync code, even inside a running event loop."""
    worker = LoopThread("dify-ingest-tools-run-sync")
    try:
        return worker.run(coro)
    finally:
        worker.stop()


def _shutdown(worker: LoopThread, client: AsyncDifyKnowledgeClient) -> None:
    try:
        if worker.started:
            if not client.closed:
                worker.run(client.aclose())
        else:
            # Nothing ran in this process (never used, or a forked child that only exits):
            # no session or task to end here, and no loop worth starting to end them.
            client._lifecycle.closed = True
    except DifyClientClosedError:
        pass
    finally:
        worker.stop()


class DifyKnowledgeClient(BlockingMethods):
    """Blocking twin of `AsyncDifyKnowledgeClient`: same arguments, same methods, same errors.

    Its methods are generated from the async class (`blocking`, `blocking_more`, by `twin`):
    the same parameters, defaults, return types and docstrings, checked by a parity test.

    Safe to call from a running event loop (e.g. a Jupyter cell) and from many threads at
    once. Use it as a context manager or call `close` when done; closing, from any thread,
    ends the calls other threads are blocked in with `DifyClientClosedError`. A process
    forked from this one (multiprocessing) can keep using it: the child gets its own worker
    thread, loop and session on first use, and never touches the parent's.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        **options: Any,
    ) -> None:
        if "session" in options:
            raise TypeError(
                "DifyKnowledgeClient runs on its own event loop and cannot share an "
                "aiohttp session; use AsyncDifyKnowledgeClient(session=...) instead"
            )
        self._async = AsyncDifyKnowledgeClient(
            api_key, base_url, timeout=timeout, max_retries=max_retries, **options
        )
        self._worker = LoopThread()
        self._finalizer = weakref.finalize(self, _shutdown, self._worker, self._async)

    @property
    def async_client(self) -> AsyncDifyKnowledgeClient:
        """The async client underneath (its coroutines must run on this client's loop)."""
        return self._async

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._worker.run(coro)

    def close(self) -> None:
        """Close the client from any thread: end its waits, watches and requests, then stop.

        Calls blocked in other threads raise `DifyClientClosedError` within moments; later
        calls raise it at once. Called from a callback running on the client's own loop (an
        ``on_event``), the close completes as soon as that callback returns.
        """
        if threading.current_thread() is self._worker.thread:
            threading.Thread(target=self._finalizer, name="dify-ingest-tools-close").start()
            return
        self._finalizer()

    def __enter__(self) -> DifyKnowledgeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ClientBridge:
    """How framework adapters call a client from both sync and async code.

    Built from a `DifyKnowledgeClient`, every coroutine runs on that client's worker loop:
    blocking calls wait for it, async calls await it without blocking the caller's loop, and
    both share one session and one monitor (so an agent's status check and a pipeline's wait
    on the same batch share polls). Built from an `AsyncDifyKnowledgeClient`, async calls run
    on the caller's loop and blocking calls are refused with a clear message.
    """

    def __init__(self, client: AsyncDifyKnowledgeClient | DifyKnowledgeClient) -> None:
        self.client = client

    @property
    def async_client(self) -> AsyncDifyKnowledgeClient:
        if isinstance(self.client, DifyKnowledgeClient):
            return self.client.async_client
        return self.client

    def call(self, work: Callable[[AsyncDifyKnowledgeClient], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(async_client)`` to completion from sync code."""
        if isinstance(self.client, DifyKnowledgeClient):
            return self.client._run(work(self.client.async_client))
        raise TypeError(
            "this component was built on an AsyncDifyKnowledgeClient, which cannot be used "
            "from blocking code: call its async method (ainvoke / acall / arun), or build it "
            "on a DifyKnowledgeClient (or from api_key / base_url) to use both"
        )

    def submit(
        self, work: Callable[[AsyncDifyKnowledgeClient], Coroutine[Any, Any, T]]
    ) -> concurrent.futures.Future[T]:
        """Start ``work(async_client)`` on the client's loop and return at once (sync code).

        For callers that must do something in their own thread while the work runs (e.g.
        hand events to a framework's callbacks); cancel the future to cancel the work.
        """
        if not isinstance(self.client, DifyKnowledgeClient):
            self.call(work)  # raises the TypeError that explains why
        assert isinstance(self.client, DifyKnowledgeClient)
        if threading.current_thread() is self.client._worker._thread:
            raise RuntimeError(
                "a blocking Dify component was called from inside its client's own event loop "
                "(e.g. from an on_event callback); use its async method there"
            )
        return self.client._worker.submit(work(self.client.async_client))

    async def acall(self, work: Callable[[AsyncDifyKnowledgeClient], Coroutine[Any, Any, T]]) -> T:
        """Await ``work(async_client)`` from async code, on the loop the client lives on."""
        if isinstance(self.client, DifyKnowledgeClient):
            return await self.client._worker.run_async(work(self.client.async_client))
        return await work(self.client)


def unpicklable(component: object) -> TypeError:
    """What pickling an adapter that holds a `ClientBridge` raises, in every framework.

    Pickling would reach the client's event loop, thread and weak references and fail with a
    raw error deep inside them; a copy in another process could not use the session anyway.
    """
    return TypeError(
        f"{type(component).__name__} holds a live Dify client (an HTTP session, a worker "
        "thread and the API key) and cannot be pickled. Build it in the process that uses it "
        "(from api_key / base_url, or DIFY_API_KEY / DIFY_API_BASE_URL); within one process, "
        "pass one client= to every component."
    )
