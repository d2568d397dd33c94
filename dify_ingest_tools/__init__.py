"""Know, and wait until, documents pushed into a Dify knowledge base are indexed.

Start with `AsyncDifyKnowledgeClient` (or its blocking twin `DifyKnowledgeClient`). The
LangChain and LlamaIndex adapters live in ``dify_ingest_tools.langchain`` and
``dify_ingest_tools.llama_index`` and are never imported from here; the Dify simulator is
``dify_ingest_tools.testing``.
"""

from ._sync import DifyKnowledgeClient
from ._version import __version__
from .client import AsyncDifyKnowledgeClient
from .errors import (
    DifyAPIError,
    DifyAuthenticationError,
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyPermissionError,
    DifyRateLimitError,
    DifyResponseError,
    DifyServerError,
    DifyTimeoutError,
    IndexingError,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from .events import IndexingEvent
from .models import (
    BatchIndexingStatus,
    BatchRef,
    CreatedDocument,
    DifyDocument,
    DocumentIndexingStatus,
    DocumentList,
    IndexingStatus,
    RetrievedChunk,
)
from .monitor import IndexingMonitor

__all__ = [
    "AsyncDifyKnowledgeClient",
    "BatchIndexingStatus",
    "BatchRef",
    "CreatedDocument",
    "DifyAPIError",
    "DifyAuthenticationError",
    "DifyConnectionError",
    "DifyDocument",
    "DifyError",
    "DifyKnowledgeClient",
    "DifyNotFoundError",
    "DifyPermissionError",
    "DifyRateLimitError",
    "DifyResponseError",
    "DifyServerError",
    "DifyTimeoutError",
    "DocumentIndexingStatus",
    "DocumentList",
    "IndexingError",
    "IndexingEvent",
    "IndexingFailedError",
    "IndexingMonitor",
    "IndexingStalledError",
    "IndexingStatus",
    "IndexingTimeoutError",
    "RetrievedChunk",
    "__version__",
]
