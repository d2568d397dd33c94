"""`AsyncDifyKnowledgeClient`, the composition root, and its blocking twin `DifyKnowledgeClient`.

`async_client` builds the client and holds its status and wait calls; the other calls are
resource mixins, one module each (`uploads_api`, `documents`, `document_waits_api`,
`metadata_api`, `segments_api`, `datasets_api`, `retrieve_api`, `pipeline_api`,
`pending_api`). The one registry of what is still indexing is `pending`; the blocking twin is
`bridge` (its methods generated into `blocking` and `blocking_more` by `twin`).
"""

from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.bridge import DifyKnowledgeClient

__all__ = ["AsyncDifyKnowledgeClient", "DifyKnowledgeClient"]
