"""LlamaIndex integration: agent tools, ingestion-pipeline components, events, a retriever.

Install with ``pip install "dify-ingest-tools[llama-index]"``.

* `DifyIndexingToolSpec`: ``get_indexing_status`` / ``wait_for_indexing`` tools for agents.
* `DifyKnowledgeToolSpec`: the whole agent job as tools (``upload_text``, ``indexing_status``,
  ``wait_for_indexing``, ``search``, ``list_documents``).
* `DifyDocumentUploader` and `DifyIndexingWaiter`: ``TransformComponent``s for an
  ``IngestionPipeline`` (``run`` and ``arun``) that upload nodes and wait for Dify to index them.
* `DifyIndexingEvent` and its subclasses: instrumentation events for every wait's progress.
* `DifyRetriever`: retrieval that first waits for pending uploads.
* `DifyIndex`: the knowledge base as a managed index (like ``LlamaCloudIndex``) whose writes
  return once Dify has indexed them; ``refresh_ref_docs`` skips unchanged sources.

Give them all the same client (``client=DifyKnowledgeClient(...)``): the retriever then knows
what the uploader sent, and every wait shares one session and one set of poll loops.
"""

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the package
    raise ImportError(
        "dify_ingest_tools.llama_index needs llama-index-core, which is not installed: "
        'pip install "dify-ingest-tools[llama-index]"'
    ) from exc

from dify_ingest_tools.llama_index.events import (
    DifyBatchIndexingEvent,
    DifyDocumentIndexingEvent,
    DifyIndexingEvent,
    DifyIndexingProgressEvent,
    DifyIndexingRetryEvent,
    DifyIndexingStalledEvent,
    DifyPartialResultsEvent,
)
from dify_ingest_tools.llama_index.managed import DifyIndex, DifyIndexRetriever
from dify_ingest_tools.llama_index.retrievers import DifyRetriever
from dify_ingest_tools.llama_index.toolkit import DifyKnowledgeToolSpec
from dify_ingest_tools.llama_index.tools import DifyIndexingToolSpec, DifyToolError
from dify_ingest_tools.llama_index.transforms import DifyDocumentUploader, DifyIndexingWaiter

__all__ = [
    "DifyBatchIndexingEvent",
    "DifyDocumentIndexingEvent",
    "DifyDocumentUploader",
    "DifyIndex",
    "DifyIndexRetriever",
    "DifyIndexingEvent",
    "DifyIndexingProgressEvent",
    "DifyIndexingRetryEvent",
    "DifyIndexingStalledEvent",
    "DifyIndexingToolSpec",
    "DifyIndexingWaiter",
    "DifyKnowledgeToolSpec",
    "DifyPartialResultsEvent",
    "DifyRetriever",
    "DifyToolError",
]
