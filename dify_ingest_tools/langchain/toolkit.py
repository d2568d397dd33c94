"""`DifyKnowledgeToolkit`: the whole agent job (upload → status → wait → search, and a document
list) as LangChain tools over one shared client and one `DifyToolset`.

The upload, search and list tools render the tool set's definitions (`dify_ingest_tools.
toolkit`); status and wait are `DifyIndexingStatusTool` and `DifyWaitForIndexingTool`. Every
tool answers ``(text, artifact)`` (``content_and_artifact``), has a native ``_arun``, and turns
a call it cannot answer into an error ToolMessage (``ToolException`` / a validation error),
so nothing it does ends the agent's loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from langchain_core.tools.base import ArgsSchema
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SkipValidation,
    ValidationError,
    model_validator,
)
from typing_extensions import Self

from .._policy import OnEmpty, OnPaused
from ..client import AsyncDifyKnowledgeClient
from ..events import EventCallback
from ..toolkit import DifyToolError, DifyToolset, arguments_answer
from ._common import DifyConnection, ErrorHandling
from .events import arun_with_events, run_with_events
from .tools import DifyIndexingStatusTool, DifyWaitForIndexingTool

if TYPE_CHECKING:
    from pydantic.v1 import ValidationError as ValidationErrorV1

__all__ = [
    "DifyKnowledgeToolkit",
    "DifyListDocumentsTool",
    "DifySearchTool",
    "DifyUploadTextTool",
]

#: LangChain tool names carry this prefix (the tool set's own names do not).
PREFIX = "dify_"


def validation_answer(error: ValidationError | ValidationErrorV1) -> str:
    """What the model reads when its arguments do not fit the schema (values not echoed)."""
    if isinstance(error, ValidationError):
        return arguments_answer(error)
    return f"Invalid arguments: {error}. Fix them and call the tool again."


class _ToolsetTool(DifyConnection, BaseTool):
    """A tool of the set: name, description and schema from its definition; the toolset runs it.

    Built alone (``api_key`` / ``base_url`` or ``client``, optional ``dataset_id``) it gets a
    toolset of its own; `DifyKnowledgeToolkit` hands all its tools one shared toolset, so the
    search knows what the upload tool sent.
    """

    tool_name: ClassVar[str]

    dataset_id: str | None = None
    """Bind the tool to this knowledge base: the model then never passes ``dataset_id``."""
    toolset: DifyToolset | None = Field(default=None, exclude=True, repr=False)
    """The tool set to run (shared by the toolkit's tools); built from ``dataset_id`` if None."""
    name: str = ""
    description: str = ""
    args_schema: Annotated[ArgsSchema | None, SkipValidation()] = None
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: ErrorHandling = True

    @model_validator(mode="after")
    def _define(self) -> Self:
        if self.toolset is None:
            self.toolset = DifyToolset(dataset_id=self.dataset_id)
        elif self.dataset_id is not None and self.dataset_id != self.toolset.dataset_id:
            raise ValueError("dataset_id differs from the toolset's; bind the toolset instead")
        self.dataset_id = self.toolset.dataset_id
        if "handle_validation_error" not in self.model_fields_set:
            self.handle_validation_error = validation_answer
        definition = self.toolset.definition(self.tool_name, PREFIX)
        if not self.name:
            self.name = definition.name
        if not self.description:
            self.description = definition.description
        if self.args_schema is None:
            self.args_schema = definition.args_model
        return self

    async def _call(
        self, client: AsyncDifyKnowledgeClient, arguments: dict[str, Any], on_event: EventCallback
    ) -> tuple[str, Any]:
        assert self.toolset is not None  # set by the validator
        try:
            result = await self.toolset.run(client, self.tool_name, arguments, on_event=on_event)
        except DifyToolError as error:
            raise ToolException(str(error)) from error
        return result.text, result.artifact

    def _run(
        self, run_manager: CallbackManagerForToolRun | None = None, **arguments: Any
    ) -> tuple[str, Any]:
        return run_with_events(
            self._dify_bridge,
            lambda client, on_event: self._call(client, arguments, on_event),
            run_manager,
        )

    async def _arun(
        self, run_manager: AsyncCallbackManagerForToolRun | None = None, **arguments: Any
    ) -> tuple[str, Any]:
        return await arun_with_events(
            self._dify_bridge,
            lambda client, on_event: self._call(client, arguments, on_event),
            run_manager,
        )


class DifyUploadTextTool(_ToolsetTool):
    """``dify_upload_text``: uploads a text document; answers its document id and ``batch``.

    The artifact is the `CreatedDocument`. With ``wait_seconds`` the model can also wait
    briefly for the indexing (the toolset caps it).
    """

    tool_name: ClassVar[str] = "upload_text"


class DifySearchTool(_ToolsetTool):
    """``dify_search``: retrieves passages (document name, score, segment, content cut to a
    budget), after a bounded wait for the toolset's own pending uploads.

    The artifact is the list of `RetrievedChunk` (full content).
    """

    tool_name: ClassVar[str] = "search"


class DifyListDocumentsTool(_ToolsetTool):
    """``dify_list_documents``: the knowledge base's documents with name, id and status.

    The artifact is the `DocumentList` page.
    """

    tool_name: ClassVar[str] = "list_documents"


class DifyKnowledgeToolkit(DifyConnection, BaseToolkit):
    """Every tool an agent needs to write to and read from a Dify knowledge base.

    Security note: these tools write to the knowledge base (``dify_upload_text`` creates or
    replaces documents by name; it replaces only documents these tools created, unless
    ``allow_replace=True``). Give the agent a Knowledge API key whose workspace it may
    change, bind it to one knowledge base (``dataset_id``) or an allow-list (``datasets``),
    and keep ``max_wait_seconds`` small enough for your agent's own deadline. The key is
    never part of a tool's answer, artifact or error.

    Setup:
        ``pip install "dify-ingest-tools[langchain]"`` and set ``DIFY_API_KEY`` (and
        ``DIFY_API_BASE_URL`` for a self-hosted Dify).

    Instantiate:
        .. code-block:: python

            toolkit = DifyKnowledgeToolkit(dataset_id="...")  # or client=DifyKnowledgeClient(...)

    Tools:
        ``dify_upload_text``, ``dify_indexing_status``, ``dify_wait_for_indexing``,
        ``dify_search``, ``dify_list_documents`` (``toolkit.get_tools()``).

    Use within an agent:
        .. code-block:: python

            from langgraph.prebuilt import create_react_agent

            agent = create_react_agent(model, toolkit.get_tools())
    """

    dataset_id: str | None = None
    """Bind every tool to this knowledge base (the model never passes ``dataset_id``)."""
    datasets: list[str] | None = None
    """When not bound: the only knowledge bases the model may name (an enum in the schemas)."""
    max_wait_seconds: float = Field(default=120.0, gt=0)
    """The longest ``dify_wait_for_indexing`` call, whatever the model asks for."""
    max_upload_wait_seconds: float = Field(default=30.0, gt=0)
    """The longest wait ``dify_upload_text`` may add (its ``wait_seconds``)."""
    search_wait_seconds: float = Field(default=30.0, ge=0)
    """How long ``dify_search`` waits for uploads made through this toolkit."""
    top_k: int = 4
    """Passages per search unless the model asks for more (up to ``max_top_k``)."""
    max_top_k: int = 10
    hit_chars: int = 800
    """Characters of one passage in a search answer (the artifact keeps the full text)."""
    answer_chars: int = 4000
    """Characters of all passages of one search answer together."""
    indexing_technique: str | None = None
    """Sent with every upload (None: the knowledge base's own setting)."""
    poll_interval: float = 1.0
    max_poll_interval: float = 5.0
    stall_timeout: float | None = None
    """Answer "stalled" when nothing changes for this long while waiting (None: off)."""
    not_found_grace: float = 10.0
    """Seconds a just-uploaded batch may be unknown to Dify before a wait answers so."""
    on_paused: OnPaused = "fail"
    """``"fail"``: a paused document is answered at once (only Dify's console resumes it)."""
    on_empty: OnEmpty = "raise"
    """A document indexed with 0 chunks is answered EMPTY; ``"warn"`` also logs it."""
    summaries: bool = False
    """Waits also wait for the documents' summaries (datasets with summary indexing)."""
    allow_replace: bool = False
    """Let ``dify_upload_text`` replace a document of the same name these tools did not create
    (by default that upload is refused with an error message naming the document)."""

    _toolset: DifyToolset = PrivateAttr()

    @model_validator(mode="after")
    def _build_toolset(self) -> Self:
        self._toolset = DifyToolset(
            dataset_id=self.dataset_id,
            datasets=self.datasets,
            max_wait_seconds=self.max_wait_seconds,
            max_upload_wait_seconds=self.max_upload_wait_seconds,
            search_wait_seconds=self.search_wait_seconds,
            top_k=self.top_k,
            max_top_k=self.max_top_k,
            hit_chars=self.hit_chars,
            answer_chars=self.answer_chars,
            indexing_technique=self.indexing_technique,
            on_paused=self.on_paused,
            allow_replace=self.allow_replace,
            **self._wait_settings(),
        )
        return self

    @property
    def toolset(self) -> DifyToolset:
        """The framework-free tool set behind these tools."""
        return self._toolset

    def get_tools(self) -> list[BaseTool]:
        """The five tools, sharing this toolkit's client and tool set."""
        shared: dict[str, Any] = {"client": self.client, "toolset": self._toolset}
        checks = self._dataset_checks()
        return [
            DifyUploadTextTool(**shared),
            DifyIndexingStatusTool(
                client=self.client, dataset_id=self.dataset_id, **checks("indexing_status")
            ),
            DifyWaitForIndexingTool(
                client=self.client,
                dataset_id=self.dataset_id,
                max_timeout_seconds=self.max_wait_seconds,
                on_paused=self.on_paused,
                **self._wait_settings(),
                **checks("wait_for_indexing"),
            ),
            DifySearchTool(**shared),
            DifyListDocumentsTool(**shared),
        ]

    def _wait_settings(self) -> dict[str, Any]:
        """How every wait of the toolkit polls (the tool set's and the wait tool's alike)."""
        return {
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "stall_timeout": self.stall_timeout,
            "not_found_grace": self.not_found_grace,
            "on_empty": self.on_empty,
            "summaries": self.summaries,
        }

    def _dataset_checks(self) -> Callable[[str], dict[str, Any]]:
        """For the status and wait tools: the allow-list, through the tool set's schemas."""

        def checks(name: str) -> dict[str, Any]:
            if not self.datasets or self.dataset_id is not None:
                return {}
            schema: type[BaseModel] = self._toolset.definition(name).args_model
            return {"args_schema": schema, "handle_validation_error": validation_answer}

        return checks
