"""Know, and wait until, documents pushed into a Dify knowledge base are indexed.

Start with `AsyncDifyKnowledgeClient` (or its blocking twin `DifyKnowledgeClient`). The
LangChain and LlamaIndex adapters live in ``dify_ingest_tools.langchain`` and
``dify_ingest_tools.llama_index`` and are never imported from here; the Dify simulator is
``dify_ingest_tools.testing``.

The public names load on first use (PEP 562, as pydantic does), so ``import
dify_ingest_tools`` stays cheap for code that only needs a part of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._bridge import (
        DifyKnowledgeClient,
    )
    from .budget import (
        BudgetBackend,
        RequestBudget,
    )
    from .client import (
        AsyncDifyKnowledgeClient,
    )
    from .errors import (
        DifyAPIError,
        DifyAuthenticationError,
        DifyClientClosedError,
        DifyConnectionError,
        DifyDatasetNameError,
        DifyDocumentConflictError,
        DifyDocumentNotAvailableError,
        DifyError,
        DifyNotFoundError,
        DifyPermissionError,
        DifyRateLimitError,
        DifyResponseError,
        DifyServerError,
        DifyTimeoutError,
        IndexingEmptyError,
        IndexingError,
        IndexingFailedError,
        IndexingPausedError,
        IndexingStalledError,
        IndexingTimeoutError,
    )
    from .events import (
        IndexingEvent,
    )
    from .folder_sync import (
        SyncReport,
        sync_folder,
    )
    from .ledger import (
        Ledger,
        LedgerEntry,
        SQLiteLedger,
    )
    from .models import (
        BatchIndexingStatus,
        BatchRef,
        CreatedDocument,
        DifyDocument,
        DocumentIndexingStatus,
        DocumentList,
        IndexingStatus,
        IngestResult,
        Outcome,
        PipelineRun,
        RetrievedChunk,
    )
    from .models_documents import (
        DifySegment,
        MetadataEntry,
        MetadataField,
        MetadataFieldList,
        SegmentList,
        UpdatedDocument,
    )
    from .monitor import (
        IndexingMonitor,
        StatusSource,
    )
    from .redis_budget import (
        RedisBudget,
    )
    from .redis_ledger import (
        RedisLedger,
    )
    from .shared_polls import (
        RedisStatusCache,
    )

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "AsyncDifyKnowledgeClient": "client",
    "BatchIndexingStatus": "models",
    "BatchRef": "models",
    "BudgetBackend": "budget",
    "CreatedDocument": "models",
    "DifyAPIError": "errors",
    "DifyAuthenticationError": "errors",
    "DifyClientClosedError": "errors",
    "DifyConnectionError": "errors",
    "DifyDatasetNameError": "errors",
    "DifyDocument": "models",
    "DifyDocumentConflictError": "errors",
    "DifyDocumentNotAvailableError": "errors",
    "DifyError": "errors",
    "DifyKnowledgeClient": "_bridge",
    "DifyNotFoundError": "errors",
    "DifyPermissionError": "errors",
    "DifyRateLimitError": "errors",
    "DifyResponseError": "errors",
    "DifySegment": "models_documents",
    "DifyServerError": "errors",
    "DifyTimeoutError": "errors",
    "DocumentIndexingStatus": "models",
    "DocumentList": "models",
    "IndexingEmptyError": "errors",
    "IndexingError": "errors",
    "IndexingEvent": "events",
    "IndexingFailedError": "errors",
    "IndexingPausedError": "errors",
    "Outcome": "models",
    "IngestResult": "models",
    "PipelineRun": "models",
    "IndexingMonitor": "monitor",
    "IndexingStalledError": "errors",
    "IndexingStatus": "models",
    "IndexingTimeoutError": "errors",
    "Ledger": "ledger",
    "LedgerEntry": "ledger",
    "MetadataEntry": "models_documents",
    "MetadataField": "models_documents",
    "MetadataFieldList": "models_documents",
    "RedisBudget": "redis_budget",
    "RedisLedger": "redis_ledger",
    "RedisStatusCache": "shared_polls",
    "RequestBudget": "budget",
    "RetrievedChunk": "models",
    "SQLiteLedger": "ledger",
    "SegmentList": "models_documents",
    "StatusSource": "monitor",
    "SyncReport": "folder_sync",
    "UpdatedDocument": "models_documents",
    "sync_folder": "folder_sync",
}

__all__ = [
    "AsyncDifyKnowledgeClient",
    "BatchIndexingStatus",
    "BatchRef",
    "BudgetBackend",
    "CreatedDocument",
    "DifyAPIError",
    "DifyAuthenticationError",
    "DifyClientClosedError",
    "DifyConnectionError",
    "DifyDatasetNameError",
    "DifyDocument",
    "DifyDocumentConflictError",
    "DifyDocumentNotAvailableError",
    "DifyError",
    "DifyKnowledgeClient",
    "DifyNotFoundError",
    "DifyPermissionError",
    "DifyRateLimitError",
    "DifyResponseError",
    "DifySegment",
    "DifyServerError",
    "DifyTimeoutError",
    "DocumentIndexingStatus",
    "DocumentList",
    "IndexingEmptyError",
    "IndexingError",
    "IndexingEvent",
    "IndexingFailedError",
    "IndexingMonitor",
    "IndexingPausedError",
    "IndexingStalledError",
    "IndexingStatus",
    "IndexingTimeoutError",
    "IngestResult",
    "Ledger",
    "LedgerEntry",
    "MetadataEntry",
    "MetadataField",
    "MetadataFieldList",
    "Outcome",
    "PipelineRun",
    "RedisBudget",
    "RedisLedger",
    "RedisStatusCache",
    "RequestBudget",
    "RetrievedChunk",
    "SQLiteLedger",
    "SegmentList",
    "StatusSource",
    "SyncReport",
    "UpdatedDocument",
    "__version__",
    "sync_folder",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
