"""`UploadsAPI`: create documents from text or files, alone or with the wait (one call).

A mixin of `AsyncDifyKnowledgeClient`: it uses the client's transport, URL builder, monitor
and the registries of what it uploaded (pending, ledger, resubmittable uploads).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import ValidationError
from yarl import URL

from dify_ingest_tools._base.inputs import check_dataset_id, check_int
from dify_ingest_tools._http.answer_errors import shape_error
from dify_ingest_tools._http.multipart import (
    StreamedFile,
    check_document_name,
    check_file_name,
    check_file_size,
    file_form,
)
from dify_ingest_tools.backends.ledger import content_hash
from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.client.upload_files import (
    FileInput,
    UploadPath,
    check_upload_paths,
    load_file,
)
from dify_ingest_tools.errors import DifyAPIError, DifyConnectionError
from dify_ingest_tools.models.created import CreatedDocument, IngestResult
from dify_ingest_tools.readiness import waiting
from dify_ingest_tools.readiness.heal import Upload
from dify_ingest_tools.readiness.progress import files_progress
from dify_ingest_tools.readiness.wait_options import WaitKwargs, WaitOptions


class UploadsAPI(ClientHost):
    """Creating documents: by text, by file, many files, each alone or followed by the wait."""

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
            content, name = await load_file(file, filename, limit)
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
        await asyncio.to_thread(check_upload_paths, files, self.max_file_size)
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


# -- helpers ------------------------------------------------------------------------------

_WAIT_KEYS = frozenset(WaitKwargs.__annotations__)


def _wait_options_of(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A one-call ingest's keywords split into ``(create fields, wait options)``."""
    wait = {key: value for key, value in options.items() if key in _WAIT_KEYS}
    fields = {key: value for key, value in options.items() if key not in _WAIT_KEYS}
    WaitOptions.split(wait)  # type: ignore[arg-type]  # refuses a bad option before the create
    return fields, wait
