"""Agent tools: is an upload indexed yet (`DifyIndexingStatusTool`), and a bounded wait for it
(`DifyWaitForIndexingTool`).

Both answer in text an LLM can act on, with the `BatchIndexingStatus` as the ToolMessage's
artifact. A wait that runs out of time, stalls or ends in a failed document, and a batch or
dataset Dify does not know, are answers, not errors; other Dify API errors (bad key, rate
limit, outage) are raised as `ToolException`, which agents receive as an error ToolMessage
(``handle_tool_error=True``). The words are those of the toolkit's other tools, the LlamaIndex
tools and the MCP server (``dify_ingest_tools.answers``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools.base import ArgsSchema
from pydantic import BaseModel, Field, SkipValidation, field_validator, model_validator
from typing_extensions import Self

from .._inputs import check_dataset_id
from .._policy import OnPaused
from .._tool_calls import check_batch, target_dataset, wait_for_batch
from ..answers import Answer
from ..client import AsyncDifyKnowledgeClient
from ..events import EventCallback
from ..models import BatchIndexingStatus
from ._common import DifyConnection, ErrorHandling, WaitSettings, tool_exception
from .events import arun_with_events, run_with_events

__all__ = [
    "BatchStatusInput",
    "BatchWaitInput",
    "DatasetBatchStatusInput",
    "DatasetBatchWaitInput",
    "DifyIndexingStatusTool",
    "DifyWaitForIndexingTool",
]

ToolAnswer = tuple[str, BatchIndexingStatus | None]
"""``(answer for the model, status artifact)``."""

_DATASET_ID = "The id (a UUID) of the Dify knowledge base (dataset) the documents were uploaded to."
_BATCH = (
    "The `batch` string Dify returned when the documents were uploaded (usually 20 digits, "
    "e.g. '20250612093011123456'). Copy it exactly; it identifies one upload."
)
_DEFAULT_WAIT = 30.0
_TIMEOUT = (
    "The longest to wait, in seconds, before answering with the progress so far (omitted: "
    f"{_DEFAULT_WAIT:g} s). Values above this tool's limit are reduced to it. Small documents "
    "take a few seconds, large ones minutes; waiting does not make Dify faster."
)


class BatchStatusInput(BaseModel):
    """Arguments of `DifyIndexingStatusTool` when the tool is bound to a dataset."""

    batch: str = Field(description=_BATCH)


class DatasetBatchStatusInput(BaseModel):
    """Arguments of `DifyIndexingStatusTool`."""

    dataset_id: str = Field(description=_DATASET_ID)
    batch: str = Field(description=_BATCH)


class BatchWaitInput(BaseModel):
    """Arguments of `DifyWaitForIndexingTool` when the tool is bound to a dataset."""

    batch: str = Field(description=_BATCH)
    timeout_seconds: float | None = Field(default=None, gt=0, description=_TIMEOUT)


class DatasetBatchWaitInput(BaseModel):
    """Arguments of `DifyWaitForIndexingTool`."""

    dataset_id: str = Field(description=_DATASET_ID)
    batch: str = Field(description=_BATCH)
    timeout_seconds: float | None = Field(default=None, gt=0, description=_TIMEOUT)


_STATUS_DESCRIPTION = (
    "Check, without waiting, whether documents uploaded to a Dify knowledge base are indexed "
    "and searchable yet. Give the upload's `batch`{dataset}. Answers READY (search now), NOT "
    "READY (with how many documents are in each stage and segments indexed so far), PAUSED, "
    "or FAILED (naming each failed document with Dify's error). Use it before searching "
    "content that was just uploaded."
)

_WAIT_DESCRIPTION = (
    "Wait until documents uploaded to a Dify knowledge base are indexed, for at most "
    "`timeout_seconds` (this tool's limit is {limit:g} s). Give the upload's `batch`{dataset}. "
    "Answers READY when they can be searched; if time runs out it answers with the progress "
    "so far (Dify keeps indexing: wait again later); if a document fails or is paused it "
    "says which one and Dify's error. Use it when new content must be searchable before "
    "you answer."
)


def _rendered(answer: Answer) -> ToolAnswer:
    """The answer as this tool's output; tool errors become a `ToolException` (with
    ``handle_tool_error=True``, the agent's error ToolMessage carries the same text)."""
    if answer.is_error:
        raise ToolException(answer.text) from answer.error
    return answer.text, answer.status


def _dataset_hint(dataset_id: str | None) -> str:
    return "" if dataset_id is not None else " and the knowledge base's `dataset_id`"


class _DifyTool(DifyConnection, BaseTool):
    """What both tools share: an optional bound dataset and answers as artifacts."""

    dataset_id: str | None = None
    """Bind the tool to this knowledge base: the model then only passes ``batch``."""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: ErrorHandling = True

    @field_validator("dataset_id")
    @classmethod
    def _check_dataset_id(cls, value: str | None) -> str | None:
        return None if value is None else check_dataset_id(value)

    def _target(self, dataset_id: str | None) -> str:
        try:
            return target_dataset(self.dataset_id, dataset_id)
        except ValueError as error:
            raise tool_exception(error, dataset_id=dataset_id, batch=None) from error


class DifyIndexingStatusTool(_DifyTool):
    """Tells an agent whether an upload to a Dify knowledge base is indexed yet (no waiting).

    The answer names the verdict (READY, NOT READY, PAUSED, FAILED), stage counts, segments
    done/total and each failed document with Dify's error; the artifact is the
    `BatchIndexingStatus`. A status a running wait already observed (in this client) is
    reused, so checking a batch a pipeline is waiting on costs no extra request.

    Example:
        >>> tool = DifyIndexingStatusTool(dataset_id="...")  # doctest: +SKIP
        >>> message = tool.invoke(
        ...     {"name": "dify_indexing_status", "args": {"batch": "2025..."},
        ...      "id": "call-1", "type": "tool_call"}
        ... )  # doctest: +SKIP
        >>> message.content, message.artifact.verdict  # doctest: +SKIP
    """

    name: str = "dify_indexing_status"
    description: str = _STATUS_DESCRIPTION.format(dataset=_dataset_hint(None))
    args_schema: Annotated[ArgsSchema | None, SkipValidation()] = DatasetBatchStatusInput

    @model_validator(mode="after")
    def _bind(self) -> Self:
        if self.dataset_id is not None:
            if "args_schema" not in self.model_fields_set:
                self.args_schema = BatchStatusInput
            if "description" not in self.model_fields_set:
                self.description = _STATUS_DESCRIPTION.format(dataset="")
        return self

    async def _check(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str, batch: str
    ) -> ToolAnswer:
        return _rendered(await check_batch(client, dataset_id, batch))

    def _run(
        self,
        batch: str,
        dataset_id: str | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> ToolAnswer:
        target = self._target(dataset_id)
        return self._dify_bridge.call(lambda client: self._check(client, target, batch))

    async def _arun(
        self,
        batch: str,
        dataset_id: str | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> ToolAnswer:
        target = self._target(dataset_id)
        return await self._dify_bridge.acall(lambda client: self._check(client, target, batch))


class DifyWaitForIndexingTool(WaitSettings, _DifyTool):
    """Lets an agent wait, within limits, until an upload to Dify is indexed.

    ``timeout_seconds`` comes from the model and is cut to ``max_timeout_seconds``, so a model
    cannot freeze the agent. Running out of time, a stall and a failed (or paused) document
    are answers, with the last status as the artifact: the model can wait again, report, or
    re-upload. A paused document fails the wait at once (``on_paused="fail"``): only Dify's
    console can resume it. While it waits, progress is dispatched as custom events of the
    tool's run (``dify_indexing_progress``, ...; see `DifyIndexingWaiter`), so an agent's
    ``astream_events`` can show it.

    Example:
        >>> tool = DifyWaitForIndexingTool(dataset_id="...", max_timeout_seconds=60)
        ... # doctest: +SKIP
    """

    name: str = "dify_wait_for_indexing"
    description: str = _WAIT_DESCRIPTION.format(limit=120.0, dataset=_dataset_hint(None))
    args_schema: Annotated[ArgsSchema | None, SkipValidation()] = DatasetBatchWaitInput
    max_timeout_seconds: float = Field(default=120.0, gt=0)
    """The longest one call may wait, whatever ``timeout_seconds`` the model asks for."""
    on_paused: OnPaused = "fail"

    @model_validator(mode="after")
    def _bind(self) -> Self:
        if self.dataset_id is not None and "args_schema" not in self.model_fields_set:
            self.args_schema = BatchWaitInput
        if "description" not in self.model_fields_set:
            self.description = _WAIT_DESCRIPTION.format(
                limit=self.max_timeout_seconds, dataset=_dataset_hint(self.dataset_id)
            )
        return self

    async def _wait(
        self,
        client: AsyncDifyKnowledgeClient,
        dataset_id: str,
        batch: str,
        timeout_seconds: float | None,
        on_event: EventCallback,
    ) -> ToolAnswer:
        # Omitted, the default applies within the cap, with no "at most" note: the model did
        # not ask for more (the other frameworks' wait tools say the same).
        wanted = _DEFAULT_WAIT if timeout_seconds is None else timeout_seconds
        limit = min(wanted, self.max_timeout_seconds)
        answer = await wait_for_batch(
            client,
            dataset_id,
            batch,
            timeout=limit,
            asked=timeout_seconds,
            on_event=on_event,
            **self.wait_options(),
        )
        return _rendered(answer)

    def _run(
        self,
        batch: str,
        dataset_id: str | None = None,
        timeout_seconds: float | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> ToolAnswer:
        target = self._target(dataset_id)
        return run_with_events(
            self._dify_bridge,
            lambda client, on_event: self._wait(client, target, batch, timeout_seconds, on_event),
            run_manager,
        )

    async def _arun(
        self,
        batch: str,
        dataset_id: str | None = None,
        timeout_seconds: float | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> ToolAnswer:
        target = self._target(dataset_id)
        return await arun_with_events(
            self._dify_bridge,
            lambda client, on_event: self._wait(client, target, batch, timeout_seconds, on_event),
            run_manager,
        )
