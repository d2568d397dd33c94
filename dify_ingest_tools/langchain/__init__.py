"""LangChain integration: agent tools, ingestion runnables and a readiness-gated retriever.

* `DifyIndexingStatusTool` (``dify_indexing_status``) and `DifyWaitForIndexingTool`
  (``dify_wait_for_indexing``): agent tools answering "is this upload indexed yet?".
* `DifyDocumentUploader` | `DifyIndexingWaiter`: an LCEL ingestion chain; the waiter
  dispatches every `IndexingEvent` as a custom event ``dify_indexing_<kind>`` (see
  `CUSTOM_EVENT_NAMES`).
* `DifyRetriever`: retrieval that first waits for this client's pending uploads.
* `DifyKnowledgeToolkit`: the whole agent job as tools (``dify_upload_text``,
  ``dify_indexing_status``, ``dify_wait_for_indexing``, ``dify_search``,
  ``dify_list_documents``).
* `DifyVectorStore`: the knowledge base as a `VectorStore` whose writes return once indexed
  (works with ``langchain_core.indexing.index``).

Every component takes ``api_key`` / ``base_url`` (or ``DIFY_API_KEY`` /
``DIFY_API_BASE_URL``), or ``client=`` (an `AsyncDifyKnowledgeClient` for async use only, or
a `DifyKnowledgeClient` for both). Share one ``client=`` between the uploader, the waiter and
the retriever: the retriever's gate only knows uploads made through its own client.

Needs ``langchain-core``: ``pip install "dify-ingest-tools[langchain]"``.
"""

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a test with the import blocked
    raise ImportError(
        "dify_ingest_tools.langchain needs langchain-core: "
        'pip install "dify-ingest-tools[langchain]"'
    ) from exc

from dify_ingest_tools.langchain.events import (
    CUSTOM_EVENT_NAMES,
    CUSTOM_EVENT_PREFIX,
    custom_event_name,
)
from dify_ingest_tools.langchain.retrievers import DifyRetriever
from dify_ingest_tools.langchain.runnables import DifyDocumentUploader, DifyIndexingWaiter
from dify_ingest_tools.langchain.toolkit import (
    DifyKnowledgeToolkit,
    DifyListDocumentsTool,
    DifySearchTool,
    DifyUploadTextTool,
)
from dify_ingest_tools.langchain.tools import DifyIndexingStatusTool, DifyWaitForIndexingTool
from dify_ingest_tools.langchain.vectorstores import DifyVectorStore

__all__ = [
    "CUSTOM_EVENT_NAMES",
    "CUSTOM_EVENT_PREFIX",
    "DifyDocumentUploader",
    "DifyIndexingStatusTool",
    "DifyIndexingWaiter",
    "DifyKnowledgeToolkit",
    "DifyListDocumentsTool",
    "DifyRetriever",
    "DifySearchTool",
    "DifyUploadTextTool",
    "DifyVectorStore",
    "DifyWaitForIndexingTool",
    "custom_event_name",
]
