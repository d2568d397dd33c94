"""`DifyToolset`: the agent's whole job (upload → status → wait → search, and a document list),
defined once, with no agent framework.

An adapter renders these definitions in its framework's shape and delivers the same words:
`dify_ingest_tools.langchain.DifyKnowledgeToolkit`, `dify_ingest_tools.llama_index.
DifyKnowledgeToolSpec` and the MCP server (``dify-ingest mcp``). What the model can act on is
an answer (a batch or dataset Dify does not know, a wait that ran out of time, a failed or
paused document); what it cannot fix by calling again differently is a `DifyToolError`
(bad arguments, a dataset outside the allow-list, a key Dify rejects, Dify unreachable).
Neither ever contains the API key.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from dify_ingest_tools.agent.answers import Answer, DifyToolError, tool_error_answer
from dify_ingest_tools.agent.error_answers import answer_error, arguments_answer
from dify_ingest_tools.agent.tool_answers import (
    documents_answer,
    fit_answer,
    name_shown,
    search_answer,
    upload_answer,
)
from dify_ingest_tools.agent.tool_calls import check_batch, wait_for_batch
from dify_ingest_tools.agent.tool_defs import ToolDefinition, ToolsetSettings, settings_error
from dify_ingest_tools.agent.tool_ownership import check_replace, mark_owned
from dify_ingest_tools.agent.tool_results import (
    ToolResult,
    answered_result,
    indexing_data,
    indexing_result,
    settled,
)
from dify_ingest_tools.agent.tool_schemas import (
    OUTPUT_MODELS,
    TOOL_NAMES,
    DocumentListOutput,
    SearchOutput,
    UploadOutput,
    argument_models,
    descriptions,
)
from dify_ingest_tools.agent.tool_search import document_names, settle_pending
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.pending import PendingScope, PendingView
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.models.created import CreatedDocument
from dify_ingest_tools.models.documents import MetadataField

logger = logging.getLogger("dify_ingest_tools")

_PAGE_SIZE = 20


class DifyToolset:
    """The five agent tools over one Dify client: definitions, execution and answers.

    Adapters hold one toolset per agent: it remembers what its ``upload_text`` sent, so
    ``search`` first waits (bounded) for those uploads to be indexed.

    Args:
        settings: The settings (`ToolsetSettings`), or give them as keywords instead.
        **options: The `ToolsetSettings` fields, by name: ``dataset_id`` (bind every tool
            to one knowledge base) or ``datasets`` (an allow-list), ``max_wait_seconds``,
            ``default_wait_seconds``, ``max_upload_wait_seconds``, ``search_wait_seconds``,
            ``top_k`` / ``max_top_k``, ``hit_chars``, ``answer_chars``,
            ``indexing_technique``, ``poll_interval`` / ``max_poll_interval`` /
            ``stall_timeout`` / ``not_found_grace`` (how waits poll), ``on_paused``
            (``"fail"``, the default, answers PAUSED at once, since only Dify's console can
            resume a paused document), ``on_empty`` (a document indexed with no chunks is
            answered EMPTY whatever this says; ``"warn"`` also logs it), ``summaries`` (waits
            also wait for the documents' summaries) and ``allow_replace`` (let
            ``upload_text`` replace a document of the same name these tools did not create;
            by default such an upload is refused with a tool error naming the document,
            which stays untouched; what the tools upload carries the owner tag
            ``dify-ingest-toolkit``, so any tool set, in any process, may replace it).

    Raises:
        ValueError: For a malformed dataset id, an unknown setting or a bound out of range.
    """

    def __init__(self, settings: ToolsetSettings | None = None, /, **options: Any) -> None:
        if settings is None:
            try:
                settings = ToolsetSettings(**options)
            except ValidationError as error:
                raise settings_error(error) from None
        elif options:
            raise TypeError("pass settings or keyword settings, not both")
        self.settings = settings
        self.dataset_id = settings.dataset_id
        self.datasets = settings.datasets
        self.max_wait_seconds = settings.max_wait_seconds
        self.default_wait_seconds = min(settings.default_wait_seconds, self.max_wait_seconds)
        self.max_upload_wait_seconds = settings.max_upload_wait_seconds
        self.search_wait_seconds = settings.search_wait_seconds
        self.top_k, self.max_top_k = settings.top_k, settings.max_top_k
        self.hit_chars, self.answer_chars = settings.hit_chars, settings.answer_chars
        self.indexing_technique = settings.indexing_technique
        self.allow_replace = settings.allow_replace
        poll_interval = settings.poll_interval
        self.wait_options: dict[str, Any] = {
            "poll_interval": poll_interval,
            "max_poll_interval": max(poll_interval, settings.max_poll_interval),
            "stall_timeout": settings.stall_timeout,
            "not_found_grace": settings.not_found_grace,
            "on_paused": settings.on_paused,
            "on_empty": settings.on_empty,
            "on_stall": settings.on_stall,
            "summaries": settings.summaries,
        }
        self._arguments = argument_models(
            bound=self.dataset_id is not None,
            datasets=self.datasets,
            max_wait_seconds=self.max_wait_seconds,
            default_wait_seconds=self.default_wait_seconds,
            max_upload_wait_seconds=self.max_upload_wait_seconds,
            default_top_k=self.top_k,
            max_top_k=self.max_top_k,
            allow_replace=self.allow_replace,
        )
        # Its uploads not yet seen finished live in the client's pending registry, under this
        # scope (`client.pending`); the registry forgets them by its one rule.
        self._scope = PendingScope("toolset")
        # dataset (lower case) -> document id -> (name, latest batch): names for hits and lists.
        self._uploads: dict[str, dict[str, tuple[str, str | None]]] = {}
        # dataset (lower case) -> ids of documents upload_text created, and the owner field.
        self._created: dict[str, set[str]] = {}
        self._owner_field: dict[str, dict[str, MetadataField]] = {}

    def fresh(self) -> DifyToolset:
        """A toolset with the same settings and no memory of uploads: one per conversation.

        What ``upload_text`` remembers (and ``search`` then waits for) belongs to the agent
        that uploaded; a server that serves many agents (the MCP server: one per session)
        gives each its own.
        """
        clone = copy.copy(self)
        clone._scope, clone._uploads = PendingScope("toolset"), {}
        return clone

    def __repr__(self) -> str:
        if self.dataset_id:
            return f"{type(self).__name__}(dataset_id={self.dataset_id!r})"
        return f"{type(self).__name__}(datasets={self.datasets!r})"

    # -- what the model sees -------------------------------------------------------------------

    def definitions(self, prefix: str = "") -> list[ToolDefinition]:
        """The five tools, named ``prefix + name`` (LangChain uses ``"dify_"``)."""
        texts = descriptions(
            prefix,
            bound_to=self.dataset_id,
            max_wait_seconds=self.max_wait_seconds,
            search_wait_seconds=self.search_wait_seconds,
        )
        return [
            ToolDefinition(
                name=prefix + name,
                base_name=name,
                description=texts[name],
                args_model=self._arguments[name],
                output_model=OUTPUT_MODELS[name],
            )
            for name in TOOL_NAMES
        ]

    def definition(self, name: str, prefix: str = "") -> ToolDefinition:
        """One tool's definition, by its base name."""
        for definition in self.definitions(prefix):
            if definition.base_name == name:
                return definition
        raise KeyError(f"no tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")

    # -- running a call ------------------------------------------------------------------------

    async def run(
        self,
        client: AsyncDifyKnowledgeClient,
        name: str,
        arguments: Mapping[str, Any],
        *,
        on_event: EventCallback | None = None,
    ) -> ToolResult:
        """Run one tool call on ``client`` (on the loop the client lives on).

        Args:
            client: The client to talk to Dify through.
            name: A base tool name (see `TOOL_NAMES`).
            arguments: The model's arguments, validated here against the tool's schema.
            on_event: Receives the `IndexingEvent`s of any wait the call makes.

        Raises:
            DifyToolError: The call cannot be answered (its message says why, for the model).
        """
        handlers = {
            "upload_text": self._upload_text,
            "indexing_status": self._indexing_status,
            "wait_for_indexing": self._wait_for_indexing,
            "search": self._search,
            "list_documents": self._list_documents,
        }
        handler = handlers.get(name)
        if handler is None:
            known = ", ".join(TOOL_NAMES)
            raise DifyToolError(f"There is no tool {name!r}; the tools are {known}.")
        try:
            args = self._arguments[name].model_validate(dict(arguments))
        except ValidationError as error:
            raise DifyToolError(arguments_answer(error)) from None
        dataset_id = self.dataset_id or str(getattr(args, "dataset_id", ""))
        batch = getattr(args, "batch", None)
        try:
            result = await handler(client, dataset_id, args, on_event)
        except DifyToolError:
            raise
        except (DifyError, ValueError) as error:
            answer = settled(answer_error(error, dataset_id=dataset_id, batch=batch))
            result = answered_result(name, answer, dataset_id, args)
        except Exception as error:
            # A bug here must not crash the agent's loop; the trace goes to the log only.
            logger.exception("tool %s failed unexpectedly", name)
            text = (
                f"The {name} tool failed unexpectedly ({type(error).__name__}); this is not "
                "something to retry: tell the user."
            )
            raise DifyToolError(tool_error_answer(text, "error", error=error)) from error
        # Whatever Dify sent, the model gets an answer of the usual size.
        text, data = fit_answer(result.text, result.data, self.answer_chars)
        return ToolResult(text, data, result.artifact)

    # -- the tools ----------------------------------------------------------------------------

    async def _upload_text(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, args: Any, on_event: Any
    ) -> ToolResult:
        if not self.allow_replace:
            ours = self._created.get(dataset_id.lower(), set())
            await check_replace(client, dataset_id, args.name, ours)
        created = await client.create_document_by_text(
            dataset_id, args.name, args.text, indexing_technique=self.indexing_technique
        )
        self._remember(client, created)
        self._created.setdefault(dataset_id.lower(), set()).add(created.document_id)
        await mark_owned(client, dataset_id, created.document_id, self._owner_field)
        indexing: str | None = None
        outcome, status = "uploaded", None
        if args.wait_seconds > 0:
            answer = await self._wait(
                client,
                dataset_id,
                created.batch,
                args.wait_seconds,
                self.max_upload_wait_seconds,
                on_event,
            )
            if answer.outcome == "not_found":
                # Not visible yet even after the grace period: the upload itself succeeded.
                indexing = "Dify does not show its batch yet; check the batch again shortly."
            else:
                indexing, outcome, status = answer.text, answer.outcome, answer.status
        text = upload_answer(created, indexing)
        data = UploadOutput(
            answer=text,
            outcome=outcome,
            document_id=created.document_id,
            name=name_shown(created.name or args.name),
            **indexing_data(dataset_id, created.batch, status),
        )
        return ToolResult(text, data.model_dump(mode="json"), created)

    async def _indexing_status(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, args: Any, on_event: Any
    ) -> ToolResult:
        # Reuses the snapshot of a wait already polling this batch, when it is fresh.
        answer = settled(await check_batch(client, dataset_id, args.batch))
        if answer.status is not None:
            self._pending(client).seen(answer.status)
        return indexing_result(answer, dataset_id, args.batch)

    async def _wait_for_indexing(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, args: Any, on_event: Any
    ) -> ToolResult:
        answer = await self._wait(
            client, dataset_id, args.batch, args.timeout_seconds, self.max_wait_seconds, on_event
        )
        return indexing_result(answer, dataset_id, args.batch)

    async def _search(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, args: Any, on_event: Any
    ) -> ToolResult:
        notes, still = await settle_pending(
            client,
            self._pending(client),
            dataset_id,
            wait_seconds=self.search_wait_seconds,
            wait_options=self.wait_options,
            on_event=on_event,
        )
        top_k = min(args.top_k, self.max_top_k)
        chunks = await client.retrieve(dataset_id, args.query, top_k=top_k)
        chunks = chunks[:top_k]
        known = self._uploads.setdefault(dataset_id.lower(), {})
        names = await document_names(client, dataset_id, known, chunks)
        text, hits = search_answer(
            dataset_id,
            args.query,
            chunks,
            names,
            notes=notes,
            hit_chars=self.hit_chars,
            answer_chars=self.answer_chars,
        )
        data = SearchOutput(
            answer=text,
            outcome="found" if hits else "nothing_found",
            dataset_id=dataset_id,
            query=args.query,
            hits=hits,
            still_indexing=still,
        )
        return ToolResult(text, data.model_dump(mode="json"), chunks)

    async def _list_documents(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, args: Any, on_event: Any
    ) -> ToolResult:
        listing = await client.list_documents(
            dataset_id, status=args.status, page=args.page, limit=_PAGE_SIZE, keyword=args.keyword
        )
        known = self._uploads.setdefault(dataset_id.lower(), {})
        page = listing.data[:_PAGE_SIZE]  # a server that ignores ``limit`` gets no more room
        for doc in page:
            name, batch = known.get(doc.id, (doc.name, None))
            known[doc.id] = (doc.name or name, batch)
        text, documents = documents_answer(
            dataset_id,
            page,
            known,
            page=args.page,
            page_size=_PAGE_SIZE,
            total=listing.total,
            has_more=listing.has_more,
            answer_chars=self.answer_chars,
        )
        data = DocumentListOutput(
            answer=text,
            outcome="listed" if documents else "empty",
            dataset_id=dataset_id,
            page=args.page,
            total=listing.total,
            has_more=listing.has_more,
            documents=documents,
        )
        return ToolResult(text, data.model_dump(mode="json"), listing)

    # -- shared steps ---------------------------------------------------------------------------

    async def _wait(
        self,
        client: AsyncDifyKnowledgeClient,
        dataset_id: str,
        batch: str,
        requested: float,
        cap: float,
        on_event: EventCallback | None,
    ) -> Answer:
        """A bounded wait; every way it ends is an answer, except the tool errors it raises."""
        answer = await wait_for_batch(
            client,
            dataset_id,
            batch,
            timeout=min(requested, cap),
            asked=requested,
            on_event=on_event,
            **self.wait_options,
        )
        if answer.status is not None:
            self._pending(client).seen(answer.status)
        return settled(answer)

    def _pending(self, client: AsyncDifyKnowledgeClient) -> PendingView:
        """This tool set's view of the client's pending registry."""
        return client._pending.view(self._scope)

    def _remember(self, client: AsyncDifyKnowledgeClient, created: CreatedDocument) -> None:
        # Same name again (an upsert): the registry forgets the old batch, which now
        # answers "Documents not found.".
        self._pending(client).remember(created)
        uploads = self._uploads.setdefault(created.dataset_id.lower(), {})
        uploads[created.document_id] = (created.name, created.batch)
