"""`DifyKnowledgeToolkit`: the whole agent job (upload → status → wait → search, and a document
list) as LangChain tools over one shared client and one `DifyToolset`.

The upload, search and list tools render the tool set's definitions (`dify_ingest_tools.
toolkit`); status and wait are `DifyIndexingStatusTool` and `DifyWaitForIndexingTool`. Every
tool answers ``(text, artifact)`` (``content_and_artifact``), has a native ``_arun``, and turns
a call it cannot answer into an error ToolMessage (``ToolException`` / a validation error),
so nothing it does ends the agent's loop.
"""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_core.tools import BaseTool, BaseToolkit
from pydantic import PrivateAttr, model_validator
from typing_extensions import Self

from dify_ingest_tools.agent.tool_defs import ToolsetSettings
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.langchain._common import DifyConnection
from dify_ingest_tools.langchain.tools import (
    DifyIndexingStatusTool,
    DifyWaitForIndexingTool,
    _ToolsetTool,
)

__all__ = [
    "DifyKnowledgeToolkit",
    "DifyListDocumentsTool",
    "DifySearchTool",
    "DifyUploadTextTool",
]


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


class DifyKnowledgeToolkit(DifyConnection, ToolsetSettings, BaseToolkit):
    """Every tool an agent needs to write to and read from a Dify knowledge base.

    Security note: these tools write to the knowledge base (``dify_upload_text`` creates or
    replaces documents by name; it replaces only documents these tools created, unless
    ``allow_replace=True``). Give the agent a Knowledge API key whose workspace it may
    change, bind it to one knowledge base (``dataset_id``) or an allow-list (``datasets``),
    and keep ``max_wait_seconds`` small enough for your agent's own deadline. The key is
    never part of a tool's answer, artifact or error.

    Settings: the connection (``api_key`` / ``base_url`` or ``client``) and the fields of
    `ToolsetSettings` (``dataset_id``, ``datasets``, ``max_wait_seconds``,
    ``default_wait_seconds``, ``search_wait_seconds``, ``top_k``, ``allow_replace``, ...),
    inherited from it: the tool set's settings are declared once, there.

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

    _toolset: DifyToolset = PrivateAttr()

    @model_validator(mode="after")
    def _build_toolset(self) -> Self:
        self._toolset = DifyToolset(ToolsetSettings.of(self))
        return self

    @property
    def toolset(self) -> DifyToolset:
        """The framework-free tool set behind these tools."""
        return self._toolset

    def get_tools(self) -> list[BaseTool]:
        """The five tools, sharing this toolkit's client and tool set."""
        shared: dict[str, Any] = {"client": self.client, "toolset": self._toolset}
        return [
            DifyUploadTextTool(**shared),
            DifyIndexingStatusTool(**shared),
            DifyWaitForIndexingTool(**shared),
            DifySearchTool(**shared),
            DifyListDocumentsTool(**shared),
        ]
