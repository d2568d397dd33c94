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

import asyncio
import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from dify_ingest_tools._base.shown import ID_LIMIT, shown
from dify_ingest_tools.agent.answers import (
    Answer,
    DifyToolError,
    answer_error,
    failure_answer,
    status_answer,
    tool_error_answer,
)
from dify_ingest_tools.agent.store import find_named
from dify_ingest_tools.agent.tool_answers import (
    documents_answer,
    fit_answer,
    name_shown,
    replace_refused_answer,
    search_answer,
    upload_answer,
)
from dify_ingest_tools.agent.tool_calls import check_batch, wait_for_batch
from dify_ingest_tools.agent.tool_defs import ToolDefinition, ToolsetSettings, settings_error
from dify_ingest_tools.agent.tool_schemas import (
    OUTPUT_MODELS,
    TOOL_NAMES,
    DocumentListOutput,
    DocumentOutput,
    IndexingOutput,
    SearchOutput,
    UploadOutput,
    argument_models,
    descriptions,
)
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.pending import PendingScope, PendingView
from dify_ingest_tools.errors import (
    DifyDocumentConflictError,
    DifyError,
    DifyNotFoundError,
    IndexingEmptyError,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.models.created import BatchRef, CreatedDocument
from dify_ingest_tools.models.documents import MetadataField
from dify_ingest_tools.models.ownership import OWNER_FIELD, Mark
from dify_ingest_tools.models.retrieval import RetrievedChunk
from dify_ingest_tools.models.status import BatchIndexingStatus

__all__ = [
    "TOOL_NAMES",
    "DifyToolError",
    "DifyToolset",
    "ToolDefinition",
    "ToolResult",
    "ToolsetSettings",
]

logger = logging.getLogger("dify_ingest_tools")

_PAGE_SIZE = 20
#: The owner tag (`OWNER_FIELD`) on every document ``upload_text`` writes: what the tool set
#: may replace without ``allow_replace``, in any process.
TOOLSET_OWNER = "dify-ingest-toolkit"
# A search waits on at most this many of the toolset's pending batches (the newest): each wait
# polls its own batch, and 201 pending uploads once made one search send 1,105 status requests.
# The rest are named in a note, unchecked.
_SEARCH_WAIT_BATCHES = 5
# Batches a note names one by one; beyond that it gives their number.
_NOTE_BATCHES = 5
# Documents of a batch listed in a status result (a hostile batch may hold 10,000), and the
# characters of each one's error there (the answer's text names the failures too).
_DOCUMENTS_SHOWN = 20
_DOCUMENT_ERROR_CHARS = 200


@dataclass(frozen=True)
class ToolResult:
    """What a call answered.

    Attributes:
        text: The answer for the model, identical in every framework.
        data: The same as JSON-ready structured data (``outcome`` says what happened).
        artifact: The typed object behind it: a `CreatedDocument`, a `BatchIndexingStatus`
            (or None), a list of `RetrievedChunk`, or a `DocumentList`.
    """

    text: str
    data: dict[str, Any]
    artifact: Any

    @property
    def outcome(self) -> str:
        return str(self.data.get("outcome", ""))


def _indexing_data(
    dataset_id: str, batch: str, status: BatchIndexingStatus | None
) -> dict[str, Any]:
    if status is None:
        return {"dataset_id": dataset_id, "batch": batch}
    return {
        "dataset_id": dataset_id,
        "batch": batch,
        "progress": status.progress,
        "completed_segments": status.completed_segments,
        "total_segments": status.total_segments,
        "documents": [
            DocumentOutput(
                id=shown(doc.id, ID_LIMIT),
                indexing_status=shown(str(doc.indexing_status), ID_LIMIT),
                completed_segments=doc.completed_segments,
                total_segments=doc.total_segments,
                error=(shown(doc.error, _DOCUMENT_ERROR_CHARS) or None) if doc.is_failed else None,
            )
            for doc in status.documents[:_DOCUMENTS_SHOWN]
        ],
    }


def _settled(answer: Answer) -> Answer:
    """The answer, or the tool error it is."""
    if answer.is_error:
        raise DifyToolError(answer) from answer.error
    return answer


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
        # scope (`_pending`); the registry forgets them by its one rule.
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
            answer = _settled(answer_error(error, dataset_id=dataset_id, batch=batch))
            result = self._answered(name, answer, dataset_id, args)
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
            await self._check_replace(client, dataset_id, args.name)
        created = await client.create_document_by_text(
            dataset_id, args.name, args.text, indexing_technique=self.indexing_technique
        )
        self._remember(client, created)
        self._created.setdefault(dataset_id.lower(), set()).add(created.document_id)
        await self._mark(client, dataset_id, created.document_id)
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
            **_indexing_data(dataset_id, created.batch, status),
        )
        return ToolResult(text, data.model_dump(mode="json"), created)

    async def _check_replace(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, name: str
    ) -> None:
        """Refuse (a tool error) when ``name`` is a document these tools did not create.

        Create is an upsert by name in Dify: without this, an upload would replace whatever
        document holds the name.
        """
        existing = await find_named(client, dataset_id, name)
        if existing is None:
            return
        ours = self._created.get(dataset_id.lower(), set())
        if existing.id in ours or Mark.of(existing).owner == TOOLSET_OWNER:
            return
        text = replace_refused_answer(dataset_id, name, existing.id)
        conflict = DifyDocumentConflictError(
            text, dataset_id=dataset_id, document_id=existing.id, name=name
        )
        raise DifyToolError(
            tool_error_answer(text, "invalid", dataset_id=dataset_id, error=conflict)
        ) from conflict

    async def _mark(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, document_id: str
    ) -> None:
        """Tag an upload as the tool set's (merged into its metadata: others' fields stay)."""
        key = dataset_id.lower()
        try:
            fields = self._owner_field.get(key)
            if fields is None:
                fields = await client.ensure_metadata_fields(dataset_id, {OWNER_FIELD: "string"})
                self._owner_field[key] = {OWNER_FIELD: fields[OWNER_FIELD]}
            await client.set_documents_metadata(
                dataset_id,
                {document_id: Mark(owner=TOOLSET_OWNER).values()},
                partial_update=True,
                create_fields=False,
                fields=self._owner_field[key],
            )
        except (DifyError, ValueError) as error:
            # The upload itself succeeded and is answered as such; this tool set still knows
            # the document is its own, other processes will see it as someone else's.
            logger.warning(
                "could not tag document %s of %s as uploaded by the agent tools: %s",
                document_id,
                dataset_id,
                error,
            )

    async def _indexing_status(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, args: Any, on_event: Any
    ) -> ToolResult:
        # Reuses the snapshot of a wait already polling this batch, when it is fresh.
        answer = _settled(await check_batch(client, dataset_id, args.batch))
        if answer.status is not None:
            self._pending(client).seen(answer.status)
        return self._indexing_result(answer, dataset_id, args.batch)

    async def _wait_for_indexing(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, args: Any, on_event: Any
    ) -> ToolResult:
        answer = await self._wait(
            client, dataset_id, args.batch, args.timeout_seconds, self.max_wait_seconds, on_event
        )
        return self._indexing_result(answer, dataset_id, args.batch)

    async def _search(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, args: Any, on_event: Any
    ) -> ToolResult:
        notes, still = await self._settle_pending(client, dataset_id, on_event)
        top_k = min(args.top_k, self.max_top_k)
        chunks = await client.retrieve(dataset_id, args.query, top_k=top_k)
        chunks = chunks[:top_k]
        names = await self._names(client, dataset_id, chunks)
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
        return _settled(answer)

    def _indexing_result(self, answer: Answer, dataset_id: str, batch: str) -> ToolResult:
        dataset = answer.status.dataset_id if answer.status is not None else dataset_id
        fields = _indexing_data(dataset, batch, answer.status)
        data = IndexingOutput(answer=answer.text, outcome=answer.outcome, **fields)
        return ToolResult(answer.text, data.model_dump(mode="json"), answer.status)

    def _answered(self, name: str, answer: Answer, dataset_id: str, args: Any) -> ToolResult:
        """An answer to a call that raised, in the tool's own result shape: a dataset or
        batch Dify does not know (the model can fix the id it passed)."""
        common = {"answer": answer.text, "outcome": answer.outcome, "dataset_id": dataset_id}
        data: BaseModel
        if name == "search":
            data = SearchOutput(**common, query=args.query)
        elif name == "list_documents":
            data = DocumentListOutput(**common, page=args.page, total=0, has_more=False)
        elif name == "upload_text":
            data = UploadOutput(**common, name=args.name)
        else:
            data = IndexingOutput(**common, batch=args.batch)
        return ToolResult(answer.text, data.model_dump(mode="json"), None)

    def _pending(self, client: AsyncDifyKnowledgeClient) -> PendingView:
        """This tool set's view of the client's pending registry."""
        return client._pending.view(self._scope)

    def _remember(self, client: AsyncDifyKnowledgeClient, created: CreatedDocument) -> None:
        # Same name again (an upsert): the registry forgets the old batch, which now
        # answers "Documents not found.".
        self._pending(client).remember(created)
        uploads = self._uploads.setdefault(created.dataset_id.lower(), {})
        uploads[created.document_id] = (created.name, created.batch)

    async def _settle_pending(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, on_event: EventCallback | None
    ) -> tuple[list[str], list[str]]:
        """Wait (bounded) for this toolset's uploads to the dataset; notes on what is missing."""
        view = self._pending(client)
        pending = view.batches(dataset_id)
        if not pending:
            return [], []
        unchecked = pending[:-_SEARCH_WAIT_BATCHES]
        pending = pending[-_SEARCH_WAIT_BATCHES:]
        notes = [_unchecked_note(unchecked)] if unchecked else []
        if self.search_wait_seconds == 0:
            batches = [ref.batch for ref in pending]
            note = (
                f"Note: {len(pending)} upload(s) made through these tools may still be indexing "
                f"(batch {', '.join(batches)}); their content may be missing from these results."
            )
            return [*notes, note], batches

        async def settle(ref: BatchRef) -> tuple[str | None, bool]:
            try:
                status = await client.wait_for_indexing(
                    ref.dataset_id,
                    ref.batch,
                    timeout=self.search_wait_seconds,
                    raise_on_error=False,
                    on_event=on_event,
                    **self.wait_options,
                )
            except (IndexingTimeoutError, IndexingStalledError):
                return (
                    f"Note: batch {ref.batch}, uploaded through these tools, was still indexing "
                    f"after {self.search_wait_seconds:g} s; its content may be missing or "
                    "partial in these results."
                ), True
            except IndexingFailedError as error:  # paused, with on_paused="fail"
                return f"Note: {failure_answer(error)}", True
            except IndexingEmptyError as error:  # indexed, nothing to find: not still indexing
                if error.last_status is not None:
                    view.seen(error.last_status)
                    return f"Note: {status_answer(error.last_status)}", False
                return None, False
            except DifyNotFoundError:
                # Deleted since (or replaced by a newer upload of the same name).
                view.forget_batch(ref)
                return None, False
            except DifyError:
                return None, True  # the search itself will say what is wrong with Dify
            view.seen(status)
            if status.is_failed or status.is_empty:
                return f"Note: {status_answer(status)}", False
            return None, False

        settled = await asyncio.gather(*(settle(ref) for ref in pending))
        notes += [note for note, _ in settled if note]
        still = [ref.batch for ref, (_, waiting) in zip(pending, settled, strict=True) if waiting]
        return notes, still

    async def _names(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, chunks: list[RetrievedChunk]
    ) -> dict[str, str]:
        """Document names for hits that lack one (keyword search returns none, recording 06)."""
        known = self._uploads.setdefault(dataset_id.lower(), {})
        missing = {
            chunk.document_id
            for chunk in chunks
            if not chunk.document_name and chunk.document_id and chunk.document_id not in known
        }
        if missing:
            try:
                listing = await client.list_documents(dataset_id, limit=100)
            except DifyError as error:
                logger.info("could not read document names of %s: %s", dataset_id, error)
            else:
                for doc in listing.data:
                    if doc.name:
                        known.setdefault(doc.id, (doc.name, None))
        return {doc_id: name for doc_id, (name, _) in known.items() if name}


def _unchecked_note(refs: list[BatchRef]) -> str:
    named = ", ".join(ref.batch for ref in refs[-_NOTE_BATCHES:])
    more = f" and {len(refs) - _NOTE_BATCHES} more" if len(refs) > _NOTE_BATCHES else ""
    return (
        f"Note: {len(refs)} older upload(s) made through these tools were not checked before "
        f"this search (batch {named}{more}); if any is still indexing, its content may be "
        "missing. indexing_status tells about one batch."
    )


def arguments_answer(error: ValidationError) -> str:
    """What the model reads when its arguments do not fit a tool's schema (in every
    framework: LangChain validates them itself, with this text)."""
    return f"Invalid arguments: {_problems(error)}. Fix them and call the tool again."


def _problems(error: ValidationError) -> str:
    """Pydantic's errors as one line a model can act on (no input values echoed back)."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "arguments"
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
