"""`DifyIndexingToolSpec`: lets an agent check, or wait for, Dify's indexing of an upload.

Both tools answer in one paragraph the model can act on, word for word the text of the
LangChain tools, the toolkit and the MCP server (``dify_ingest_tools.answers``). A ready,
working, paused or failed batch, a wait that runs out of time, a stall and a batch or
dataset Dify does not know are answers, not errors. Everything else (a wrong key, a rate
limit, Dify unreachable, a malformed id) raises, as LlamaIndex tools do: `DifyToolError` for
Dify's errors, ``ValueError`` for invalid arguments, each with the answer's text as its
message (Dify's status, code and message, and what to do next; never the key or the server's
URL). LlamaIndex's agents turn the exception into a tool output with ``is_error=True`` and
that message as its content.
"""

from __future__ import annotations

import asyncio
from typing import NoReturn

from llama_index.core.tools import FunctionTool, ToolMetadata
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from pydantic import BaseModel, Field, SecretStr

from .._inputs import check_dataset_id
from .._policy import OnEmpty, OnPaused
from .._tool_calls import check_batch, target_dataset, wait_for_batch
from ..answers import Answer, DifyToolError, answer_error
from ..client import AsyncDifyKnowledgeClient
from ..errors import DifyError
from ..waiting import WaitOptions
from ._common import AnyClient, EventRelay, HoldsClient, Work, connect

__all__ = ["DifyIndexingToolSpec", "DifyToolError"]


def _raise(answer: Answer) -> NoReturn:
    if isinstance(answer.error, DifyError):
        raise DifyToolError(answer) from answer.error
    raise ValueError(answer.text) from answer.error


def _rendered(answer: Answer) -> str:
    if answer.is_error:
        _raise(answer)
    return answer.text


# A wait shorter than this cannot see a first status on a slow server.
_MIN_TIMEOUT = 1.0


_BATCH = (
    "The batch id Dify returned when the documents were uploaded (the `batch` field of the "
    "upload result, e.g. '20250101123456789012')."
)
_DATASET = "The id (a UUID) of the Dify knowledge base the documents were uploaded to."


class _BatchArgs(BaseModel):
    batch: str = Field(description=_BATCH)


class _DatasetBatchArgs(BaseModel):
    dataset_id: str = Field(description=_DATASET)
    batch: str = Field(description=_BATCH)


_TIMEOUT_DESCRIPTION = (
    "How many seconds to wait at most (the tool caps it; see its description). Omit it for "
    "the default."
)


class _WaitArgs(_DatasetBatchArgs):
    timeout_seconds: float | None = Field(default=None, description=_TIMEOUT_DESCRIPTION)


class _BoundWaitArgs(_BatchArgs):
    timeout_seconds: float | None = Field(default=None, description=_TIMEOUT_DESCRIPTION)


_STATUS_DOC = (
    "Check, without waiting, whether documents uploaded to a Dify knowledge base{where} are "
    "indexed and searchable yet. Use it after an upload and before answering from the new "
    "documents. Returns one paragraph: READY (retrieval will find them), NOT READY yet (with "
    "how many documents and segments are done), PAUSED, or FAILED with each failed document "
    "and Dify's error text."
)
_WAIT_DOC = (
    "Wait until the documents of an upload batch in a Dify knowledge base{where} are indexed "
    "and searchable, for at most timeout_seconds (default {default:g} s, never more than "
    "{cap:g} s). Returns READY when they can be retrieved. If time runs out it says how far "
    "indexing got: Dify keeps working, so call it again later. If a document failed it names "
    "the document and Dify's error. Prefer this to repeated status checks."
)


class DifyIndexingToolSpec(HoldsClient, BaseToolSpec):
    """Agent tools over Dify's indexing status: ``get_indexing_status`` and ``wait_for_indexing``.

    ``to_tool_list()`` gives one `FunctionTool` per function, each with a blocking and a
    native async implementation (``tool.call(...)`` / ``await tool.acall(...)``); both run on
    the client's event loop, sharing its session and poll loops.

    Args:
        api_key: A Knowledge API key (default: ``DIFY_API_KEY``); never in a tool output.
        base_url: The API root ending in ``/v1`` (default: ``DIFY_API_BASE_URL``).
        client: A `DifyKnowledgeClient` (sync and async tools) or an
            `AsyncDifyKnowledgeClient` (async tools only) instead of ``api_key``.
        dataset_id: Bind the tools to one knowledge base: the model then only sees ``batch``
            (and ``timeout_seconds``).
        max_timeout_seconds: The longest wait a model may ask for, so it cannot freeze the
            agent.
        default_timeout_seconds: The wait when the model gives no ``timeout_seconds``.
        poll_interval: First gap between status polls while waiting.
        max_poll_interval: Longest gap between polls.
        stall_timeout: Answer "stalled" when nothing changes for this long (None: off).
        not_found_grace: Seconds a just-created batch may be unknown to Dify before the wait
            answers that Dify does not know it.
        on_paused: ``"fail"`` (default): a paused document ends the wait at once with a
            PAUSED answer (only Dify's console can resume it); ``"wait"`` waits on.
        on_empty: A document indexed with 0 chunks is answered EMPTY ("indexed, but produced
            no chunks — nothing will be found"); ``"warn"`` also logs it.
        summaries: Waits also wait for the documents' summaries (summary indexing datasets).
    """

    spec_functions: list[SPEC_FUNCTION_TYPE] = [  # noqa: RUF012 (BaseToolSpec's declaration)
        ("get_indexing_status", "aget_indexing_status"),
        ("wait_for_indexing", "await_for_indexing"),
    ]

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        client: AnyClient | None = None,
        dataset_id: str | None = None,
        max_timeout_seconds: float = 300.0,
        default_timeout_seconds: float = 60.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        stall_timeout: float | None = None,
        not_found_grace: float = 10.0,
        on_paused: OnPaused = "fail",
        on_empty: OnEmpty = "raise",
        summaries: bool = False,
    ) -> None:
        if max_timeout_seconds <= 0:
            raise ValueError("max_timeout_seconds must be > 0")
        self.dataset_id = check_dataset_id(dataset_id) if dataset_id is not None else None
        self.max_timeout_seconds = float(max_timeout_seconds)
        self.default_timeout_seconds = self._timeout(default_timeout_seconds)
        self.poll_interval = poll_interval
        self.max_poll_interval = max(poll_interval, max_poll_interval)
        self.stall_timeout = stall_timeout
        self.not_found_grace = not_found_grace
        self.on_paused: OnPaused = on_paused
        WaitOptions(on_empty=on_empty, summaries=summaries)  # bad values fail here
        self.on_empty: OnEmpty = on_empty
        self.summaries = summaries
        self._bridge, self._owns_client = connect(client, api_key, base_url)

    def __repr__(self) -> str:
        bound = f", dataset_id={self.dataset_id!r}" if self.dataset_id else ""
        return f"{type(self).__name__}(client={self.client!r}{bound})"

    # -- what the model sees -----------------------------------------------------------------

    def to_tool_list(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """The tools, with names, descriptions and argument schemas written for the model.

        With a pre-bound ``dataset_id`` the schemas have no ``dataset_id`` argument.
        """
        mapping = {**self._metadata(), **(func_to_metadata_mapping or {})}
        return super().to_tool_list(spec_functions, mapping)

    def _metadata(self) -> dict[str, ToolMetadata]:
        bound = self.dataset_id is not None
        where = f" (knowledge base {self.dataset_id})" if bound else ""
        dataset = "" if bound else "dataset_id: str, "
        return {
            "get_indexing_status": ToolMetadata(
                name="get_indexing_status",
                description=f"get_indexing_status({dataset}batch: str) -> str\n"
                + _STATUS_DOC.format(where=where),
                fn_schema=_BatchArgs if bound else _DatasetBatchArgs,
            ),
            "wait_for_indexing": ToolMetadata(
                name="wait_for_indexing",
                description=(
                    f"wait_for_indexing({dataset}batch: str, timeout_seconds: float | None = "
                    "None) -> str\n"
                    + _WAIT_DOC.format(
                        where=where,
                        default=self.default_timeout_seconds,
                        cap=self.max_timeout_seconds,
                    )
                ),
                fn_schema=_BoundWaitArgs if bound else _WaitArgs,
            ),
        }

    # -- the tools -----------------------------------------------------------------------------

    def get_indexing_status(self, batch: str, *, dataset_id: str | None = None) -> str:
        """Whether the batch is indexed yet, without waiting (one paragraph for the model)."""
        return self._bridge.call(self._status(self._dataset(dataset_id), batch))

    async def aget_indexing_status(self, batch: str, *, dataset_id: str | None = None) -> str:
        """Async `get_indexing_status`."""
        return await self._bridge.acall(self._status(self._dataset(dataset_id), batch))

    def wait_for_indexing(
        self, batch: str, timeout_seconds: float | None = None, *, dataset_id: str | None = None
    ) -> str:
        """Wait (bounded) until the batch is indexed; a timeout or a failure is an answer."""
        work = self._wait(self._dataset(dataset_id), batch, timeout_seconds, EventRelay(None))
        return self._bridge.call(work)

    async def await_for_indexing(
        self, batch: str, timeout_seconds: float | None = None, *, dataset_id: str | None = None
    ) -> str:
        """Async `wait_for_indexing`."""
        relay = EventRelay(asyncio.get_running_loop())
        work = self._wait(self._dataset(dataset_id), batch, timeout_seconds, relay)
        return await self._bridge.acall(work)

    # -- one implementation for both -------------------------------------------------------------

    def _dataset(self, dataset_id: str | None) -> str:
        try:
            return target_dataset(self.dataset_id, dataset_id)
        except ValueError as error:
            _raise(answer_error(error, dataset_id=dataset_id))

    def _timeout(self, requested: float | None) -> float:
        """The wait to make: the default, or what the model asked, within the bounds."""
        if requested is None:
            return self.default_timeout_seconds
        floor = min(_MIN_TIMEOUT, self.max_timeout_seconds)
        return min(self.max_timeout_seconds, max(floor, float(requested)))

    def _status(self, dataset_id: str, batch: str) -> Work[str]:
        async def work(client: AsyncDifyKnowledgeClient) -> str:
            # Reuses the snapshot of a wait already polling this batch when it is fresh.
            return _rendered(await check_batch(client, dataset_id, batch))

        return work

    def _wait(
        self, dataset_id: str, batch: str, requested: float | None, relay: EventRelay
    ) -> Work[str]:
        timeout = self._timeout(requested)

        async def work(client: AsyncDifyKnowledgeClient) -> str:
            answer = await wait_for_batch(
                client,
                dataset_id,
                batch,
                timeout=timeout,
                asked=requested,
                on_event=relay,
                on_paused=self.on_paused,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                stall_timeout=self.stall_timeout,
                not_found_grace=self.not_found_grace,
                on_empty=self.on_empty,
                summaries=self.summaries,
            )
            return _rendered(answer)

        return work
