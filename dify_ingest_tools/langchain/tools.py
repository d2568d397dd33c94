"""Agent tools: is an upload indexed yet (`DifyIndexingStatusTool`), and a bounded wait for it
(`DifyWaitForIndexingTool`), plus the base every tool of `DifyKnowledgeToolkit` shares.

Every tool renders one definition of the tool set (`dify_ingest_tools.agent.toolkit`): its name
(prefixed ``dify_``), the description, the argument schema the model sees (the tool set's
JSON schema, key for key) and the validation; the tool set runs the call. So the words are
those of the LlamaIndex tools and the MCP server. Both answer in text an LLM can act on, with
the `BatchIndexingStatus` as the ToolMessage's artifact. A wait that runs out of time, stalls
or ends in a failed document, and a batch or dataset Dify does not know, are answers, not
errors; other Dify API errors (bad key, rate limit, outage) are raised as `ToolException`,
which agents receive as an error ToolMessage (``handle_tool_error=True``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools.base import ArgsSchema
from pydantic import Field, PrivateAttr, SkipValidation, ValidationError, model_validator
from typing_extensions import Self

from dify_ingest_tools.agent.answers import DifyToolError
from dify_ingest_tools.agent.error_answers import arguments_answer
from dify_ingest_tools.agent.tool_defs import DEFAULTS, ToolDefinition
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.langchain._common import DifyConnection, ErrorHandling, WaitSettings
from dify_ingest_tools.langchain.events import arun_with_events, run_with_events
from dify_ingest_tools.readiness.policy import OnPaused

if TYPE_CHECKING:
    from pydantic.v1 import ValidationError as ValidationErrorV1

__all__ = ["PREFIX", "DifyIndexingStatusTool", "DifyWaitForIndexingTool", "validation_answer"]

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

    _definition: ToolDefinition = PrivateAttr()

    def _own_settings(self) -> dict[str, Any]:
        """The settings of the tool set this tool builds when it is given none."""
        return {"dataset_id": self.dataset_id}

    def _adopt(self, toolset: DifyToolset) -> None:
        """Mirror the settings of a tool set given to this tool (for introspection)."""

    @model_validator(mode="after")
    def _define(self) -> Self:
        if self.toolset is None:
            self.toolset = DifyToolset(**self._own_settings())
        elif self.dataset_id is not None and self.dataset_id != self.toolset.dataset_id:
            raise ValueError("dataset_id differs from the toolset's; bind the toolset instead")
        else:
            self._adopt(self.toolset)
        self.dataset_id = self.toolset.dataset_id
        if "handle_validation_error" not in self.model_fields_set:
            self.handle_validation_error = validation_answer
        self._definition = self.toolset.definition(self.tool_name, PREFIX)
        if not self.name:
            self.name = self._definition.name
        if not self.description:
            self.description = self._definition.description
        if self.args_schema is None:
            self.args_schema = self._definition.args_model
        return self

    @property
    def tool_call_schema(self) -> ArgsSchema:
        """What the model sees: the tool set's JSON schema, as the other frameworks show it.

        (LangChain would otherwise rebuild the argument model, losing the allow-list's enum
        and ``additionalProperties: false``.)
        """
        if self.args_schema is not self._definition.args_model:
            return super().tool_call_schema
        return {**self._definition.input_schema, "description": self.description}

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


class DifyIndexingStatusTool(_ToolsetTool):
    """Tells an agent whether an upload to a Dify knowledge base is indexed yet (no waiting).

    The tool set's ``indexing_status`` tool, named ``dify_indexing_status``. The answer names
    the verdict (READY, NOT READY, PAUSED, FAILED), stage counts, segments done/total and each
    failed document with Dify's error; the artifact is the `BatchIndexingStatus`. A status a
    running wait already observed (in this client) is reused, so checking a batch a pipeline
    is waiting on costs no extra request.

    Example:
        >>> tool = DifyIndexingStatusTool(dataset_id="...")  # doctest: +SKIP
        >>> message = tool.invoke(
        ...     {"name": "dify_indexing_status", "args": {"batch": "2025..."},
        ...      "id": "call-1", "type": "tool_call"}
        ... )  # doctest: +SKIP
        >>> message.content, message.artifact.verdict  # doctest: +SKIP
    """

    tool_name: ClassVar[str] = "indexing_status"


class DifyWaitForIndexingTool(WaitSettings, _ToolsetTool):
    """Lets an agent wait, within limits, until an upload to Dify is indexed.

    The tool set's ``wait_for_indexing`` tool, named ``dify_wait_for_indexing``.
    ``timeout_seconds`` comes from the model and is cut to ``max_timeout_seconds``, so a model
    cannot freeze the agent. Running out of time, a stall and a failed (or paused) document
    are answers, with the last status as the artifact: the model can wait again, report, or
    re-upload. A paused document fails the wait at once (``on_paused="fail"``): only Dify's
    console can resume it. While it waits, progress is dispatched as custom events of the
    tool's run (``dify_indexing_progress``, ...; see `DifyIndexingWaiter`), so an agent's
    ``astream_events`` can show it. Given a ``toolset``, the tool takes its settings from it.

    Example:
        >>> tool = DifyWaitForIndexingTool(dataset_id="...", max_timeout_seconds=60)
        ... # doctest: +SKIP
    """

    tool_name: ClassVar[str] = "wait_for_indexing"

    max_timeout_seconds: float = Field(default=DEFAULTS.max_wait_seconds, gt=0)
    """The longest one call may wait, whatever ``timeout_seconds`` the model asks for."""
    default_timeout_seconds: float = Field(default=DEFAULTS.default_wait_seconds, gt=0)
    """The wait when the model gives no ``timeout_seconds`` (at most ``max_timeout_seconds``)."""
    on_paused: OnPaused = "fail"

    def _own_settings(self) -> dict[str, Any]:
        return {
            **super()._own_settings(),
            **self.wait_options(),
            "max_wait_seconds": self.max_timeout_seconds,
            "default_wait_seconds": self.default_timeout_seconds,
        }

    def _adopt(self, toolset: DifyToolset) -> None:
        self.max_timeout_seconds = toolset.max_wait_seconds
        self.default_timeout_seconds = toolset.default_wait_seconds
        for name, value in toolset.wait_options.items():
            setattr(self, name, value)
