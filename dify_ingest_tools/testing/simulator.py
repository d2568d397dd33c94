"""``DifySimulator``: a faithful, controllable stand-in for Dify's Knowledge (dataset) API.

It speaks the HTTP contract recorded from a real Dify 1.14.1 (``shared/contract/recorded``):
the same routes, error bodies, status codes, quirks and timeline semantics, with a clock you
control and faults you inject. It imports only the standard library and aiohttp, so it checks
any client honestly, this package's own included.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiohttp import web

from ._app import build_app, start_server
from ._core import Core
from ._fault_controls import FaultControls
from ._records import RequestListener, RequestRecord
from ._script import DocumentScript
from ._serving import serve_in_thread, url_host
from ._state import Store
from ._summaries import SummaryFailure, SummarySettings
from ._uploads import DEFAULT_MAX_FILE_SIZE

#: The key a simulator accepts unless told otherwise (dataset keys start with ``dataset-``).
DEFAULT_API_KEY = "dataset-simulator-0000000000000000"


class DifySimulator(FaultControls):
    """An in-process Dify Knowledge API with scripted documents and injectable faults.

    Statuses are computed lazily from ``clock`` at request time (no background tasks), so a
    :class:`~dify_ingest_tools.testing.ManualClock` makes every answer deterministic.

    Args:
        api_key: The accepted dataset API key, or several.
        seed: Seeds ids, batch suffixes, the ``data[]`` shuffle and chaos faults; ``None``
            draws a fresh seed.
        clock: Monotonic seconds; defaults to :func:`time.monotonic`.
        time_scale: Multiplies every default stage duration (tests use e.g. 0.02).
        shuffle: Shuffle ``data[]`` of multi-document batches on every poll (real Dify has no
            ``ORDER BY`` there).
        max_file_size: The upload limit in bytes (Dify's default, 15 MiB): a larger file is
            answered 413 ``file_too_large``, and never held in memory whole.

    Example:
        >>> sim = DifySimulator(time_scale=0.02)
        >>> dataset_id = sim.create_dataset("docs")
        >>> async with sim.serve() as base_url:  # doctest: +SKIP
        ...     ...  # point a client at base_url with sim.api_key

    Raises:
        ValueError: If no key is given, a key is empty, or ``time_scale`` is negative.
    """

    def __init__(
        self,
        api_key: str | Iterable[str] = DEFAULT_API_KEY,
        *,
        seed: int | None = 0,
        clock: Callable[[], float] | None = None,
        time_scale: float = 1.0,
        shuffle: bool = True,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ) -> None:
        keys = (api_key,) if isinstance(api_key, str) else tuple(api_key)
        if not keys or not all(isinstance(key, str) and key for key in keys):
            raise ValueError("give at least one non-empty API key")
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, not {time_scale!r}")
        if max_file_size < 1:
            raise ValueError(f"max_file_size must be >= 1, not {max_file_size!r}")
        rng = random.Random(seed)
        store = Store(clock=clock or time.monotonic, rng=rng, time_scale=time_scale)
        self._core = Core(store=store, rng=rng, keys=keys, shuffle=shuffle)
        self._core.max_file_size = max_file_size
        self._lock = store.lock
        #: The ``.../v1`` base URL while :meth:`serve` or :meth:`serve_in_thread` runs.
        self.base_url: str | None = None

    # -- configuration -----------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The first accepted API key."""
        return self._core.keys[0]

    @property
    def dataset_id(self) -> str:
        """The id of the first dataset created.

        Raises:
            LookupError: If no dataset exists yet.
        """
        with self._lock:
            for dataset_id in self._core.store.datasets:
                return dataset_id
        raise LookupError("the simulator has no dataset yet; call create_dataset() first")

    @property
    def dataset_ids(self) -> list[str]:
        """Every dataset id, in creation order."""
        with self._lock:
            return list(self._core.store.datasets)

    @property
    def default_script(self) -> DocumentScript:
        """The script of documents that have no script of their own (settable)."""
        return self._core.store.default_script

    @default_script.setter
    def default_script(self, script: DocumentScript) -> None:
        with self._lock:
            self._core.store.default_script = script

    @property
    def dataset_detail_error(self) -> bool:
        """Make ``GET /datasets/{id}`` answer 400 "Failed to request plugin daemon" (08)."""
        return self._core.dataset_detail_error

    @dataset_detail_error.setter
    def dataset_detail_error(self, enabled: bool) -> None:
        self._core.dataset_detail_error = enabled

    @property
    def max_file_size(self) -> int:
        """The upload limit in bytes (settable); larger files are answered 413."""
        return self._core.max_file_size

    @max_file_size.setter
    def max_file_size(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_file_size must be >= 1, not {limit!r}")
        self._core.max_file_size = limit

    # -- datasets and documents --------------------------------------------------------------

    def create_dataset(
        self,
        name: str = "demo",
        *,
        indexing_technique: str | None = "economy",
        dataset_id: str | None = None,
        enable_api: bool = True,
        summaries: bool = False,
    ) -> str:
        """Create a knowledge base directly (no HTTP).

        Args:
            name: The dataset name (not required to be unique here, unlike over HTTP).
            indexing_technique: ``"economy"``, ``"high_quality"`` or ``None`` (then the first
                create request must send one).
            dataset_id: A UUID to use; random (seeded) by default.
            enable_api: The per-dataset "API access" switch.
            summaries: Turn summary indexing on (see `set_summaries`; made for
                ``high_quality`` datasets only, as by Dify).

        Returns:
            The dataset id (lower-case UUID).

        Raises:
            ValueError: If ``dataset_id`` is not a UUID or is already used.
        """
        with self._lock:
            dataset = self._core.store.create_dataset(
                name,
                indexing_technique=indexing_technique,
                dataset_id=dataset_id,
                enable_api=enable_api,
            )
            dataset.summaries = SummarySettings(enabled=summaries)
            return dataset.id

    def enable_pipeline(self, dataset_id: str, text: str | None = "Extracted from {name}.") -> None:
        """Give the knowledge base a published knowledge pipeline (``POST .../pipeline/run``).

        Args:
            dataset_id: The dataset.
            text: What the pipeline extracts from each item (``{name}`` is replaced by the
                item's name); ``""`` makes documents that end ``completed`` with no chunks, as
                users report of pipelines; None removes the pipeline (``Pipeline not found``).
        """
        with self._lock:
            self._core.store.require_dataset(dataset_id).pipeline_text = text

    def set_summaries(
        self,
        dataset_id: str,
        enabled: bool = True,
        *,
        seconds: float = 2.0,
        failure: SummaryFailure | None = None,
    ) -> None:
        """Summary indexing of a dataset, as its ``summary_index_setting`` would set it.

        A ``high_quality`` dataset's documents that complete with segments then report
        ``need_summary: true`` and ``summary_index_status: "SUMMARIZING"`` for ``seconds``
        (simulated clock), then null. Documents of other datasets, and empty ones, get
        ``need_summary: true`` and stay null (Dify's summary task skips them).

        Args:
            failure: ``"error"``: the summary model fails; the documents go null after
                ``seconds`` all the same (Dify reports no summary error on a document).
                ``"stuck"``: the summary task never ends (``SUMMARIZING`` forever).
        """
        with self._lock:
            self._core.store.require_dataset(dataset_id).summaries = SummarySettings(
                enabled=enabled, seconds=seconds, failure=failure
            )

    def set_api_enabled(self, dataset_id: str, enabled: bool) -> None:
        """Flip the console's per-dataset API access switch (403 while off, 04b)."""
        with self._lock:
            self._core.store.require_dataset(dataset_id).enable_api = enabled

    def set_retrieval_model(self, dataset_id: str, **settings: Any) -> None:
        """Change the dataset's stored retrieval settings, as Dify's console (or a ``PATCH``
        of the dataset, recording 06b) does: e.g. ``search_method="keyword_search"``.

        A retrieve without a ``retrieval_model`` uses them.
        """
        with self._lock:
            self._core.store.require_dataset(dataset_id).retrieval_model.update(settings)

    def script(self, name: str, script: DocumentScript | None) -> None:
        """Script every document later created with ``name`` (over HTTP or directly).

        Args:
            name: The document name (for create-by-file, the file name).
            script: The script; ``None`` removes the one registered for ``name``.
        """
        with self._lock:
            if script is None:
                self._core.store.scripts.pop(name, None)
            else:
                self._core.store.scripts[name] = script

    @property
    def script_resolver(self) -> Callable[[str], DocumentScript | None] | None:
        """A function giving the script of a document by name, or ``None`` (settable).

        Consulted when a document is created whose name has no script of its own (see
        :meth:`script`), before :attr:`default_script`; returning ``None`` falls through to
        the default. ``dify-ingest simulate --fail 'bad*'`` scripts name patterns this way.
        """
        return self._core.store.script_resolver

    @script_resolver.setter
    def script_resolver(self, resolver: Callable[[str], DocumentScript | None] | None) -> None:
        with self._lock:
            self._core.store.script_resolver = resolver

    def clear_scripts(self) -> None:
        """Forget every script registered with :meth:`script`."""
        with self._lock:
            self._core.store.scripts.clear()

    def add_document(
        self,
        dataset_id: str,
        name: str,
        text: str,
        *,
        script: DocumentScript | None = None,
        batch: str | None = None,
    ) -> tuple[str, str]:
        """Seed a document directly (no HTTP), as if created through the API.

        Args:
            dataset_id: The dataset.
            name: The document name; an existing name is re-indexed in a new batch (upsert).
            text: The text.
            script: This document's script (else the one registered for ``name``, else
                :attr:`default_script`).
            batch: An existing batch of the dataset to join. Several documents in one batch
                are processed one at a time, the waiting ones sitting in ``parsing`` (05b).

        Returns:
            ``(document_id, batch)``.

        Raises:
            KeyError: If the dataset does not exist.
            ValueError: If ``batch`` is not a batch of that dataset.
        """
        with self._lock:
            store = self._core.store
            dataset = store.require_dataset(dataset_id)
            document = store.add_document(dataset, name, text, script=script, batch=batch)
            return document.id, document.batch

    def pause(self, document_id: str) -> None:
        """Pause a document as Dify's console does (there is no service-API route).

        The indexing-status endpoint then reports ``paused`` with ``paused_at`` set, and the
        timeline stands still until :meth:`resume`. Pausing twice is a no-op.

        Raises:
            KeyError: If the document does not exist.
            ValueError: If the document already completed or failed.
        """
        with self._lock:
            store = self._core.store
            _, document = store.find_document(document_id)
            document.timeline.pause(store.clock())

    def resume(self, document_id: str) -> None:
        """Resume a paused document: ``paused_at`` goes back to null and the stage continues.

        Raises:
            KeyError: If the document does not exist.
        """
        with self._lock:
            store = self._core.store
            _, document = store.find_document(document_id)
            document.timeline.resume(store.clock())

    def release(self, document_id: str) -> None:
        """Let a document stalled by its script's ``stall_at`` continue.

        Releasing before the document reaches that stage cancels the stall.

        Raises:
            KeyError: If the document does not exist.
        """
        with self._lock:
            store = self._core.store
            _, document = store.find_document(document_id)
            document.timeline.release(store.clock())

    def delete_document(self, dataset_id: str, document_id: str) -> None:
        """Delete a document; polling its batch then gives ``Documents not found.``.

        Raises:
            KeyError: If the dataset or the document does not exist.
        """
        with self._lock:
            store = self._core.store
            if not store.delete_document(store.require_dataset(dataset_id), document_id):
                raise KeyError(f"no document {document_id!r} in dataset {dataset_id!r}")

    # -- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every finished request in arrival order, rejected ones (auth, 404) included."""
        with self._lock:
            return self._core.log.records()

    def requests_for(
        self, route: str | None = None, method: str | None = None
    ) -> list[RequestRecord]:
        """The logged requests to ``route`` (``None`` = any) with ``method`` (``None`` = any)."""
        wanted = method.upper() if method else None
        return [
            record
            for record in self.requests
            if route in (None, record.route) and wanted in (None, record.method)
        ]

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._core.log.clear()

    def add_request_listener(self, listener: RequestListener) -> None:
        """Call ``listener(record)`` as each request finishes, e.g. to stream a request log.

        Listeners run on the serving loop while the simulator is locked: keep them quick. One
        that raises is logged and does not disturb the response.
        """
        with self._lock:
            self._core.log.listeners.append(listener)

    def remove_request_listener(self, listener: RequestListener) -> None:
        """Stop calling a listener added with :meth:`add_request_listener` (no-op if absent)."""
        with self._lock:
            if listener in self._core.log.listeners:
                self._core.log.listeners.remove(listener)

    # -- serving -----------------------------------------------------------------------------

    def app(self) -> web.Application:
        """A fresh aiohttp application bound to this simulator's state.

        Serve it with any aiohttp runner or test server. One quirk is only reproduced by
        :meth:`serve`/:meth:`serve_in_thread`: aiohttp strips the trailing space of
        ``Authorization: Bearer ``, which Dify answers with a 400 rather than a 401.
        """
        return build_app(self._core)

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve on the current event loop.

        Args:
            host: The interface to listen on.
            port: The port; 0 picks a free one.

        Yields:
            The base URL, e.g. ``"http://127.0.0.1:53211/v1"`` (also in :attr:`base_url`).
        """
        running = await start_server(self._core, host, port)
        previous, self.base_url = self.base_url, f"http://{url_host(host)}:{running.port}/v1"
        try:
            yield self.base_url
        finally:
            self.base_url = previous
            await running.close()

    @contextmanager
    def serve_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve from a thread with its own event loop.

        Needed by blocking clients, and by code called from a thread whose loop is busy (the
        simulator's own loop must keep running while the caller blocks).

        Args:
            host: The interface to listen on.
            port: The port; 0 picks a free one.

        Yields:
            The base URL (also in :attr:`base_url`). The thread is joined on exit.
        """
        with serve_in_thread(self.serve, host, port) as base_url:
            yield base_url
