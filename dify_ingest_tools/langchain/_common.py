"""What every LangChain component shares: how it gets a client, wait settings, tool errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from langchain_core.tools import ToolException
from langchain_core.tools.base import ToolExceptionHandlerOutput
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from typing_extensions import Self

from dify_ingest_tools._base.config import ENV_API_KEY
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.bridge import ClientBridge, DifyKnowledgeClient, unpicklable
from dify_ingest_tools.readiness.heal import OnStall
from dify_ingest_tools.readiness.policy import OnEmpty, OnPaused
from dify_ingest_tools.readiness.wait_options import WaitOptions

__all__ = ["AnyDifyClient", "DifyConnection", "ErrorHandling", "WaitSettings"]

AnyDifyClient: TypeAlias = AsyncDifyKnowledgeClient | DifyKnowledgeClient
# BaseTool's own annotation of `handle_tool_error`, whose default the tools change to True.
ErrorHandling: TypeAlias = bool | str | Callable[[ToolException], ToolExceptionHandlerOutput] | None


class DifyConnection(BaseModel):
    """The connection fields of every component: a client, or the key and URL to build one.

    Built from ``api_key`` / ``base_url`` (or ``DIFY_API_KEY`` / ``DIFY_API_BASE_URL``), a
    component owns a `DifyKnowledgeClient`, usable from sync and async code alike; it is
    closed when the component is garbage collected. Pass ``client=`` to share one client
    between components: the retriever's readiness gate only knows about uploads made through
    the same client.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    api_key: SecretStr | None = Field(default=None, exclude=True)
    """The Knowledge API key (``dataset-...``); defaults to ``DIFY_API_KEY``. Never serialized."""
    base_url: str | None = None
    """The API root ending in ``/v1``; defaults to ``DIFY_API_BASE_URL``, else Dify Cloud."""
    client: AnyDifyClient | None = Field(default=None, exclude=True, repr=False)
    """An existing client to use instead of ``api_key`` / ``base_url`` (not closed here)."""

    @model_validator(mode="after")
    def _connect(self) -> Self:
        if self.client is None:
            self.client = DifyKnowledgeClient(self.api_key, self.base_url)
        elif self.api_key is not None or self.base_url is not None:
            raise ValueError("pass either client= or api_key / base_url, not both")
        # Mirrors of the client's settings, for introspection (the key stays a SecretStr).
        self.api_key = self.client.api_key
        self.base_url = self.client.base_url
        return self

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": ENV_API_KEY}

    def __getstate__(self) -> dict[Any, Any]:
        raise unpicklable(self)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        # A deep copy shares the client, as it shares the server: copying a connection
        # (its session, loop and thread) is neither possible nor wanted.
        memo = {} if memo is None else memo
        memo[id(self.client)] = self.client
        return super().__deepcopy__(memo)

    @property
    def _dify_bridge(self) -> ClientBridge:
        assert self.client is not None  # set by the validator
        return ClientBridge(self.client)


class WaitSettings(BaseModel):
    """How a component polls while it waits (the options of ``wait_for_batches``)."""

    poll_interval: float = 1.0
    """First gap between status polls, and the gap after any change (seconds)."""
    max_poll_interval: float = 10.0
    """Longest gap between polls while nothing changes (seconds)."""
    stall_timeout: float | None = None
    """Give up when nothing changed for this long (the indexing worker may be down)."""
    not_found_grace: float = 10.0
    """Seconds a just-created batch may be unknown to Dify before that is an error."""
    on_paused: OnPaused = "wait"
    """``"wait"`` on a document paused from Dify's console, or ``"fail"`` at once."""
    on_empty: OnEmpty = "raise"
    """A document indexed with 0 chunks (empty text: nothing will be found): ``"raise"``
    `IndexingEmptyError` (tools answer EMPTY instead), ``"warn"`` (log), or ``"accept"``."""
    summaries: bool = False
    """Also wait until Dify has made the documents' summaries (summary indexing datasets)."""
    on_stall: OnStall = "raise"
    """``"resubmit"``: a stalled upload of this client is sent again once by name (needs
    ``stall_timeout``)."""

    @model_validator(mode="after")
    def _check_wait_settings(self) -> Self:
        options = self.wait_options()
        options.pop("on_stall")
        WaitOptions(timeout=1.0, **options)  # raises ValueError for bad values
        return self

    def wait_options(self) -> dict[str, Any]:
        """These settings as keyword arguments of the client's wait methods."""
        return {
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "stall_timeout": self.stall_timeout,
            "not_found_grace": self.not_found_grace,
            "on_paused": self.on_paused,
            "on_empty": self.on_empty,
            "summaries": self.summaries,
            "on_stall": self.on_stall,
        }
