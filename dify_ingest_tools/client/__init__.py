"""`AsyncDifyKnowledgeClient`, the composition root, and its blocking twin `DifyKnowledgeClient`.

The calls of design §4 live in `async_client`; its resources in their own modules (documents,
datasets, pipelines, retrieval), the one registry of what is still indexing in `pending`, and
the blocking twin in `bridge` (its methods generated into `blocking` by `twin`).
"""

from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.bridge import DifyKnowledgeClient

__all__ = ["AsyncDifyKnowledgeClient", "DifyKnowledgeClient"]
