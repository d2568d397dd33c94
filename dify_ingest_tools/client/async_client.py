"""`AsyncDifyKnowledgeClient`: one aiohttp session, one `_request`, typed results and errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeGuard, TypeVar, cast

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
    check_dataset_id,
    check_document_id,
    check_int,
    check_number,
    check_optional_number,
    path_part,
)
from dify_ingest_tools._http.lifecycle import GuardedTransport, Lifecycle
from dify_ingest_tools._http.multipart import (
    DEFAULT_MAX_FILE_SIZE,
    StreamedFile,
    check_document_name,
    check_file_name,
    check_file_size,
    file_form,
)
from dify_ingest_tools._http.retry import RetryPolicy
from dify_ingest_tools._http.telemetry import Telemetry
from dify_ingest_tools._http.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    first_error,
    shape_error,
    short,
)
from dify_ingest_tools._version import __version__
from dify_ingest_tools.backends.budget import BudgetBackend
from dify_ingest_tools.backends.ledger import Ledger, content_hash, ledger_scope
from dify_ingest_tools.backends.request_budget import RequestBudget, resolve_requests_per_minute
from dify_ingest_tools.backends.shared_polls import RedisStatusCache
from dify_ingest_tools.client.dataset_create import (
    DatasetPermission,
    IndexingTechnique,
    created_dataset,
    dataset_body,
)
from dify_ingest_tools.client.dataset_lookup import DATASET_PAGE, MAX_DATASET_PAGES
from dify_ingest_tools.client.dataset_lookup import ambiguous as ambiguous_name
from dify_ingest_tools.client.dataset_lookup import check_name as check_dataset_name
from dify_ingest_tools.client.dataset_lookup import missing as missing_name
from dify_ingest_tools.client.dataset_lookup import named as named_datasets
from dify_ingest_tools.client.datasets import DatasetSettings
from dify_ingest_tools.client.doc_names import LIST_PAGE_SIZE, DocumentInfo, DocumentNames
from dify_ingest_tools.client.documents import DocumentsAPI
from dify_ingest_tools.client.ledger_hook import LedgerRecorder, LedgerSpec, resolve_ledger
from dify_ingest_tools.client.pending import LEDGER, PendingUploads
from dify_ingest_tools.client.pipelines import PipelineDatasource, pipeline_run, pipeline_run_body
from dify_ingest_tools.client.resume import resume_pending
from dify_ingest_tools.client.retrieval import (
    ResolvedModel,
    is_missing_embedding_model,
    needs_dataset_settings,
    resolve_retrieval_model,
)
from dify_ingest_tools.errors import (
    DifyAPIError,
    DifyConnectionError,
)
from dify_ingest_tools.models.status import (
    BatchIndexingStatus,
    BatchLike,
    BatchRef,
    CreatedDocument,
    DifyDocument,
    DocumentList,
    IngestResult,
    PipelineRun,
    RetrievedChunk,
    as_batch_ref,
)
from dify_ingest_tools.readiness import waiting
from dify_ingest_tools.readiness.heal import Upload, Uploads, check_heal_options, healing_wait
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.progress import files_progress, wait_callbacks
from dify_ingest_tools.readiness.status_source import HTTPStatusSource
from dify_ingest_tools.readiness.wait_options import WaitKwargs, WaitOptions

__all__ = ["AsyncDifyKnowledgeClient", "FileInput", "UploadPath"]

logger = logging.getLogger("dify_ingest_tools")

FileInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""A path, raw bytes, or a binary file object opened for reading."""

UploadPath = str | os.PathLike[str]
"""A file's path (`upload_files_and_wait`)."""

_ModelT = TypeVar("_ModelT", bound=BaseModel)


class AsyncDifyKnowledgeClient(DocumentsAPI):
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
        # parent's (see `_fork`). Settings, caches and pending uploads are plain data: kept.
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

    # -- creating documents ---------------------------------------------------------------

    async def create_document_by_text(
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
        """Create (or, for an existing name, re-index) a document from text.

        Dify indexes asynchronously: the result carries the ``batch`` to wait on. Create is an
        upsert by name: an existing document with this name keeps its id and is re-indexed
        under a new batch.

        Args:
            dataset_id: The knowledge base UUID.
            name: Document name (unique within the dataset unless you mean to replace); at
                most 200 characters, since Dify cuts longer names. A file uploaded under the
                same name lands on the same document.
            text: The content.
            indexing_technique: ``"high_quality"`` or ``"economy"``. When omitted, the
                dataset's own technique is looked up (Dify 1.14 requires the field).
            process_rule: Chunking rules; defaults to ``{"mode": "automatic"}``.
            doc_form: ``text_model`` (Dify's default), ``hierarchical_model`` or ``qa_model``.
            **extra: Other body fields (``doc_language``, ``retrieval_model``, ...).
        """
        check_dataset_id(dataset_id)
        check_document_name(name)
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        body = await self._create_fields(dataset_id, indexing_technique, process_rule, doc_form)
        body.update(extra)
        body.update(name=name, text=text)
        url = self._url("datasets", dataset_id, "document", "create-by-text")
        payload = await self._create(url, json_body=body, technique_given=indexing_technique)
        created = self._created(dataset_id, payload, url)
        if Upload.keepable(text):
            options = {"indexing_technique": indexing_technique, "process_rule": process_rule}
            options.update(doc_form=doc_form, **extra)
            self._uploads.remember(created, Upload(name=name, text=text, options=options))
        return await self._recorded(created, name, content_hash(text))

    async def create_document_by_file(
        self,
        dataset_id: str,
        file: FileInput,
        *,
        filename: str | None = None,
        **data: Any,
    ) -> CreatedDocument:
        """Upload a file as a new document (multipart: ``file`` plus the ``data`` JSON string).

        The document is named exactly after the file (spaces, accents, CJK and all): the name
        is sent as raw UTF-8, which Dify stores verbatim. Create is an upsert by name, so a
        file and a text document of the same name are one document.

        A path is streamed from disk, never read whole into memory, and read afresh by every
        attempt (``retry_creates=True``). It must not change while it is sent.

        Args:
            dataset_id: The knowledge base UUID.
            file: A path, bytes, or a binary file object. The file name (and so its
                extension, which decides how Dify parses it) comes from ``filename``, else
                from the path or the file object's ``name``.
            filename: The document name; required for bytes.
            **data: Fields of the ``data`` JSON (``indexing_technique``, ``process_rule``,
                ``doc_form``, ``duplicate``, ...). ``process_rule`` defaults to automatic.

        Raises:
            ValueError: The name is empty, longer than 200 characters, or holds a character
                Dify refuses in file names (``/ \\ : * ? " < > |``) or a control character;
                or the file is larger than ``max_file_size`` (no request is sent).
            FileNotFoundError: The path does not exist (or vanished before an attempt).
            FileChangedError: The file changed size or was modified while it was sent
                (an ``OSError``; from ``dify_ingest_tools._http.multipart``).
        """
        check_dataset_id(dataset_id)
        if filename is not None:
            check_file_name(filename)
        limit = self.max_file_size
        if isinstance(file, (str, os.PathLike)):
            path = Path(file)
            info = await asyncio.to_thread(os.stat, path)
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"{path} is not a regular file")
            name = filename or path.name
            check_file_name(name)
            check_file_size(info.st_size, limit, str(path))
            content: bytes | None = None
        else:
            content, name = await _load_file(file, filename, limit)
            check_file_name(name)
        technique = data.pop("indexing_technique", None)
        fields = await self._create_fields(
            dataset_id, technique, data.pop("process_rule", None), data.pop("doc_form", None)
        )
        fields.update(data)
        data_json = json.dumps(fields)
        streams: list[StreamedFile] = []

        def form() -> aiohttp.MultipartWriter:
            if content is not None:
                return file_form(name, content, data_json)
            # A consumed stream cannot be sent again: every attempt reads the file afresh,
            # and refuses one that is no longer the file the caller asked to upload.
            stream = StreamedFile(path, size=info.st_size, mtime_ns=info.st_mtime_ns)
            stream.check_unchanged()
            streams.append(stream)
            return file_form(name, stream, data_json)

        url = self._url("datasets", dataset_id, "document", "create-by-file")
        try:
            payload = await self._create(url, form=form, technique_given=technique)
        except DifyConnectionError as error:
            # aiohttp reports a file that failed mid-send as a broken connection: say what
            # really happened.
            failure = streams[-1].failure if streams else None
            if failure is not None:
                raise failure from error
            raise
        digest = content_hash(content) if content is not None else streams[-1].digest or ""
        created = self._created(dataset_id, payload, url)
        options = {"indexing_technique": technique, **data}
        if content is None:
            self._uploads.remember(created, Upload(name=name, path=path, options=options))
        elif Upload.keepable(content):
            self._uploads.remember(created, Upload(name=name, content=content, options=options))
        return await self._recorded(created, name, digest)

    # -- one call to ingest: create, then wait (the OpenAI SDK's ``upload_and_poll``) -------

    async def create_document_by_text_and_wait(
        self,
        dataset_id: str,
        name: str,
        text: str,
        *,
        indexing_technique: str | None = None,
        process_rule: Mapping[str, Any] | None = None,
        doc_form: str | None = None,
        **options: Any,
    ) -> IngestResult:
        """Create a document from text and wait until Dify has indexed it, in one call.

        `create_document_by_text` then `wait_for_indexing` on the batch it returned.

        Args:
            dataset_id: The knowledge base UUID.
            name: Document name (an existing document of this name is re-indexed: upsert).
            text: The content.
            indexing_technique: As `create_document_by_text`.
            process_rule: As `create_document_by_text`.
            doc_form: As `create_document_by_text`.
            **options: The wait options of `wait_for_indexing` (``timeout``,
                ``stall_timeout``, ``raise_on_error``, ``on_event``, ``progress``, ...); any
                other keyword is a body field of the create (``doc_language``, ...).

        Returns:
            `IngestResult`: ``(document, status)``, the created document and the batch's
            final status.

        Raises:
            IndexingFailedError: Indexing failed (with Dify's text); the error's
                ``last_status`` holds the batch. The same errors as the create and the wait.
        """
        fields, wait = _wait_options_of(options)
        created = await self.create_document_by_text(
            dataset_id,
            name,
            text,
            indexing_technique=indexing_technique,
            process_rule=process_rule,
            doc_form=doc_form,
            **fields,
        )
        status = await self.wait_for_indexing(dataset_id, created.batch, **wait)
        return IngestResult(created, status)

    async def create_document_by_file_and_wait(
        self,
        dataset_id: str,
        file: FileInput,
        *,
        filename: str | None = None,
        **options: Any,
    ) -> IngestResult:
        """Upload a file as a document and wait until Dify has indexed it, in one call.

        `create_document_by_file` then `wait_for_indexing` on the batch it returned.

        Args:
            dataset_id: The knowledge base UUID.
            file: A path, bytes, or a binary file object (as `create_document_by_file`).
            filename: The document name; required for bytes.
            **options: The wait options of `wait_for_indexing` (``timeout``,
                ``stall_timeout``, ``raise_on_error``, ``on_event``, ``progress``, ...); any
                other keyword is a field of the create's ``data`` JSON
                (``indexing_technique``, ``process_rule``, ``doc_form``, ...).

        Returns:
            `IngestResult`: ``(document, status)``.

        Raises:
            IndexingFailedError: Indexing failed (with Dify's text). The same errors as the
                create (``ValueError`` for a bad name or size, before any request) and the wait.
        """
        fields, wait = _wait_options_of(options)
        created = await self.create_document_by_file(dataset_id, file, filename=filename, **fields)
        status = await self.wait_for_indexing(dataset_id, created.batch, **wait)
        return IngestResult(created, status)

    async def upload_files_and_wait(
        self,
        dataset_id: str,
        paths: Iterable[UploadPath],
        *,
        concurrency: int = 4,
        **options: Any,
    ) -> list[IngestResult]:
        """Upload many files (one document each) and wait until all are indexed.

        Every path is checked first (a regular file, within ``max_file_size``, a name Dify
        takes, no two files of one name: Dify's create is an upsert by name, so they would be
        one document): a bad one raises ``ValueError`` before anything is sent. Then the
        files are uploaded, at most ``concurrency`` at a time, and their batches waited on
        together. With ``progress=True`` one bar counts the files indexed.

        If an upload fails, no further upload starts and the first error is raised once the
        uploads in flight end; what was uploaded keeps indexing (`wait_for_pending` waits
        for it).

        Args:
            dataset_id: The knowledge base UUID.
            paths: The files; each document is named after its file.
            concurrency: Uploads in flight at once (1 to 64).
            **options: The wait options of `wait_for_batches` (``timeout`` bounds the wait
                that follows the uploads, ``raise_on_error``, ``on_event``, ``progress``,
                ...); any other keyword is a field of each create's ``data`` JSON.

        Returns:
            One `IngestResult` per path, in input order.

        Raises:
            IndexingFailedError: A document failed (``raise_on_error=True``, the default).
            ValueError: A path is not a regular file, is too large, or two share a name.
        """
        check_int(concurrency, "concurrency", minimum=1, maximum=64)
        fields, wait = _wait_options_of(options)
        if isinstance(paths, (str, os.PathLike)):
            raise TypeError(
                "paths must be a list of paths (one file: create_document_by_file_and_wait)"
            )
        files = [Path(path) for path in paths]
        await asyncio.to_thread(_check_upload_paths, files, self.max_file_size)
        wait_options, on_event, progress = WaitOptions.split(wait)  # type: ignore[arg-type]
        gate = asyncio.Semaphore(concurrency)
        failures: list[BaseException] = []

        with files_progress(len(files), progress) as bar:

            async def upload(path: Path) -> CreatedDocument | None:
                async with gate:
                    if failures:
                        return None
                    try:
                        created = await self.create_document_by_file(dataset_id, path, **fields)
                    except Exception as error:
                        failures.append(error)
                        return None
                if bar is not None:
                    bar.uploaded()
                return created

            uploads = await asyncio.gather(*(upload(path) for path in files))
            if failures:
                raise failures[0]
            created = [c for c in uploads if c is not None]
            callbacks = [c for c in (on_event, bar) if c is not None]
            statuses = await waiting.wait_for_batches(
                self.monitor,
                created,
                wait_options,
                callbacks,
                telemetry=self._transport.telemetry,
                documents_of=self._pending.documents_of,
            )
        return [IngestResult(c, s) for c, s in zip(created, statuses, strict=True)]

    # -- knowledge pipelines --------------------------------------------------------------

    async def run_pipeline(
        self,
        dataset_id: str,
        datasource_type: PipelineDatasource,
        datasource_info_list: Iterable[Mapping[str, Any]],
        *,
        start_node_id: str,
        inputs: Mapping[str, Any] | None = None,
    ) -> PipelineRun:
        """Run a knowledge base's published pipeline (``POST /datasets/{id}/pipeline/run``).

        Dify creates one document per datasource item, all in one new batch, and runs the
        pipeline in its workers: wait on the returned run like on any batch
        (``wait_for_indexing(run.dataset_id, run.batch)``, or ``wait_for_batches([run])``).
        The published version runs (``is_published: true``), answered without streaming
        (``response_mode: "blocking"``): a draft run creates no batch to wait on. Sent once,
        never retried (a retry would create the documents again).

        A pipeline can finish a document ``completed`` with 0 chunks (nothing extracted):
        the wait reports it.

        Args:
            dataset_id: The knowledge base UUID (one created from a knowledge pipeline).
            datasource_type: ``"local_file"``, ``"online_document"``, ``"website_crawl"`` or
                ``"online_drive"``.
            datasource_info_list: The items, shaped per type: ``{"reference": <id from the
                pipeline file upload>, "name": ...}``, ``{"url": ..., "title": ...}``,
                ``{"workspace_id": ..., "page": {...}}``, ``{"id": ..., "type": "file"}``.
            start_node_id: The datasource node to start from (``GET
                /datasets/{id}/pipeline/datasource-plugins`` lists them).
            inputs: The pipeline's input variables (default ``{}``).

        Raises:
            ValueError: A malformed argument (nothing is sent).
            DifyAPIError: As Dify answered: 400 ``invalid_param`` (``Pipeline not found``: the
                knowledge base has no pipeline; or a body Dify refused), 403, 404
                ``Dataset not found.``, 500 ``pipeline_run_error``.
        """
        check_dataset_id(dataset_id)
        body = pipeline_run_body(datasource_type, datasource_info_list, start_node_id, inputs)
        url = self._url("datasets", dataset_id, "pipeline", "run")
        payload = await self._transport.json("POST", url, json_body=body, idempotent=False)
        try:
            return pipeline_run(dataset_id, payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise shape_error(
                f"expected {{'batch': ..., 'documents': [...]}} ({type(exc).__name__})",
                payload,
                url,
                "POST",
            ) from None

    async def _create_fields(
        self,
        dataset_id: str,
        indexing_technique: str | None,
        process_rule: Mapping[str, Any] | None,
        doc_form: str | None,
    ) -> dict[str, Any]:
        # Older servers fail with a 500 when process_rule is missing (contract §d): always send.
        fields: dict[str, Any] = {"process_rule": dict(process_rule or {"mode": "automatic"})}
        technique = indexing_technique or await self._dataset_technique(dataset_id)
        if technique:
            fields["indexing_technique"] = technique
            # A dataset keeps its first technique: remember it for retrieval defaults.
            self._datasets.remember_technique(dataset_id, technique)
        if doc_form:
            fields["doc_form"] = doc_form
        return fields

    async def _create(
        self,
        url: URL,
        *,
        json_body: Any = None,
        form: Callable[[], aiohttp.MultipartWriter] | None = None,
        technique_given: str | None,
    ) -> Any:
        try:
            return await self._transport.json(
                "POST", url, json_body=json_body, form=form, idempotent=self.retry_creates
            )
        except DifyAPIError as error:
            if (
                error.status == 400
                and not technique_given
                and "indexing_technique" in error.message
            ):
                hint = (
                    "This Dify server needs indexing_technique on every create and the dataset's "
                    "own setting could not be read: pass indexing_technique='economy' or "
                    "'high_quality' (the one the knowledge base uses)."
                )
                raise error.with_context(hint=hint) from error
            raise

    def _created(self, dataset_id: str, payload: Any, url: URL) -> CreatedDocument:
        try:
            created = CreatedDocument.from_response(dataset_id, payload)
        except (KeyError, TypeError, ValidationError) as exc:
            raise shape_error(
                f"expected {{'document': {{'id': ...}}, 'batch': ...}} ({type(exc).__name__})",
                payload,
                url,
                "POST",
            ) from None
        self._pending.remember(created)
        # An upsert can rename nothing but can re-index: let the next retrieve ask again.
        self._doc_names.forget(dataset_id, created.document_id)
        return created

    async def _recorded(self, created: CreatedDocument, name: str, digest: str) -> CreatedDocument:
        if self._ledger is not None:
            await self._ledger.record(created, name, digest)
        return created

    def pending_batches(self, dataset_id: str) -> list[BatchRef]:
        """Batches this client created in the dataset and has not yet seen finish.

        A batch is forgotten as soon as any status request of this client (a wait, a check)
        sees it terminal, or when its document is uploaded again under the same name.
        """
        return self._pending.batches(dataset_id)

    async def wait_for_pending(
        self,
        dataset_id: str | None = None,
        *,
        timeout: float = 600.0,
        raise_on_error: bool = False,
        durable: bool | None = None,
        **options: Any,
    ) -> list[BatchIndexingStatus]:
        """Wait for every upload and update that may still be indexing; return the statuses.

        What this client uploaded or updated and has not seen finish, and what the pending
        ledger holds as not done for this server and key — uploads of other processes and of
        earlier runs included — of one dataset, or of every one. So after a restart
        ``await client.wait_for_pending(dataset_id)`` (or without a dataset) picks up where the
        crashed run stopped. A create's batch is waited on; an updated document alone (its
        original batch can hold other documents), as `wait_for_documents` does. What is seen
        terminal is forgotten. Finished entries are marked in the ledger
        (``completed``, or ``error`` with Dify's text); a batch Dify no longer knows
        (``Documents not found.`` after the grace period: deleted, or replaced elsewhere) is
        marked ``missing`` and skipped rather than failing the others.

        Args:
            dataset_id: One knowledge base, or None for every one.
            timeout: Seconds for the whole wait.
            raise_on_error: Raise `IndexingFailedError` for a failed upload (default: return
                its status; the failure was already reported to whoever waited on it).
            durable: Include the ledger (default True). ``durable=False`` waits for this
                client's own uploads only (what the retrievers' readiness gate does).
            **options: Other `wait_for_batches` options.

        Returns:
            The created batches' statuses, then one status per batch holding updated
            documents, reduced to those documents.
        """
        use_ledger = True if durable is None else durable
        datasets = [dataset_id] if dataset_id is not None else self._pending.datasets()
        if not use_ledger or self._ledger is None:
            waits = [
                self._wait_for_own(d, True, timeout, raise_on_error, options) for d in datasets
            ]
            return [s for statuses in await waiting.gather_first_error(waits) for s in statuses]
        own = [ref for d in datasets for ref in self._pending.batches(d)]
        entries = await self._ledger.pending(dataset_id)
        resumed = resume_pending(
            self,
            self._ledger,
            [*own, *(entry.ref for entry in entries)],
            timeout=timeout,
            raise_on_error=raise_on_error,
            **options,
        )
        updates = [self._wait_for_own(d, False, timeout, raise_on_error, options) for d in datasets]
        results = await waiting.gather_first_error([resumed, *updates])
        return [status for statuses in results for status in statuses]

    async def _wait_for_own(
        self,
        dataset_id: str,
        creates: bool,
        timeout: float,
        raise_on_error: bool,
        options: dict[str, Any],
    ) -> list[BatchIndexingStatus]:
        """This client's pending creates (if ``creates``) and updates of one dataset."""
        pending = self.pending_batches(dataset_id) if creates else []

        async def updated(ref: BatchRef, document_ids: list[str]) -> list[BatchIndexingStatus]:
            status = await self.wait_for_documents(
                dataset_id,
                document_ids,
                batch=ref.batch,
                timeout=timeout,
                raise_on_error=raise_on_error,
                **options,
            )
            return [status]

        waits = [updated(ref, ids) for ref, ids in self._pending.updates(dataset_id)]
        if pending:
            batches = self.wait_for_batches(
                pending, timeout=timeout, raise_on_error=raise_on_error, **options
            )
            waits.insert(0, batches)
        results = await waiting.gather_first_error(waits)
        return [status for statuses in results for status in statuses]

    async def _dataset_technique(self, dataset_id: str) -> str | None:
        """The dataset's indexing technique, or None when it is not known.

        ``GET /datasets/{id}`` is not rate limited, but some self-hosted servers fail it
        (400 "Failed to request plugin daemon"); then the create is sent without the field
        and the server decides.
        """
        info = await self._readable_dataset(dataset_id)
        # Else the one this client created the dataset (or its first document) with.
        return self._datasets.known_technique(dataset_id, info) or None

    # -- datasets and documents -----------------------------------------------------------

    async def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        """The knowledge base's settings (``GET /datasets/{id}``), cached per client (concurrent
        first reads share one request)."""
        check_dataset_id(dataset_id)

        async def fetch() -> dict[str, Any]:
            url = self._url("datasets", dataset_id)
            payload = await self._transport.json("GET", url, idempotent=True)
            if not isinstance(payload, dict):
                raise shape_error("expected a dataset object", payload, url, "GET")
            return payload

        return await self._datasets.read(dataset_id, fetch)

    async def get_document(self, dataset_id: str, document_id: str) -> DifyDocument:
        """One document's details, including ``display_status`` (``available`` = retrievable)."""
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        url = self._url("datasets", dataset_id, "documents", document_id)
        payload = await self._transport.json("GET", url, idempotent=True)
        return self._parse(DifyDocument, payload, url, "GET")

    async def list_documents(
        self,
        dataset_id: str,
        *,
        status: str | None = None,
        page: int = 1,
        limit: int = 100,
        keyword: str | None = None,
    ) -> DocumentList:
        """One page of the dataset's documents, newest first.

        Args:
            status: Filter on ``display_status``: ``queuing``, ``indexing``, ``paused``,
                ``error``, ``available``, ``disabled`` or ``archived``.
            page: 1-based page number.
            limit: Page size, 1 to 100 (Dify caps pages at 100).
            keyword: Filter on the document name.
        """
        check_dataset_id(dataset_id)
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100 (Dify caps pages at 100)")
        if page < 1:
            raise ValueError("page must be >= 1")
        return await self._source.list_page(
            dataset_id, page=page, limit=limit, status=status, keyword=keyword
        )

    async def delete_document(self, dataset_id: str, document_id: str) -> None:
        """Delete a document (Dify answers 204; older servers 200 JSON)."""
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        url = self._url("datasets", dataset_id, "documents", document_id)
        self._doc_names.forget(dataset_id, document_id)
        await self._transport.request("DELETE", url, idempotent=False)
        self._pending.forget_document(dataset_id, document_id)  # nothing left to wait for

    # -- knowledge bases: create and delete (bodies and shapes: `_dataset_create`) ------

    async def create_dataset(
        self,
        name: str,
        *,
        indexing_technique: IndexingTechnique = "economy",
        permission: DatasetPermission = "only_me",
        description: str | None = None,
    ) -> dict[str, Any]:
        """Create an empty knowledge base (``POST /datasets``); returns Dify's dataset object.

        Its ``"id"`` is what every other method takes as ``dataset_id``. Sent once, never
        retried: a retry after a lost answer would meet the first one's name
        (``409 dataset_name_duplicate``).

        Args:
            name: Unique within the workspace, 1 to 40 characters.
            indexing_technique: ``"economy"`` (keyword index, works on any workspace) or
                ``"high_quality"`` (vectors: needs a default embedding model).
            permission: ``"only_me"``, ``"all_team_members"`` or ``"partial_members"``.
            description: Shown in Dify's console (up to 400 characters).

        Raises:
            ValueError: For an invalid argument, before anything is sent.
            DifyAPIError: As Dify answered (e.g. 409 for a name already taken).
        """
        body = dataset_body(
            name,
            indexing_technique=indexing_technique,
            permission=permission,
            description=description,
        )
        url = self._url("datasets")
        payload = await self._transport.json("POST", url, json_body=body, idempotent=False)
        created = created_dataset(payload, url, "POST")
        # Retrieval defaults follow the technique even when the detail cannot be read later.
        self._datasets.remember_technique(created["id"], indexing_technique)
        return created

    async def find_dataset(self, name: str) -> dict[str, Any] | None:
        """The knowledge base called exactly ``name`` (``GET /datasets?keyword=``), or None.

        Reads the list pages (not rate limited) and keeps exact matches, case included.

        Raises:
            DifyDatasetNameError: Two or more knowledge bases have this name (their ids are in
                the message and in ``dataset_ids``): nothing is guessed.
            ValueError: A blank name (nothing is sent).
        """
        check_dataset_name(name)
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_DATASET_PAGES + 1):
            url = self._url("datasets").with_query(
                keyword=name, page=str(page), limit=str(DATASET_PAGE)
            )
            payload = await self._transport.json("GET", url, idempotent=True)
            matches, more = named_datasets(payload, name, url)
            found += matches
            if not more:
                break
        if len(found) > 1:
            raise ambiguous_name(name, found)
        return found[0] if found else None

    async def dataset_id_for(
        self,
        name: str,
        *,
        create_if_missing: bool = False,
        indexing_technique: IndexingTechnique = "economy",
        permission: DatasetPermission = "only_me",
        description: str | None = None,
    ) -> str:
        """The id of the knowledge base called ``name``; with ``create_if_missing``, created
        (`create_dataset`, economy unless told otherwise) when there is none.

        Two clients creating one name at once both get the one Dify kept (the loser's
        ``409 dataset_name_duplicate`` is answered by looking the name up again).

        Raises:
            DifyDatasetNameError: No knowledge base has this name (and ``create_if_missing`` is
                False), or two or more have it.
        """
        found = await self.find_dataset(name)
        if found is not None:
            return str(found["id"])
        if not create_if_missing:
            raise missing_name(name)
        try:
            created = await self.create_dataset(
                name,
                indexing_technique=indexing_technique,
                permission=permission,
                description=description,
            )
        except DifyAPIError as error:
            if error.status != 409:
                raise
            again = await self.find_dataset(name)
            if again is None:
                raise
            return str(again["id"])
        return str(created["id"])

    async def delete_dataset(self, dataset_id: str) -> None:
        """Delete a knowledge base and its documents (``DELETE /datasets/{id}``; Dify: 204)."""
        check_dataset_id(dataset_id)
        url = self._url("datasets", dataset_id)
        await self._transport.request("DELETE", url, idempotent=False)
        # Its settings and its documents' names are gone with it.
        self._datasets.forget(dataset_id)
        self._doc_names.forget(dataset_id)

    # -- retrieval ------------------------------------------------------------------------

    async def retrieve(
        self,
        dataset_id: str,
        query: str,
        *,
        top_k: int | None = None,
        score_threshold: float | None = None,
        retrieval_model: Mapping[str, Any] | None = None,
        metadata_filter: Mapping[str, Any] | None = None,
    ) -> list[RetrievedChunk]:
        """Search the knowledge base (``POST /datasets/{id}/retrieve``).

        Only completed segments are searched, so a document that is still indexing can give
        partial results: wait for its batch first.

        Args:
            query: The search text (Dify allows up to 250 characters).
            top_k: Number of hits. Overrides ``retrieval_model``'s value.
            score_threshold: Drop hits scoring below this. Overrides ``retrieval_model``.
            retrieval_model: Dify's retrieval settings (``search_method``, ...). When only
                ``top_k``/``score_threshold`` are given, the dataset's own settings are used
                as the base.
            metadata_filter: Only chunks of documents whose metadata matches: Dify's
                ``metadata_filtering_conditions``, or ``{"field": value}`` /
                ``{"field": {"$gt": 1}}`` / ``{"$or": [...]}`` (see ``_filters``).
        """
        check_dataset_id(dataset_id)
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        resolved = await self._retrieval_model(dataset_id, top_k, score_threshold, retrieval_model)
        try:
            payload = await self._send_retrieve(dataset_id, query, resolved, metadata_filter)
        except DifyAPIError as error:
            # A guessed vector search on a dataset whose settings could not be read: the
            # server has no embedding model for it, so it is an economy dataset (recording 17).
            if not (resolved.guessed and is_missing_embedding_model(error.status, error.message)):
                raise
            self._datasets.remember_technique(dataset_id, "economy")
            resolved = resolved.as_keyword_search()
            payload = await self._send_retrieve(dataset_id, query, resolved, metadata_filter)
        url = self._url("datasets", dataset_id, "retrieve")
        records = payload.get("records") if isinstance(payload, dict) else None
        if not isinstance(records, list):
            raise shape_error("expected {'records': [...]}", payload, url, "POST")
        try:
            chunks = [RetrievedChunk.from_record(record) for record in records]
        except (AttributeError, TypeError, ValidationError) as exc:
            raise shape_error(f"bad record ({type(exc).__name__})", payload, url, "POST") from None
        return await self._named(dataset_id, chunks)

    async def _send_retrieve(
        self,
        dataset_id: str,
        query: str,
        resolved: ResolvedModel,
        metadata_filter: Mapping[str, Any] | None,
    ) -> Any:
        model = resolved.model
        if metadata_filter is not None:
            model = self._with_metadata_filter(model, metadata_filter)
        url = self._url("datasets", dataset_id, "retrieve")
        body = {"query": query, "retrieval_model": model}
        # Retrieval changes nothing server-side, so it is retried like a read.
        return await self._transport.json("POST", url, json_body=body, idempotent=True)

    async def _named(self, dataset_id: str, chunks: list[RetrievedChunk]) -> list[RetrievedChunk]:
        """Fill in the names (and Dify metadata) Dify's retrieve records leave null."""
        unnamed = [
            chunk.document_id
            for chunk in chunks
            if chunk.document_name is None and _looks_like_document_id(chunk.document_id)
        ]
        if not unnamed:
            return chunks
        known = await self._doc_names.resolve(dataset_id, unnamed, _DocumentLookups(self))
        return [_labelled(chunk, known.get(chunk.document_id or "")) for chunk in chunks]

    async def _retrieval_model(
        self,
        dataset_id: str,
        top_k: int | None,
        score_threshold: float | None,
        retrieval_model: Mapping[str, Any] | None,
    ) -> ResolvedModel:
        """The complete ``retrieval_model`` every retrieve sends (the rules: `_retrieval`)."""
        if top_k is not None:
            check_int(top_k, "top_k", minimum=1)
        # Dify's scores (cosine similarity, rerank, weighted) are between 0 and 1.
        check_optional_number(score_threshold, "score_threshold", minimum=0, maximum=1)
        if retrieval_model is not None and not isinstance(retrieval_model, Mapping):
            raise TypeError(
                f"retrieval_model must be a mapping, got {type(retrieval_model).__name__}"
            )
        stored: dict[str, Any] | None = None
        technique: str | None = None
        if needs_dataset_settings(retrieval_model):
            info = await self._readable_dataset(dataset_id)
            model_dict = info.get("retrieval_model_dict")
            stored = model_dict if isinstance(model_dict, dict) else None
            technique = self._datasets.known_technique(dataset_id, info)
        return resolve_retrieval_model(
            retrieval_model,
            dataset_model=stored,
            technique=technique,
            top_k=top_k,
            score_threshold=score_threshold,
        )

    async def _readable_dataset(self, dataset_id: str) -> dict[str, Any]:
        """The dataset's settings, or ``{}`` when a reachable server cannot describe it (08)."""
        try:
            return await self.get_dataset(dataset_id)
        except (DifyAPIError, DifyConnectionError) as error:
            if isinstance(error, DifyAPIError) and error.status in (401, 403, 404):
                raise
            logger.info("could not read dataset %s settings: %s", dataset_id, short(error))
            return {}


# -- helpers ------------------------------------------------------------------------------

_WAIT_KEYS = frozenset(WaitKwargs.__annotations__)


def _wait_options_of(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A one-call ingest's keywords split into ``(create fields, wait options)``."""
    wait = {key: value for key, value in options.items() if key in _WAIT_KEYS}
    fields = {key: value for key, value in options.items() if key not in _WAIT_KEYS}
    WaitOptions.split(wait)  # type: ignore[arg-type]  # refuses a bad option before the create
    return fields, wait


def _check_upload_paths(files: list[Path], limit: int | None) -> None:
    """Refuse, before any upload, what `upload_files_and_wait` could not upload as asked."""
    seen: dict[str, Path] = {}
    for path in files:
        info = os.stat(path)  # FileNotFoundError names the path
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} is not a regular file")
        check_file_name(path.name)
        check_file_size(info.st_size, limit, str(path))
        other = seen.setdefault(path.name, path)
        if other != path:
            raise ValueError(
                f"{other} and {path} would be one document named {path.name!r} (Dify's create "
                "is an upsert by name): upload them separately under distinct names"
            )


class _DocumentLookups:
    """The reads `DocumentNames` looks documents up with: one attempt each, to a deadline."""

    def __init__(self, client: AsyncDifyKnowledgeClient) -> None:
        self._client = client

    def deadline(self, seconds: float) -> float:
        return self._client._clock.monotonic() + seconds

    async def list_page(self, dataset_id: str, page: int, deadline: float) -> DocumentList:
        return await self._client._source.list_page(
            dataset_id, page=page, limit=LIST_PAGE_SIZE, deadline=deadline
        )

    async def detail(self, dataset_id: str, document_id: str, deadline: float) -> DifyDocument:
        client = self._client
        url = client._url("datasets", dataset_id, "documents", document_id)
        payload = await client._transport.json(
            "GET", url, idempotent=True, deadline=deadline, retry=False
        )
        return client._parse(DifyDocument, payload, url, "GET")


def _looks_like_document_id(value: str | None) -> TypeGuard[str]:
    # Only what Dify's document route matches is looked up (a hostile id is left alone).
    try:
        check_document_id(value)
    except ValueError:
        return False
    return True


def _labelled(chunk: RetrievedChunk, info: DocumentInfo | None) -> RetrievedChunk:
    if info is None:
        return chunk
    update: dict[str, Any] = {"document_name": info.name}
    if info.doc_metadata and "doc_metadata" not in chunk.metadata:
        update["metadata"] = {**chunk.metadata, "doc_metadata": dict(info.doc_metadata)}
    return chunk.model_copy(update=update)


async def _load_file(
    file: FileInput, filename: str | None, limit: int | None = None
) -> tuple[bytes, str]:
    """Read the upload into memory with its name; refuse more than ``limit`` bytes."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        if not filename:
            raise ValueError(
                "filename is required when uploading bytes: Dify picks the parser from "
                "its extension (e.g. filename='notes.md')"
            )
        check_file_size(len(file), limit, f"the upload {filename!r}")
        return bytes(file), filename
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        check_file_size((await asyncio.to_thread(path.stat)).st_size, limit, str(path))
        content = await asyncio.to_thread(path.read_bytes)
        return content, filename or path.name
    if hasattr(file, "read"):
        # One byte past the limit is enough to know it is too large.
        size = -1 if limit is None else limit + 1
        content = await asyncio.to_thread(file.read, size)
        if isinstance(content, str):
            raise TypeError("open the file in binary mode ('rb')")
        name = filename or Path(str(getattr(file, "name", "") or "")).name
        if not name:
            raise ValueError("filename is required for a file object without a name")
        if limit is not None and len(content) > limit:
            raise ValueError(
                f"the file object {name!r} holds more than the upload limit of {limit:,} "
                "bytes: Dify would refuse it (413 file_too_large); pass max_file_size= to "
                "the client if the server allows more"
            )
        return bytes(content), name
    raise TypeError(
        f"file must be a path, bytes or a binary file object, got {type(file).__name__}"
    )
