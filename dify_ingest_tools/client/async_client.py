"""`AsyncDifyKnowledgeClient`: one aiohttp session, one `_request`, typed results and errors.

The composition root: the constructor, properties, lifecycle, and the status and wait calls.
Every other call comes from a resource mixin of its own module (see the package docstring).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any, TypeVar, cast

import aiohttp
from pydantic import BaseModel, SecretStr, ValidationError
from typing_extensions import Unpack
from yarl import URL

from dify_ingest_tools._base import fork as _fork
from dify_ingest_tools._base.clock import SYSTEM_CLOCK, Clock
from dify_ingest_tools._base.config import (
    public_url,
    resolve_api_key,
    resolve_base_url,
    warn_if_plaintext,
)
from dify_ingest_tools._base.inputs import (
    check_int,
    check_number,
    check_optional_number,
    path_part,
)
from dify_ingest_tools._http.answer_errors import first_error, shape_error
from dify_ingest_tools._http.lifecycle import GuardedTransport, Lifecycle
from dify_ingest_tools._http.multipart import DEFAULT_MAX_FILE_SIZE
from dify_ingest_tools._http.retry import RetryPolicy
from dify_ingest_tools._http.telemetry import Telemetry
from dify_ingest_tools._http.transport import DEFAULT_MAX_RESPONSE_BYTES
from dify_ingest_tools._version import __version__
from dify_ingest_tools.backends.budget import BudgetBackend
from dify_ingest_tools.backends.ledger import Ledger, ledger_scope
from dify_ingest_tools.backends.request_budget import RequestBudget, resolve_requests_per_minute
from dify_ingest_tools.backends.shared_polls import RedisStatusCache
from dify_ingest_tools.client.datasets import DatasetSettings
from dify_ingest_tools.client.datasets_api import DatasetsAPI
from dify_ingest_tools.client.doc_names import DocumentNames
from dify_ingest_tools.client.document_waits_api import DocumentWaitsAPI
from dify_ingest_tools.client.documents import DocumentsAPI
from dify_ingest_tools.client.ledger_hook import LedgerRecorder, LedgerSpec, resolve_ledger
from dify_ingest_tools.client.metadata_api import MetadataAPI
from dify_ingest_tools.client.pending import LEDGER, PendingUploads
from dify_ingest_tools.client.pending_api import PendingAPI
from dify_ingest_tools.client.pipeline_api import PipelineAPI
from dify_ingest_tools.client.retrieve_api import RetrieveAPI
from dify_ingest_tools.client.segments_api import SegmentsAPI
from dify_ingest_tools.client.uploads_api import UploadsAPI
from dify_ingest_tools.models.created import (
    BatchLike,
    BatchRef,
    as_batch_ref,
)
from dify_ingest_tools.models.status import BatchIndexingStatus
from dify_ingest_tools.readiness import waiting
from dify_ingest_tools.readiness.heal import Uploads, check_heal_options, healing_wait
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.progress import wait_callbacks
from dify_ingest_tools.readiness.status_source import HTTPStatusSource
from dify_ingest_tools.readiness.wait_options import WaitKwargs, WaitOptions

_ModelT = TypeVar("_ModelT", bound=BaseModel)


class AsyncDifyKnowledgeClient(
    UploadsAPI,
    DocumentWaitsAPI,
    PendingAPI,
    DocumentsAPI,
    MetadataAPI,
    SegmentsAPI,
    DatasetsAPI,
    RetrieveAPI,
    PipelineAPI,
):
    """Async client for Dify's Knowledge (dataset) Service API.

    One ``aiohttp.ClientSession`` per client, opened on first use and closed by `aclose` or
    ``async with``; closing ends every wait and request in flight with
    `DifyClientClosedError`. A caller-supplied ``session`` is used as is and never closed
    here. In a process forked from this one the client opens a session of its own (one
    built on a caller-supplied session cannot follow and says so).

    Args:
        api_key: A Knowledge API key (``dataset-...``). Defaults to ``DIFY_API_KEY``.
        base_url: API root including ``/v1``. Defaults to ``DIFY_API_BASE_URL``, else
            ``https://api.dify.ai/v1``.
        timeout: Seconds allowed for one HTTP attempt (connect, send, read).
        call_timeout: Seconds one call that is not a wait (a status check, a create, a
            retrieve, ...) may take, retries and pauses included; default ``2 * timeout``.
            Attempts are clamped to what is left, and no retry starts that would end past it.
        max_retries: Transport retries for idempotent requests (reads and retrieve) on
            connection errors, 5xx, 429 and Dify Cloud's 403 rate limit.
        session: An existing ``aiohttp.ClientSession`` to use (not closed by this client).
        retry_creates: Also retry document creation on transient failures. Off by default:
            create is an upsert by name, so a repeated create restarts indexing.
        backoff_base: First retry backoff in seconds (doubles per retry, with jitter).
        backoff_max: Upper bound of one backoff.
        rate_limit_cooldown: After Dify Cloud's 403 knowledge rate limit, every create,
            update, delete and retrieve of this client pauses this long (60 s: Dify's window,
            which counts refused calls too, so an earlier retry keeps the workspace locked).
        max_response_bytes: Refuse response bodies larger than this.
        requests_per_minute: A budget for every request this client sends (polls included),
            spread evenly; a number or a Dify Cloud plan preset (``"sandbox"`` = 10,
            ``"professional"`` = 100, ``"team"`` = 1000). None means no budget.
        max_concurrency: At most this many status polls in flight at once (the monitor's cap).
        tracer_provider: An OpenTelemetry ``TracerProvider`` for this client's spans instead
            of the global one (see the docs' Observability page, docs/observability.md).
        meter_provider: An OpenTelemetry ``MeterProvider`` for its metrics, likewise.
        budget: A shared budget instead of ``requests_per_minute``: e.g. `RedisBudget`, one
            window for every process of a workspace. The client closes its connections when
            it closes (it reconnects if used again, so one budget can serve many clients).
        ledger: Where uploads are recorded so waits survive restarts (`wait_for_pending`):
            by default ``$DIFY_INGEST_LEDGER`` if set, else a SQLite file in the user cache
            dir; a path, a ``redis://`` URL, a `Ledger`, or False for none.
        status_cache: A `RedisStatusCache` shared by a fleet: processes waiting on the same
            batch share one status poll per interval.
        max_file_size: The server's upload limit in bytes (Dify's default: 15 MiB,
            ``UPLOAD_FILE_SIZE_LIMIT=15``): `create_document_by_file` refuses a larger file
            with ``ValueError`` before any request. Raise it to match a server configured
            for more; None checks nothing.
        clock: The `Clock` every deadline, backoff, budget slot, poll gap and stall timer of
            this client is measured on (default: the system's monotonic clock and asyncio's
            sleeps). Tests pass a ``FakeClock`` (``dify_ingest_tools._base.clock``) to run waits
            in milliseconds. A `RedisBudget` keeps the clock it was built with.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        session: aiohttp.ClientSession | None = None,
        retry_creates: bool = False,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        rate_limit_cooldown: float = 60.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        requests_per_minute: float | str | None = None,
        max_concurrency: int = 16,
        call_timeout: float | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        budget: BudgetBackend | None = None,
        ledger: LedgerSpec = None,
        status_cache: RedisStatusCache | None = None,
        max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
        clock: Clock | None = None,
    ) -> None:
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(
                f"clock must be a Clock (monotonic, sleep, call_later, io), not {clock!r:.60}"
            )
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        if max_file_size is not None:
            check_int(max_file_size, "max_file_size", minimum=1)
        timeout = check_number(timeout, "timeout", minimum=0, exclusive_minimum=True)
        check_optional_number(call_timeout, "call_timeout", minimum=0, exclusive_minimum=True)
        check_int(max_response_bytes, "max_response_bytes", minimum=1)
        check_int(max_concurrency, "max_concurrency", minimum=1)
        self._api_key = resolve_api_key(api_key)
        self._base_url = resolve_base_url(base_url)
        self.timeout = float(timeout)
        self.retry_policy = RetryPolicy(
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            rate_limit_cooldown=rate_limit_cooldown,
        )
        self.retry_creates = retry_creates
        self._datasets = DatasetSettings()
        rate = resolve_requests_per_minute(requests_per_minute)
        if budget is not None and rate is not None:
            raise ValueError("pass requests_per_minute or budget, not both")
        if budget is None and rate is not None:
            budget = RequestBudget(rate, clock=self._clock)
        # The monitor keeps its sweeps to a share of an in-process budget (a shared one
        # spends nothing on polls).
        self._requests_per_minute = (
            budget.requests_per_minute if isinstance(budget, RequestBudget) else None
        )
        self._lifecycle = Lifecycle()
        self._transport = GuardedTransport(
            self._lifecycle,
            headers={
                "Authorization": f"Bearer {self._api_key.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": f"dify-ingest-tools/{__version__}",
            },
            timeout=self.timeout,
            retry_policy=self.retry_policy,
            max_response_bytes=max_response_bytes,
            budget=budget,
            session=session,
            call_timeout=call_timeout,
            telemetry=Telemetry(tracer_provider, meter_provider),
            clock=self._clock,
        )
        self.max_concurrency = max_concurrency
        self.max_file_size = max_file_size
        # What this client uploaded and has not seen finish, for the retrievers' gate.
        self._pending = PendingUploads()
        #: What this client uploaded, to send a stalled one again (``on_stall="resubmit"``).
        self._uploads = Uploads()
        self._scope = ledger_scope(self.base_url, self._api_key.get_secret_value())
        backend = resolve_ledger(ledger)
        self._ledger = (
            LedgerRecorder(backend, self._scope, self._pending.view(LEDGER), clock=self._clock)
            if backend is not None
            else None
        )
        self._source = HTTPStatusSource(
            self._transport,
            self._url,
            self._pending.forget_if_done,
            observe=self._ledger.observe if self._ledger is not None else None,
            cache=status_cache,
            scope=self._scope,
        )
        self._status_cache = status_cache
        self._monitor: IndexingMonitor | None = None
        # Names and metadata of retrieved documents (Dify's retrieve records carry neither).
        self._doc_names = DocumentNames(clock=self._clock.monotonic)
        warn_if_plaintext(self._base_url)
        _fork.register(self)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root requests go to (``.../v1``), without credentials."""
        return public_url(self._base_url)

    @property
    def api_key(self) -> SecretStr:
        """The key, as a `SecretStr` (``str()`` and ``repr()`` show only asterisks)."""
        return self._api_key

    @property
    def closed(self) -> bool:
        """True once `aclose` has been called."""
        return self._lifecycle.closed

    @property
    def ledger(self) -> Ledger | None:
        """The pending ledger this client records its uploads in (None when disabled)."""
        return self._ledger.ledger if self._ledger is not None else None

    @property
    def monitor(self) -> IndexingMonitor:
        """The `IndexingMonitor` every status request and wait of this client goes through."""
        if self._monitor is None:
            self._monitor = IndexingMonitor(
                self._source,
                max_concurrency=self.max_concurrency,
                retry_policy=self.retry_policy,
                requests_per_minute=self._requests_per_minute,
                clock=self._clock,
            )
        return self._monitor

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def __aenter__(self) -> AsyncDifyKnowledgeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client, ending everything it is doing. Idempotent.

        Every wait, watch and request in flight ends at once with `DifyClientClosedError`
        (a wait's carries its ``last_status``), and later calls are refused with it. Then the
        session this client opened is closed; a caller-supplied one stays open.
        """
        self._lifecycle.closed = True
        if self._monitor is not None:
            await self._monitor.aclose()
        await self._lifecycle.close()
        await self._transport.aclose()
        if self._ledger is not None:
            await self._ledger.aclose()
        if self._status_cache is not None:
            await self._status_cache.aclose()

    def _after_fork_in_child(self) -> None:
        # Start afresh in a forked child: the parent's session, poll loops and tasks stay the
        # parent's (see `_base.fork`). Settings, caches and pending uploads are plain data: kept.
        if isinstance(self._transport, GuardedTransport):
            self._transport.after_fork_in_child()
        self._lifecycle.after_fork_in_child()
        self._datasets.after_fork_in_child()
        if self._monitor is not None:
            _fork.abandon(self._monitor)
            self._monitor = None

    # -- the one request path -------------------------------------------------------------

    def _url(self, *parts: str) -> URL:
        path = "/".join(path_part(part) for part in parts)
        return URL(f"{self._base_url}/{path}", encoded=True)

    def _parse(self, model: type[_ModelT], payload: Any, url: URL, method: str) -> _ModelT:
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            detail = f"{model.__name__}: {first_error(exc)}"
            raise shape_error(detail, payload, url, method) from None

    # -- indexing status ------------------------------------------------------------------

    async def get_indexing_status(
        self, dataset_id: str, batch: str, *, deadline: float | None = None
    ) -> BatchIndexingStatus:
        """Fetch the indexing status of every document of a creation batch (one request).

        Args:
            dataset_id: The knowledge base (dataset) UUID.
            batch: The ``batch`` string that document creation returned.
            deadline: Optional instant on the client's clock bounding attempts and retries.

        Raises:
            ValueError: ``dataset_id`` or ``batch`` is malformed (no request is sent).
            DifyNotFoundError: ``resource == "dataset"`` for an unknown dataset,
                ``"documents"`` for an unknown (or not yet visible) batch.
            DifyAPIError: Any other error answer; see the error table in docs/errors.md.
        """
        return await self.monitor.fetch(dataset_id, batch, deadline=deadline)

    # -- waiting ----------------------------------------------------------------------------

    async def wait_for_indexing(
        self, dataset_id: str, batch: str, **options: Unpack[WaitKwargs]
    ) -> BatchIndexingStatus:
        """Wait until every document of the batch is ``completed``; return that status.

        Polls through the client's monitor: concurrent waits on one batch share one poll
        loop, and the cadence starts at ``poll_interval``, backs off (with jitter) up to
        ``max_poll_interval`` while nothing changes, and tightens again after progress.
        Transient failures (connection, 5xx, 429, Dify Cloud's 403 rate limit) are retried
        within the deadline and reported as events.

        Args:
            dataset_id: The knowledge base UUID.
            batch: The batch that document creation returned.
            timeout: Seconds for the whole wait, retries and sleeps included (600).
            poll_interval: First gap between polls, and the gap after a change (1 s).
            max_poll_interval: Longest gap while nothing changes (10 s).
            stall_timeout: Raise `IndexingStalledError` when nothing observable changes
                for this long (the "indexing worker is down" case). None (default) disables it.
            not_found_grace: Seconds ``Documents not found.`` is tolerated (a batch can be
                invisible right after creation); then it is raised as `DifyNotFoundError` (10).
            on_paused: ``"wait"`` (default) keeps waiting on a paused document (it counts
                toward ``stall_timeout``); ``"fail"`` raises `IndexingFailedError`.
            raise_on_error: Raise `IndexingFailedError` as soon as a document fails
                (default); with False, return once every document is terminal.
            on_empty: A batch ``completed`` with a document of 0 segments (empty or
                whitespace-only text) is indexed, but nothing will be found: ``"raise"``
                (default) raises `IndexingEmptyError`, ``"warn"`` logs a warning and
                returns, ``"accept"`` returns (``status.is_empty`` says so).
            summaries: Also wait until Dify has made the documents' summaries (datasets
                with summary indexing; read from the document list), with ``summarizing``
                events (False).
            on_event: A sync or async callable receiving each `IndexingEvent`.
            progress: Draw a progress bar (``tqdm.auto``) while waiting (False).

        Raises:
            IndexingFailedError: A document ended in ``error`` (with Dify's error text).
            IndexingEmptyError: Completed, but a document produced no chunks (``on_empty``).
            IndexingTimeoutError: The deadline passed; Dify is still working server-side.
            IndexingStalledError: Nothing changed for ``stall_timeout`` seconds.
            DifyAPIError: A fatal error (401, 403, ``Dataset not found.``, ...).

            Every wait error carries ``.last_status``.

        Other options: ``on_stall="resubmit"`` (default ``"raise"``) sends a stalled upload
        of this client (it still holds the text or the file path) again by name, at most
        ``max_resubmits`` (1) times, and waits on the new batch, with a ``resubmitted`` event;
        the returned status is then the new batch's. Needs ``stall_timeout``.
        """
        rest: dict[str, Any] = dict(options)
        on_stall, max_resubmits = check_heal_options(rest)
        if on_stall == "resubmit":
            return await healing_wait(
                self,
                dataset_id,
                batch,
                rest,
                max_resubmits,
                lambda current, opts: self.wait_for_indexing(dataset_id, current, **opts),
                self._clock.monotonic,
            )
        wait, on_event, progress = WaitOptions.split(cast(WaitKwargs, rest))
        ref = BatchRef(dataset_id=dataset_id, batch=batch)
        with wait_callbacks(on_event, progress) as callbacks:
            return await waiting.wait_for_indexing(
                self.monitor,
                ref,
                wait,
                callbacks,
                telemetry=self._transport.telemetry,
                documents=self._pending.documents_of(ref),  # if this client created it
            )

    async def wait_for_batches(
        self, batches: Iterable[BatchLike], **options: Unpack[WaitKwargs]
    ) -> list[BatchIndexingStatus]:
        """Wait for many batches at once (same options as `wait_for_indexing`).

        Args:
            batches: `BatchRef`s, `CreatedDocument`s or ``(dataset_id, batch)`` tuples.

        Returns:
            The final statuses, in input order. ``timeout`` bounds the whole call. The first
            error (a failure with ``raise_on_error=True``, a timeout, an API error) cancels
            the other waits and is raised.
        """
        rest: dict[str, Any] = dict(options)
        on_stall, max_resubmits = check_heal_options(rest)
        if on_stall == "resubmit":
            # Each batch heals on its own; the first error still ends them all.
            refs = [as_batch_ref(batch) for batch in batches]
            heal = {"on_stall": on_stall, "max_resubmits": max_resubmits, **rest}
            return await waiting.gather_first_error(
                [self.wait_for_indexing(ref.dataset_id, ref.batch, **heal) for ref in refs]
            )
        wait, on_event, progress = WaitOptions.split(options)
        with wait_callbacks(on_event, progress) as callbacks:
            return await waiting.wait_for_batches(
                self.monitor,
                batches,
                wait,
                callbacks,
                telemetry=self._transport.telemetry,
                documents_of=self._pending.documents_of,
            )

    async def watch_indexing(
        self, dataset_id: str, batch: str, **options: Unpack[WaitKwargs]
    ) -> AsyncIterator[BatchIndexingStatus]:
        """Yield each observed change of the batch, ending at a terminal state.

        Same options and errors as `wait_for_indexing`; with ``raise_on_error=True`` the
        status showing the failure is yielded before `IndexingFailedError` is raised.
        """
        wait, on_event, progress = WaitOptions.split(options)
        ref = BatchRef(dataset_id=dataset_id, batch=batch)
        with wait_callbacks(on_event, progress) as callbacks:
            stream = waiting.observe(
                self.monitor, ref, wait, callbacks, telemetry=self._transport.telemetry
            )
            # Close the inner generator now (not at garbage collection) when the caller stops.
            async with contextlib.aclosing(stream):
                async for status in stream:
                    yield status
