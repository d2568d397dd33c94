"""`DocumentsAPI`: one document read, listed, updated, deleted; several enabled or archived.

A mixin of `AsyncDifyKnowledgeClient` (it uses the client's transport, URL builder, clock
and retry policy). Shapes follow the recordings of a real Dify 1.14.1, ``recorded/09`` to
``16``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast, get_args

import aiohttp
from yarl import URL

from dify_ingest_tools._base.inputs import check_dataset_id, check_document_id
from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.client.upload_files import FileInput, load_file
from dify_ingest_tools.errors import (
    DifyDocumentNotAvailableError,
    IndexingTimeoutError,
)
from dify_ingest_tools.models.documents import (
    DifyDocument,
    DocumentAction,
    DocumentList,
    UpdatedDocument,
)

if TYPE_CHECKING:
    pass


_ACTIONS = get_args(DocumentAction)
# Polls while waiting to retry a refused change: it is usually seconds away.
_RETRY_POLL = 0.25


class DocumentsAPI(ClientHost):
    """Document maintenance: the part of the Knowledge API beyond create, wait and retrieve."""

    # -- reads and delete --------------------------------------------------------------------

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
        upload = await load_file(file, filename) if file is not None else None
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
        from dify_ingest_tools._http.answer_errors import shape_error

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
        clock = self._clock
        deadline = clock.monotonic() + retry_timeout
        retry = 0
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
                # A status change holds a short lock after indexing ends (recording 14): back off
                # as the client's retry policy does, on the client's clock.
                with self._lifecycle.guard():  # closing the client ends the pause too
                    pause = self.retry_policy.backoff(retry)
                    await clock.sleep(min(pause, max(0.0, deadline - clock.monotonic())))
                retry += 1

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


def _as_list(values: Iterable[str]) -> list[str]:
    return [values] if isinstance(values, str) else list(values)
