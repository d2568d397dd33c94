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
import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dify_ingest_tools._version import __version__ as __version__

if TYPE_CHECKING:
    from dify_ingest_tools.backends.budget import (
        BudgetBackend as BudgetBackend,
    )
    from dify_ingest_tools.backends.ledger import (
        Ledger as Ledger,
    )
    from dify_ingest_tools.backends.ledger import (
        LedgerEntry as LedgerEntry,
    )
    from dify_ingest_tools.backends.ledger import (
        SQLiteLedger as SQLiteLedger,
    )
    from dify_ingest_tools.backends.redis_budget import (
        RedisBudget as RedisBudget,
    )
    from dify_ingest_tools.backends.redis_ledger import (
        RedisLedger as RedisLedger,
    )
    from dify_ingest_tools.backends.request_budget import RequestBudget as RequestBudget
    from dify_ingest_tools.backends.shared_polls import (
        RedisStatusCache as RedisStatusCache,
    )
    from dify_ingest_tools.client.async_client import (
        AsyncDifyKnowledgeClient as AsyncDifyKnowledgeClient,
    )
    from dify_ingest_tools.client.bridge import (
        DifyKnowledgeClient as DifyKnowledgeClient,
    )
    from dify_ingest_tools.errors import (
        DifyAPIError as DifyAPIError,
    )
    from dify_ingest_tools.errors import (
        DifyAuthenticationError as DifyAuthenticationError,
    )
    from dify_ingest_tools.errors import (
        DifyClientClosedError as DifyClientClosedError,
    )
    from dify_ingest_tools.errors import (
        DifyConnectionError as DifyConnectionError,
    )
    from dify_ingest_tools.errors import (
        DifyDatasetNameError as DifyDatasetNameError,
    )
    from dify_ingest_tools.errors import (
        DifyDocumentConflictError as DifyDocumentConflictError,
    )
    from dify_ingest_tools.errors import (
        DifyDocumentNotAvailableError as DifyDocumentNotAvailableError,
    )
    from dify_ingest_tools.errors import (
        DifyError as DifyError,
    )
    from dify_ingest_tools.errors import (
        DifyNotFoundError as DifyNotFoundError,
    )
    from dify_ingest_tools.errors import (
        DifyPermissionError as DifyPermissionError,
    )
    from dify_ingest_tools.errors import (
        DifyRateLimitError as DifyRateLimitError,
    )
    from dify_ingest_tools.errors import (
        DifyResponseError as DifyResponseError,
    )
    from dify_ingest_tools.errors import (
        DifyServerError as DifyServerError,
    )
    from dify_ingest_tools.errors import (
        DifyTimeoutError as DifyTimeoutError,
    )
    from dify_ingest_tools.errors import (
        IndexingEmptyError as IndexingEmptyError,
    )
    from dify_ingest_tools.errors import (
        IndexingError as IndexingError,
    )
    from dify_ingest_tools.errors import (
        IndexingFailedError as IndexingFailedError,
    )
    from dify_ingest_tools.errors import (
        IndexingPausedError as IndexingPausedError,
    )
    from dify_ingest_tools.errors import (
        IndexingStalledError as IndexingStalledError,
    )
    from dify_ingest_tools.errors import (
        IndexingTimeoutError as IndexingTimeoutError,
    )
    from dify_ingest_tools.events import (
        IndexingEvent as IndexingEvent,
    )
    from dify_ingest_tools.folder_sync.report import (
        SyncReport as SyncReport,
    )
    from dify_ingest_tools.folder_sync.sync import (
        sync_folder as sync_folder,
    )
    from dify_ingest_tools.models.created import BatchRef as BatchRef
    from dify_ingest_tools.models.created import CreatedDocument as CreatedDocument
    from dify_ingest_tools.models.created import IngestResult as IngestResult
    from dify_ingest_tools.models.created import PipelineRun as PipelineRun
    from dify_ingest_tools.models.documents import DifyDocument as DifyDocument
    from dify_ingest_tools.models.documents import (
        DifySegment as DifySegment,
    )
    from dify_ingest_tools.models.documents import DocumentList as DocumentList
    from dify_ingest_tools.models.documents import (
        MetadataEntry as MetadataEntry,
    )
    from dify_ingest_tools.models.documents import (
        MetadataField as MetadataField,
    )
    from dify_ingest_tools.models.documents import (
        MetadataFieldList as MetadataFieldList,
    )
    from dify_ingest_tools.models.documents import (
        SegmentList as SegmentList,
    )
    from dify_ingest_tools.models.documents import (
        UpdatedDocument as UpdatedDocument,
    )
    from dify_ingest_tools.models.outcome import Outcome as Outcome
    from dify_ingest_tools.models.retrieval import RetrievedChunk as RetrievedChunk
    from dify_ingest_tools.models.status import (
        BatchIndexingStatus as BatchIndexingStatus,
    )
    from dify_ingest_tools.models.status import (
        DocumentIndexingStatus as DocumentIndexingStatus,
    )
    from dify_ingest_tools.models.status import (
        IndexingStatus as IndexingStatus,
    )
    from dify_ingest_tools.readiness.monitor import (
        IndexingMonitor as IndexingMonitor,
    )
    from dify_ingest_tools.readiness.updates import StatusSource as StatusSource

# The one table of public names: name -> (the module that defines it, documented?). Documented
# names are design §4's and the docs' API reference pages'; `__all__` lists those only. The
# others stay importable from here for code written against earlier releases.
_EXPORTS: dict[str, tuple[str, bool]] = {
    "AsyncDifyKnowledgeClient": ("client.async_client", True),
    "BatchIndexingStatus": ("models.status", True),
    "BatchRef": ("models.created", True),
    "CreatedDocument": ("models.created", True),
    "DifyAPIError": ("errors", True),
    "DifyAuthenticationError": ("errors", True),
    "DifyClientClosedError": ("errors", True),
    "DifyConnectionError": ("errors", True),
    "DifyDatasetNameError": ("errors", True),
    "DifyDocument": ("models.documents", True),
    "DifyDocumentConflictError": ("errors", True),
    "DifyDocumentNotAvailableError": ("errors", True),
    "DifyError": ("errors", True),
    "DifyKnowledgeClient": ("client.bridge", True),
    "DifyNotFoundError": ("errors", True),
    "DifyPermissionError": ("errors", True),
    "DifyRateLimitError": ("errors", True),
    "DifyResponseError": ("errors", True),
    "DifyServerError": ("errors", True),
    "DifyTimeoutError": ("errors", True),
    "DocumentIndexingStatus": ("models.status", True),
    "DocumentList": ("models.documents", True),
    "IndexingEmptyError": ("errors", True),
    "IndexingError": ("errors", True),
    "IndexingEvent": ("events", True),
    "IndexingFailedError": ("errors", True),
    "IndexingMonitor": ("readiness.monitor", True),
    "IndexingPausedError": ("errors", True),
    "IndexingStalledError": ("errors", True),
    "IndexingStatus": ("models.status", True),
    "IndexingTimeoutError": ("errors", True),
    "IngestResult": ("models.created", True),
    "Ledger": ("backends.ledger", True),
    "Outcome": ("models.outcome", True),
    "PipelineRun": ("models.created", True),
    "RedisBudget": ("backends.redis_budget", True),
    "RedisLedger": ("backends.redis_ledger", True),
    "RedisStatusCache": ("backends.shared_polls", True),
    "RequestBudget": ("backends.request_budget", True),
    "RetrievedChunk": ("models.retrieval", True),
    "SQLiteLedger": ("backends.ledger", True),
    "UpdatedDocument": ("models.documents", True),
    "sync_folder": ("folder_sync.sync", True),
    "BudgetBackend": ("backends.budget", False),
    "DifySegment": ("models.documents", False),
    "LedgerEntry": ("backends.ledger", False),
    "MetadataEntry": ("models.documents", False),
    "MetadataField": ("models.documents", False),
    "MetadataFieldList": ("models.documents", False),
    "SegmentList": ("models.documents", False),
    "StatusSource": ("readiness.updates", False),
    "SyncReport": ("folder_sync.report", False),
}

__all__ = sorted(name for name, (_, documented) in _EXPORTS.items() if documented)

# Modules that moved into the layer folders (design §3), under their old dotted names, so
# `from dify_ingest_tools.ledger import SQLiteLedger` written for an earlier release still works.
# The old name resolves to the very same module object (no copy, no second home).
_MOVED: dict[str, str] = {
    "answers": "agent.answers",
    "budget": "backends.budget",
    "ledger": "backends.ledger",
    "models_documents": "models.documents",
    "monitor": "readiness.monitor",
    "progress": "readiness.progress",
    "redis_budget": "backends.redis_budget",
    "redis_ledger": "backends.redis_ledger",
    "shared_polls": "backends.shared_polls",
    "toolkit": "agent.toolkit",
    "waiting": "readiness.waiting",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `dify_ingest_tools.<old name>` as the module it became."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, old = fullname.rpartition(".")
        if package != __name__ or old not in _MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        old = spec.name.rpartition(".")[2]
        return importlib.import_module(f"{__name__}.{_MOVED[old]}")

    def exec_module(self, module: ModuleType) -> None:
        """The module already ran under its new name."""


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str) -> Any:
    entry = _EXPORTS.get(name)
    if entry is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{entry[0]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
