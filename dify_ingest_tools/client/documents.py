"""`DocumentsAPI`: updates, document-scoped waits, metadata, segments and status actions.

A mixin of `AsyncDifyKnowledgeClient` (it uses the client's transport, URL builder and
monitor). Shapes follow the recordings of a real Dify 1.14.1, ``recorded/09`` to ``16``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast, get_args

import aiohttp
from pydantic import BaseModel
from typing_extensions import Unpack
from yarl import URL

from dify_ingest_tools._base.filters import metadata_conditions
from dify_ingest_tools._base.inputs import check_batch, check_dataset_id, check_document_id
from dify_ingest_tools._base.pages import PageBound
from dify_ingest_tools.errors import (
    DifyAPIError,
    DifyDocumentNotAvailableError,
    IndexingTimeoutError,
)
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.models.documents import (
    BUILT_IN_METADATA_FIELDS,
    DifySegment,
    DocumentAction,
    MetadataEntry,
    MetadataField,
    MetadataFieldList,
    MetadataType,
    MetadataValue,
    SegmentList,
    UpdatedDocument,
)
from dify_ingest_tools.models.status import (
    BatchIndexingStatus,
    BatchRef,
    CreatedDocument,
    DifyDocument,
)
from dify_ingest_tools.readiness import waiting
from dify_ingest_tools.readiness.document_waits import (
    UNKNOWN_BATCH,
    DetailSource,
    ScopedSource,
    merge_statuses,
)
from dify_ingest_tools.readiness.monitor import IndexingMonitor
from dify_ingest_tools.readiness.progress import wait_callbacks
from dify_ingest_tools.readiness.wait_options import WaitKwargs, WaitOptions
from dify_ingest_tools.readiness.waiting import gather_first_error

if TYPE_CHECKING:
    from dify_ingest_tools._http.lifecycle import Lifecycle
    from dify_ingest_tools._http.retry import RetryPolicy
    from dify_ingest_tools._http.transport import Transport
    from dify_ingest_tools.client.async_client import FileInput
    from dify_ingest_tools.client.doc_names import DocumentNames
    from dify_ingest_tools.client.pending import PendingUploads

__all__ = ["DocumentsAPI"]

_ModelT = TypeVar("_ModelT", bound=BaseModel)

_ACTIONS = get_args(DocumentAction)
_METADATA_TYPES = get_args(MetadataType)
# Dify's segment list serves at most 100 per page; `all_segments` stops after this many pages.
_SEGMENT_PAGE = 100
# Polls while waiting to retry a refused change: it is usually seconds away.
_RETRY_POLL = 0.25
_MAX_SEGMENT_PAGES = 1_000


class DocumentsAPI:
    """Document maintenance: the part of the Knowledge API beyond create, wait and retrieve."""

    if TYPE_CHECKING:
        _transport: Transport
        _doc_names: DocumentNames
        _lifecycle: Lifecycle
        _pending: PendingUploads
        retry_policy: RetryPolicy
        retry_creates: bool

        @property
        def monitor(self) -> IndexingMonitor: ...

        def _url(self, *parts: str) -> URL: ...

        def _parse(self, model: type[_ModelT], payload: Any, url: URL, method: str) -> _ModelT: ...

        async def get_document(self, dataset_id: str, document_id: str) -> DifyDocument: ...

    # -- bookkeeping -------------------------------------------------------------------------

    def document_batch(self, dataset_id: str, document_id: str) -> str | None:
        """The batch this client last saw the document created or updated in, if any."""
        return self._pending.batch_of(dataset_id, document_id)

    # -- updates -----------------------------------------------------------------------------

    async def update_document_by_text(
        self,
        dataset_id: str,
        document_id: str,
        *,
        text: str | None = None,
        name: str | None = None,
        process_rule: Mapping[str, Any] | None = None,
        doc_form: str | None = None,
        doc_language: str | None = None,
        retry_unavailable: bool = False,
        retry_timeout: float = 600.0,
        **extra: Any,
    ) -> UpdatedDocument:
        """Replace a document's text (``POST .../documents/{id}/update-by-text``).

        The document keeps its id and is re-indexed in place; the answer's ``batch`` is its
        *original* batch, which may hold other documents: wait with `wait_for_documents`.

        Args:
            dataset_id: The knowledge base UUID.
            document_id: The document to update.
            text: The new content. Dify requires a name with it: when ``name`` is omitted
                the document's current name is looked up and kept (one extra GET).
            name: A new name (with ``text``, or with ``process_rule`` to rename and re-index).
            process_rule: New chunking rules (otherwise the document's own are kept).
            doc_form: ``text_model``, ``hierarchical_model`` or ``qa_model``.
            doc_language: The document language.
            retry_unavailable: Dify refuses updates while the document is indexing or paused
                (400 "Document is not available"). True waits for the document to finish
                and tries again, within ``retry_timeout``; a disabled, archived or failed
                document is reported at once.
            retry_timeout: Seconds the waits and retries may take.
            **extra: Other body fields (``retrieval_model``, ...).

        Raises:
            ValueError: Nothing to update, or a malformed id (no request is sent).
            DifyDocumentNotAvailableError: The document cannot be updated now.
            DifyNotFoundError: Unknown document (``Document not found``) or dataset.
        """
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        if text is not None and not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError("name must be a non-empty string")
        if text is None and process_rule is None:
            raise ValueError(
                "give text= (new content) or process_rule= (re-chunk the current content): "
                'Dify answers "Data source or Process rule is required" to a rename alone'
            )
        if text is not None and name is None:
            name = (await self.get_document(dataset_id, document_id)).name
        body: dict[str, Any] = dict(extra)
        for key, value in (
            ("name", name),
            ("text", text),
            ("process_rule", dict(process_rule) if process_rule is not None else None),
            ("doc_form", doc_form),
            ("doc_language", doc_language),
        ):
            if value is not None:
                body[key] = value
        url = self._url("datasets", dataset_id, "documents", document_id, "update-by-text")

        async def send() -> Any:
            return await self._transport.json(
                "POST", url, json_body=body, idempotent=self.retry_creates
            )

        payload = await self._retrying(
            send, dataset_id, document_id, retry_unavailable, retry_timeout
        )
        return self._updated(dataset_id, payload, url, "POST")

    async def update_document_by_file(
        self,
        dataset_id: str,
        document_id: str,
        file: FileInput | None = None,
        *,
        filename: str | None = None,
        name: str | None = None,
        process_rule: Mapping[str, Any] | None = None,
        retry_unavailable: bool = False,
        retry_timeout: float = 600.0,
        **data: Any,
    ) -> UpdatedDocument:
        """Replace a document's file (``PATCH /datasets/{id}/documents/{doc}``, multipart).

        Dify 1.14's canonical route; ``update-by-file`` / ``update_by_file`` are deprecated
        aliases. Without ``name`` the document is renamed to the new file's name, as Dify
        does. The answer's ``batch`` is the document's original batch.

        Args:
            dataset_id: The knowledge base UUID.
            document_id: The document to update.
            file: A path, bytes or a binary file object; None re-indexes the current file
                with ``process_rule``.
            filename: The upload's file name (required for bytes; its extension decides the
                parser). Sent as raw UTF-8: Dify does not decode percent-escapes.
            name: Keep (or set) this document name instead of the file's.
            process_rule: New chunking rules.
            retry_unavailable: Wait for an indexing or paused document and try again (see
                `update_document_by_text`).
            retry_timeout: Seconds the waits and retries may take.
            **data: Other fields of the ``data`` JSON (``doc_form``, ``doc_language``, ...).

        Raises:
            ValueError: Neither a file nor a process rule.
            DifyDocumentNotAvailableError: The document cannot be updated now.
            DifyAPIError: 415 ``unsupported_file_type`` for an extension Dify cannot parse.
        """
        from dify_ingest_tools.client.async_client import (
            _load_file,  # the client module imports this one
        )

        check_dataset_id(dataset_id)
        check_document_id(document_id)
        if file is None and process_rule is None:
            raise ValueError(
                "give file= or process_rule=: Dify answers an update with neither "
                '"Data source or Process rule is required"'
            )
        fields: dict[str, Any] = dict(data)
        if name is not None:
            fields["name"] = name
        if process_rule is not None:
            fields["process_rule"] = dict(process_rule)
        upload = await _load_file(file, filename) if file is not None else None
        data_json = json.dumps(fields)

        def form() -> aiohttp.FormData:
            # quote_fields=False: the file name goes out as raw UTF-8 (recording 11);
            # multipart even without a file, as Dify's PATCH reads the form parts.
            built = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
            if upload is not None:
                content, upload_name = upload
                built.add_field("file", content, filename=upload_name)
            built.add_field("data", data_json)
            return built

        url = self._url("datasets", dataset_id, "documents", document_id)

        async def send() -> Any:
            return await self._transport.json("PATCH", url, form=form, idempotent=False)

        payload = await self._retrying(
            send, dataset_id, document_id, retry_unavailable, retry_timeout
        )
        return self._updated(dataset_id, payload, url, "PATCH")

    def _updated(self, dataset_id: str, payload: Any, url: URL, method: str) -> UpdatedDocument:
        from dify_ingest_tools._http.transport import shape_error

        try:
            updated = UpdatedDocument.from_response(dataset_id, payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise shape_error(
                f"expected {{'document': {{'id': ...}}, 'batch': ...}} ({type(exc).__name__})",
                payload,
                url,
                method,
            ) from None
        self._pending.locate(dataset_id, updated.document_id, updated.batch)
        self._doc_names.forget(dataset_id, updated.document_id)  # a rename shows at once
        # Re-indexing: the retrievers' gate waits for this document (not its whole batch).
        self._pending.remember(updated)
        return cast(UpdatedDocument, updated)

    async def _retrying(
        self,
        send: Callable[[], Awaitable[Any]],
        dataset_id: str,
        document_id: str | Sequence[str],
        retry_unavailable: bool,
        retry_timeout: float,
        *,
        needs_available: bool = True,
    ) -> Any:
        """``send()``; on "not available", wait for the document(s) and try again if asked.

        ``needs_available``: the change needs ``display_status == available`` (updates), so
        a disabled, archived or failed document is reported at once. Status changes only
        wait out indexing and the short lock a previous change holds.
        """
        if not retry_unavailable:
            return await send()
        ids = [document_id] if isinstance(document_id, str) else list(document_id)
        clock = self._transport.clock
        deadline = clock.monotonic() + retry_timeout
        pause = 0.2
        while True:
            try:
                return await send()
            except DifyDocumentNotAvailableError as error:
                left = deadline - clock.monotonic()
                if left <= 0:
                    raise
                # Indexing-status polls are cheap and not rate limited; refused updates are.
                try:
                    await self.wait_for_documents(
                        dataset_id,
                        ids,
                        timeout=left,
                        raise_on_error=False,
                        not_found_grace=0,
                        poll_interval=_RETRY_POLL,
                        max_poll_interval=_RETRY_POLL * 8,
                    )
                except IndexingTimeoutError as timeout:
                    hint = f"Still not available after {retry_timeout:g}s. {timeout}"
                    raise error.with_context(hint=hint) from error
                details = await asyncio.gather(*(self.get_document(dataset_id, i) for i in ids))
                for document in details if needs_available else ():
                    if document.display_status not in ("available", "queuing", "indexing"):
                        hint = (
                            f"Document {document.id} is {document.display_status}: waiting "
                            "does not make it available (enable / un-archive it, or fix a "
                            "failed one)."
                        )
                        raise error.with_context(hint=hint) from error
                # A status change holds a short lock after indexing ends (recording 14).
                with self._lifecycle.guard():  # closing the client ends the pause too
                    await clock.sleep(min(pause, max(0.0, deadline - clock.monotonic())))
                pause = min(pause * 2, 5.0)

    # -- document-scoped waits ---------------------------------------------------------------

    async def wait_for_documents(
        self,
        dataset_id: str,
        document_ids: str | CreatedDocument | Iterable[str | CreatedDocument],
        *,
        batch: str | None = None,
        **options: Unpack[WaitKwargs],
    ) -> BatchIndexingStatus:
        """Wait until these documents are ``completed``, whatever else their batch holds.

        Each document is watched through the poll loop of its batch (shared with every
        other wait on that batch), and only its own status decides. The batch is the one
        this client created or updated the document in (or the ``CreatedDocument`` /
        `UpdatedDocument` passed, or ``batch=``); a document this client has never seen is
        watched through its detail instead (one request per document per poll).

        Args:
            dataset_id: The knowledge base UUID.
            document_ids: Document ids, or the results of creates and updates.
            batch: The batch holding all of them, when known.
            **options: The options of `wait_for_indexing` (``timeout``, ``poll_interval``,
                ``stall_timeout``, ``on_event``, ``progress``, ...).

        Returns:
            The status of just these documents, in the order given. ``batch`` is their
            batch (comma-separated when they span several).

        Raises:
            IndexingFailedError: One of them ended in ``error``.
            IndexingTimeoutError: The deadline passed.
            IndexingStalledError: Nothing changed for ``stall_timeout`` seconds.
            DifyNotFoundError: A document was deleted (or moved to a new batch by a
                re-upload under its name).
        """
        check_dataset_id(dataset_id)
        if batch is not None:
            check_batch(batch)
        single = isinstance(document_ids, (str, CreatedDocument))
        items: Iterable[str | CreatedDocument] = [document_ids] if single else document_ids  # type: ignore[list-item,assignment]
        ids: list[str] = []
        for item in items:
            if isinstance(item, CreatedDocument):
                self._pending.locate(dataset_id, item.document_id, item.batch)
                item = item.document_id
            check_document_id(item)
            if item.lower() not in {i.lower() for i in ids}:
                ids.append(item)
        if not ids:
            raise ValueError("document_ids is empty")
        groups: dict[str | None, list[str]] = {}
        for document_id in ids:
            known = batch or self.document_batch(dataset_id, document_id)
            groups.setdefault(known, []).append(document_id)
        wait, on_event, progress = WaitOptions.split(options)
        with wait_callbacks(on_event, progress) as callbacks:
            results = await gather_first_error(
                [
                    self._wait_group(dataset_id, group_batch, members, wait, callbacks)
                    for group_batch, members in groups.items()
                ]
            )
        return merge_statuses(dataset_id, results, ids)

    async def _wait_group(
        self,
        dataset_id: str,
        batch: str | None,
        document_ids: list[str],
        wait: WaitOptions,
        callbacks: list[EventCallback],
    ) -> BatchIndexingStatus:
        source: ScopedSource | DetailSource
        if batch is None:

            async def fetch(document_id: str, deadline: float) -> DifyDocument:
                url = self._url("datasets", dataset_id, "documents", document_id)
                payload = await self._transport.json(
                    "GET", url, idempotent=True, deadline=deadline, retry=False
                )
                return self._parse(DifyDocument, payload, url, "GET")

            self._lifecycle.check()  # no detail request from a closed client
            source = DetailSource(self.monitor, fetch, document_ids)
            batch = UNKNOWN_BATCH
        else:
            source = ScopedSource(self.monitor, document_ids)
        ref = BatchRef(dataset_id=dataset_id, batch=batch)
        # The sources offer `subscribe` exactly as the monitor does; `observe` needs nothing else.
        monitor = cast(IndexingMonitor, source)
        last: BatchIndexingStatus | None = None
        stream = waiting.observe(monitor, ref, wait, callbacks)
        async with contextlib.aclosing(stream):
            async for status in stream:
                last = status
        assert last is not None  # observe yields before it returns
        return last

    # -- metadata ----------------------------------------------------------------------------

    async def list_metadata_fields(self, dataset_id: str) -> MetadataFieldList:
        """The knowledge base's metadata fields (``GET /datasets/{id}/metadata``)."""
        check_dataset_id(dataset_id)
        url = self._url("datasets", dataset_id, "metadata")
        payload = await self._transport.json("GET", url, idempotent=True)
        return self._parse(MetadataFieldList, payload, url, "GET")

    async def create_metadata_field(
        self, dataset_id: str, name: str, type: MetadataType = "string"
    ) -> MetadataField:
        """Create a metadata field (``POST /datasets/{id}/metadata``).

        Raises:
            ValueError: A built-in name (``source``, ``document_name``, ...) or a type other
                than ``string``, ``number`` or ``time``.
            DifyAPIError: 400 "Metadata name already exists." for a taken name.
        """
        check_dataset_id(dataset_id)
        _check_field_name(name)
        if type not in _METADATA_TYPES:
            raise ValueError(f"type must be one of {', '.join(_METADATA_TYPES)}, not {type!r}")
        url = self._url("datasets", dataset_id, "metadata")
        payload = await self._transport.json(
            "POST", url, json_body={"type": type, "name": name}, idempotent=False
        )
        return self._parse(MetadataField, payload, url, "POST")

    async def rename_metadata_field(
        self, dataset_id: str, field_id: str, name: str
    ) -> MetadataField:
        """Rename a field; documents' values follow (``PATCH /datasets/{id}/metadata/{fid}``)."""
        check_dataset_id(dataset_id)
        check_document_id(field_id)
        _check_field_name(name)
        url = self._url("datasets", dataset_id, "metadata", field_id)
        payload = await self._transport.json(
            "PATCH", url, json_body={"name": name}, idempotent=True
        )
        return self._parse(MetadataField, payload, url, "PATCH")

    async def delete_metadata_field(self, dataset_id: str, field_id: str) -> None:
        """Delete a field and its values (Dify answers 204, also for an unknown field)."""
        check_dataset_id(dataset_id)
        check_document_id(field_id)
        url = self._url("datasets", dataset_id, "metadata", field_id)
        await self._transport.request("DELETE", url, idempotent=True)

    async def ensure_metadata_fields(
        self, dataset_id: str, types: Mapping[str, MetadataType]
    ) -> dict[str, MetadataField]:
        """Create the fields that do not exist yet; return every field by name.

        An existing field keeps its type (compare ``.type`` to what you asked for).
        """
        listing = await self.list_metadata_fields(dataset_id)
        fields = {field.name: field for field in listing.fields}
        for name, field_type in types.items():
            if name in fields:
                continue
            try:
                fields[name] = await self.create_metadata_field(dataset_id, name, field_type)
            except DifyAPIError as error:
                if error.status != 400 or "already exists" not in error.message:
                    raise
                # Created meanwhile by someone else: read it back.
                listing = await self.list_metadata_fields(dataset_id)
                found = listing.by_name(name)
                if found is None:
                    raise
                fields[name] = found
        return fields

    async def set_document_metadata(
        self,
        dataset_id: str,
        document_id: str,
        values: Mapping[str, MetadataValue],
        *,
        partial_update: bool = False,
        create_fields: bool = True,
    ) -> None:
        """Set one document's metadata values (see `set_documents_metadata`)."""
        await self.set_documents_metadata(
            dataset_id,
            {document_id: values},
            partial_update=partial_update,
            create_fields=create_fields,
        )

    async def set_documents_metadata(
        self,
        dataset_id: str,
        values: Mapping[str, Mapping[str, MetadataValue]],
        *,
        partial_update: bool = False,
        create_fields: bool = True,
        fields: Mapping[str, MetadataField] | None = None,
    ) -> None:
        """Set metadata values of several documents in one request.

        ``POST /datasets/{id}/documents/metadata``. Fields are addressed by name; missing
        ones are created (``str`` values as ``string`` fields, numbers as ``number``).

        Args:
            dataset_id: The knowledge base UUID.
            values: ``{document_id: {field name: value}}``.
            partial_update: Merge into the document's values; by default (as in Dify) the
                given values replace the document's whole set.
            create_fields: Create missing fields; with False a missing field is a ValueError.
            fields: The dataset's fields by name, when the caller already knows them (saves
                the listing request).

        Raises:
            ValueError: A built-in field name, a boolean or nested value, a value that does
                not fit its field's type, or a missing field with ``create_fields=False``.
            DifyAPIError: 400 "Document not found." for an unknown document.
        """
        check_dataset_id(dataset_id)
        wanted: dict[str, MetadataType] = {}
        for document_id, entries in values.items():
            check_document_id(document_id)
            for name, value in entries.items():
                _check_field_name(name)
                wanted.setdefault(name, _type_of(name, value))
        if not values:
            return
        known: Mapping[str, MetadataField]
        if fields is not None and set(wanted) <= set(fields):
            known = fields
        elif create_fields:
            known = await self.ensure_metadata_fields(dataset_id, wanted)
        else:
            listing = await self.list_metadata_fields(dataset_id)
            known = {field.name: field for field in listing.fields}
        missing = sorted(set(wanted) - set(known))
        if missing:
            raise ValueError(f"no metadata field named {', '.join(missing)} in the dataset")
        operations = []
        for document_id, entries in values.items():
            metadata_list = [
                {
                    "id": known[name].id,
                    "name": name,
                    "value": _fit(name, value, known[name].type),
                }
                for name, value in entries.items()
            ]
            operation: dict[str, Any] = {"document_id": document_id, "metadata_list": metadata_list}
            if partial_update:
                operation["partial_update"] = True
            operations.append(operation)
        url = self._url("datasets", dataset_id, "documents", "metadata")
        await self._transport.json(
            "POST", url, json_body={"operation_data": operations}, idempotent=True
        )
        for document_id in values:
            # Retrieval joins names and metadata from a cache: drop what just changed.
            self._doc_names.forget(dataset_id, document_id)

    async def get_document_metadata(self, dataset_id: str, document_id: str) -> list[MetadataEntry]:
        """A document's metadata entries, built-in ones included (``?metadata=only``).

        Values keep their types here (a number is a number), unlike in list items.
        """
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        url = self._url("datasets", dataset_id, "documents", document_id)
        payload = await self._transport.json(
            "GET", url, params={"metadata": "only"}, idempotent=True
        )
        raw = payload.get("doc_metadata") if isinstance(payload, dict) else None
        return MetadataEntry.parse_list(raw)

    async def list_builtin_metadata_fields(self, dataset_id: str) -> dict[str, str]:
        """Dify's built-in fields as ``{name: type}`` (``GET .../metadata/built-in``)."""
        check_dataset_id(dataset_id)
        url = self._url("datasets", dataset_id, "metadata", "built-in")
        payload = await self._transport.json("GET", url, idempotent=True)
        items = payload.get("fields") if isinstance(payload, dict) else None
        return {
            str(item["name"]): str(item.get("type", "string"))
            for item in items or ()
            if isinstance(item, dict) and "name" in item
        }

    async def set_builtin_metadata(self, dataset_id: str, enabled: bool) -> None:
        """Switch Dify's built-in fields on or off (needed to filter on ``document_name``)."""
        check_dataset_id(dataset_id)
        action = "enable" if enabled else "disable"
        url = self._url("datasets", dataset_id, "metadata", "built-in", action)
        await self._transport.json("POST", url, idempotent=True)

    def _with_metadata_filter(
        self, model: Mapping[str, Any], metadata_filter: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The complete retrieval model, now carrying ``metadata_filtering_conditions``."""
        return {**model, "metadata_filtering_conditions": metadata_conditions(metadata_filter)}

    # -- segments ----------------------------------------------------------------------------

    async def list_segments(
        self,
        dataset_id: str,
        document_id: str,
        *,
        page: int = 1,
        limit: int = 20,
        keyword: str | None = None,
        status: str | Sequence[str] | None = None,
    ) -> SegmentList:
        """One page of a document's segments (chunks), in position order.

        Args:
            page: 1-based page number.
            limit: Page size, 1 to 100.
            keyword: Only segments containing this text (case-insensitive).
            status: Only segments in these states (``waiting``, ``indexing``,
                ``completed``, ``error``, ``re_segment``). Dify answers an unknown value
                with a 500, so it is refused here.
        """
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        if page < 1:
            raise ValueError("page must be >= 1")
        params: list[tuple[str, str]] = [("page", str(page)), ("limit", str(limit))]
        if keyword:
            params.append(("keyword", keyword))
        statuses = [status] if isinstance(status, str) else list(status or ())
        for value in statuses:
            if value not in _SEGMENT_STATUSES:
                raise ValueError(
                    f"segment status {value!r} is not one of {', '.join(_SEGMENT_STATUSES)} "
                    "(Dify answers an unknown one with a 500)"
                )
            params.append(("status", value))
        url = self._url("datasets", dataset_id, "documents", document_id, "segments")
        payload = await self._transport.json("GET", url.with_query(params), idempotent=True)
        return self._parse(SegmentList, payload, url, "GET")

    async def all_segments(
        self,
        dataset_id: str,
        document_id: str,
        *,
        keyword: str | None = None,
        status: str | Sequence[str] | None = None,
    ) -> list[DifySegment]:
        """Every segment of a document, in position order (pages of 100)."""
        segments: list[DifySegment] = []
        bound = PageBound(_MAX_SEGMENT_PAGES)
        for number in range(1, _MAX_SEGMENT_PAGES + 1):
            page = await self.list_segments(
                dataset_id,
                document_id,
                page=number,
                limit=_SEGMENT_PAGE,
                keyword=keyword,
                status=status,
            )
            segments.extend(bound.new_items(page.data[:_SEGMENT_PAGE]))
            # has_more is len(data) == limit, true on a full last page: trust total too.
            if len(page.data) < _SEGMENT_PAGE or not bound.more(page):
                break
        return segments

    async def get_segment(self, dataset_id: str, document_id: str, segment_id: str) -> DifySegment:
        """One segment (``GET .../segments/{segment_id}``)."""
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        check_document_id(segment_id)
        url = self._url("datasets", dataset_id, "documents", document_id, "segments", segment_id)
        payload = await self._transport.json("GET", url, idempotent=True)
        data = payload.get("data") if isinstance(payload, dict) else None
        return self._parse(DifySegment, data, url, "GET")

    # -- enable / disable / archive ----------------------------------------------------------

    async def set_documents_status(
        self,
        dataset_id: str,
        action: DocumentAction,
        document_ids: Iterable[str],
        *,
        retry_unavailable: bool = False,
        retry_timeout: float = 60.0,
    ) -> None:
        """``PATCH /datasets/{id}/documents/status/{action}`` for several documents.

        Disabled and archived documents are not retrieved (Dify removes them from the index
        a moment later, recording 14). Unknown ids are ignored by Dify.

        Args:
            action: ``enable``, ``disable``, ``archive`` or ``un_archive``.
            document_ids: The documents.
            retry_unavailable: Dify refuses a change right after another one ("... is being
                indexed, please try again later", usually for well under a second) and
                disabling a document still indexing. True waits and tries again.
            retry_timeout: Seconds the retries may take.

        Raises:
            DifyDocumentNotAvailableError: Refused (and not retried, or out of time).
        """
        check_dataset_id(dataset_id)
        if action not in _ACTIONS:
            raise ValueError(f"action must be one of {', '.join(_ACTIONS)}, not {action!r}")
        ids = [check_document_id(i) for i in _as_list(document_ids)]
        if not ids:
            return
        url = self._url("datasets", dataset_id, "documents", "status", action)

        async def send() -> Any:
            return await self._transport.json(
                "PATCH", url, json_body={"document_ids": ids}, idempotent=True
            )

        await self._retrying(
            send, dataset_id, ids, retry_unavailable, retry_timeout, needs_available=False
        )

    async def enable_documents(
        self, dataset_id: str, document_ids: Iterable[str], **options: Any
    ) -> None:
        """Enable documents again (see `set_documents_status`)."""
        await self.set_documents_status(dataset_id, "enable", document_ids, **options)

    async def disable_documents(
        self, dataset_id: str, document_ids: Iterable[str], **options: Any
    ) -> None:
        """Disable documents: kept, but no longer retrieved (see `set_documents_status`)."""
        await self.set_documents_status(dataset_id, "disable", document_ids, **options)

    async def archive_documents(
        self, dataset_id: str, document_ids: Iterable[str], **options: Any
    ) -> None:
        """Archive documents: not retrieved, and neither updatable nor deletable until
        un-archived (see `set_documents_status`)."""
        await self.set_documents_status(dataset_id, "archive", document_ids, **options)

    async def unarchive_documents(
        self, dataset_id: str, document_ids: Iterable[str], **options: Any
    ) -> None:
        """Un-archive documents (see `set_documents_status`)."""
        await self.set_documents_status(dataset_id, "un_archive", document_ids, **options)


_SEGMENT_STATUSES = ("waiting", "indexing", "completed", "error", "re_segment")


def _as_list(values: Iterable[str]) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def _check_field_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a metadata field name must be a non-empty string")
    if len(name) > 255:
        raise ValueError("a metadata field name is at most 255 characters")
    if name in BUILT_IN_METADATA_FIELDS:
        raise ValueError(
            f"{name!r} is one of Dify's built-in metadata fields "
            f"({', '.join(sorted(BUILT_IN_METADATA_FIELDS))}) and cannot be created or set"
        )


def _type_of(name: str, value: MetadataValue) -> MetadataType:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
        raise ValueError(
            f"metadata {name!r}: Dify stores strings and numbers only, got {type(value).__name__}"
        )
    return "number" if isinstance(value, (int, float)) else "string"


def _fit(name: str, value: MetadataValue, field_type: str) -> MetadataValue:
    """The value as its field's type wants it."""
    if value is None:
        return None
    if field_type == "number" and isinstance(value, str):
        raise ValueError(f"metadata {name!r} is a number field; got the string {value!r}")
    if field_type in ("string", "time") and not isinstance(value, str):
        return str(value)
    return value
