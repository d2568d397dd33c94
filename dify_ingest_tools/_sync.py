"""The single sync-over-async bridge, and `DifyKnowledgeClient` built on it.

Every blocking call runs the async implementation on a private event loop in a daemon worker
thread. That works the same from a plain script and from inside a running loop (Jupyter,
an async web handler), where ``asyncio.run`` would refuse, and it keeps one aiohttp session
alive across calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

from pydantic import SecretStr
from typing_extensions import Unpack

from ._documents_sync import DocumentsSyncAPI
from .client import AsyncDifyKnowledgeClient, FileInput
from .models import (
    BatchIndexingStatus,
    BatchLike,
    BatchRef,
    CreatedDocument,
    DifyDocument,
    DocumentList,
    RetrievedChunk,
)
from .waiting import WaitKwargs

__all__ = ["ClientBridge", "DifyKnowledgeClient", "LoopThread", "run_sync"]

T = TypeVar("T")


class LoopThread:
    """An event loop running in its own daemon thread; `run` blocks until a coroutine is done."""

    def __init__(self, name: str = "dify-ingest-tools") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

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
                raise RuntimeError("the client is closed; create a new one")
            if not self._started:
                self._thread.start()
                self._started = True
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

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
                self.run(closer())

    def stop(self) -> None:
        """Stop the loop and join the thread. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            started = self._started
        if started:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion from sync code, even inside a running event loop."""
    worker = LoopThread("dify-ingest-tools-run-sync")
    try:
        return worker.run(coro)
    finally:
        worker.stop()


def _shutdown(worker: LoopThread, client: AsyncDifyKnowledgeClient) -> None:
    try:
        if not client.closed:
            worker.run(client.aclose())
    except RuntimeError:
        pass
    finally:
        worker.stop()


class DifyKnowledgeClient(DocumentsSyncAPI):
    """Blocking twin of `AsyncDifyKnowledgeClient`: same arguments, same methods, same errors.

    Safe to call from a running event loop (e.g. a Jupyter cell). Use it as a context manager
    or call `close` when done.
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

    @property
    def base_url(self) -> str:
        return self._async.base_url

    @property
    def api_key(self) -> SecretStr:
        return self._async.api_key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._worker.run(coro)

    def close(self) -> None:
        """Close the HTTP session and stop the worker thread."""
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

    # The methods below are one-line forwards; documentation lives on the async client.

    def get_indexing_status(self, dataset_id: str, batch: str) -> BatchIndexingStatus:
        """See `AsyncDifyKnowledgeClient.get_indexing_status`."""
        return self._run(self._async.get_indexing_status(dataset_id, batch))

    def wait_for_indexing(
        self, dataset_id: str, batch: str, **options: Unpack[WaitKwargs]
    ) -> BatchIndexingStatus:
        """See `AsyncDifyKnowledgeClient.wait_for_indexing`. Ctrl-C stops polling at once."""
        return self._run(self._async.wait_for_indexing(dataset_id, batch, **options))

    def wait_for_batches(
        self, batches: Iterable[BatchLike], **options: Unpack[WaitKwargs]
    ) -> list[BatchIndexingStatus]:
        """See `AsyncDifyKnowledgeClient.wait_for_batches`."""
        return self._run(self._async.wait_for_batches(list(batches), **options))

    def watch_indexing(
        self, dataset_id: str, batch: str, **options: Unpack[WaitKwargs]
    ) -> Iterator[BatchIndexingStatus]:
        """Blocking iterator over `AsyncDifyKnowledgeClient.watch_indexing`."""
        return self._worker.iterate(self._async.watch_indexing(dataset_id, batch, **options))

    def pending_batches(self, dataset_id: str) -> list[BatchRef]:
        """See `AsyncDifyKnowledgeClient.pending_batches`."""
        return self._async.pending_batches(dataset_id)

    def wait_for_pending(
        self,
        dataset_id: str,
        *,
        timeout: float = 600.0,
        raise_on_error: bool = False,
        **options: Any,
    ) -> list[BatchIndexingStatus]:
        """See `AsyncDifyKnowledgeClient.wait_for_pending`."""
        return self._run(
            self._async.wait_for_pending(
                dataset_id, timeout=timeout, raise_on_error=raise_on_error, **options
            )
        )

    def create_document_by_text(
        self,
        dataset_id: str,
        name: str,
        text: str,
        *,
        indexing_technique: str | None = None,
        process_rule: Mapping[str, Any] | None = None,
        doc_form: str | None = None,
        **extra: Any,
    ) -> CreatedDocument:
        """See `AsyncDifyKnowledgeClient.create_document_by_text`."""
        return self._run(
            self._async.create_document_by_text(
                dataset_id,
                name,
                text,
                indexing_technique=indexing_technique,
                process_rule=process_rule,
                doc_form=doc_form,
                **extra,
            )
        )

    def create_document_by_file(
        self, dataset_id: str, file: FileInput, *, filename: str | None = None, **data: Any
    ) -> CreatedDocument:
        """See `AsyncDifyKnowledgeClient.create_document_by_file`."""
        return self._run(
            self._async.create_document_by_file(dataset_id, file, filename=filename, **data)
        )

    def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        """See `AsyncDifyKnowledgeClient.get_dataset`."""
        return self._run(self._async.get_dataset(dataset_id))

    def get_document(self, dataset_id: str, document_id: str) -> DifyDocument:
        """See `AsyncDifyKnowledgeClient.get_document`."""
        return self._run(self._async.get_document(dataset_id, document_id))

    def list_documents(
        self,
        dataset_id: str,
        *,
        status: str | None = None,
        page: int = 1,
        limit: int = 100,
        keyword: str | None = None,
    ) -> DocumentList:
        """See `AsyncDifyKnowledgeClient.list_documents`."""
        return self._run(
            self._async.list_documents(
                dataset_id, status=status, page=page, limit=limit, keyword=keyword
            )
        )

    def delete_document(self, dataset_id: str, document_id: str) -> None:
        """See `AsyncDifyKnowledgeClient.delete_document`."""
        self._run(self._async.delete_document(dataset_id, document_id))

    def retrieve(
        self,
        dataset_id: str,
        query: str,
        *,
        top_k: int | None = None,
        score_threshold: float | None = None,
        retrieval_model: Mapping[str, Any] | None = None,
        metadata_filter: Mapping[str, Any] | None = None,
    ) -> list[RetrievedChunk]:
        """See `AsyncDifyKnowledgeClient.retrieve`."""
        return self._run(
            self._async.retrieve(
                dataset_id,
                query,
                top_k=top_k,
                score_threshold=score_threshold,
                retrieval_model=retrieval_model,
                metadata_filter=metadata_filter,
            )
        )


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
