"""What the tool set may replace: its owner tag, checked before an upload, written after it.

Create is an upsert by name in Dify: without the check, ``upload_text`` would replace
whatever document holds the name. What the tools upload carries `TOOLSET_OWNER` in the
`OWNER_FIELD` metadata, so any tool set, in any process, may replace it.
"""

from __future__ import annotations

import logging

from dify_ingest_tools.agent.answers import DifyToolError, tool_error_answer
from dify_ingest_tools.agent.store_reads import find_named
from dify_ingest_tools.agent.tool_answers import replace_refused_answer
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.errors import DifyDocumentConflictError, DifyError
from dify_ingest_tools.models.documents import MetadataField
from dify_ingest_tools.models.ownership import OWNER_FIELD, Mark

logger = logging.getLogger("dify_ingest_tools")

#: The owner tag (`OWNER_FIELD`) on every document ``upload_text`` writes: what the tool set
#: may replace without ``allow_replace``, in any process.
TOOLSET_OWNER = "dify-ingest-toolkit"


async def check_replace(
    client: AsyncDifyKnowledgeClient, dataset_id: str, name: str, ours: set[str]
) -> None:
    """Refuse (a tool error) when ``name`` is a document these tools did not create
    (``ours``: the ids this tool set created in the dataset)."""
    existing = await find_named(client, dataset_id, name)
    if existing is None:
        return
    if existing.id in ours or Mark.of(existing).owner == TOOLSET_OWNER:
        return
    text = replace_refused_answer(dataset_id, name, existing.id)
    conflict = DifyDocumentConflictError(
        text, dataset_id=dataset_id, document_id=existing.id, name=name
    )
    raise DifyToolError(
        tool_error_answer(text, "invalid", dataset_id=dataset_id, error=conflict)
    ) from conflict


async def mark_owned(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    document_id: str,
    owner_fields: dict[str, dict[str, MetadataField]],
) -> None:
    """Tag an upload as the tool set's (merged into its metadata: others' fields stay).

    ``owner_fields`` remembers the owner field per dataset (lower case), so it is made once.
    """
    key = dataset_id.lower()
    try:
        fields = owner_fields.get(key)
        if fields is None:
            fields = await client.ensure_metadata_fields(dataset_id, {OWNER_FIELD: "string"})
            owner_fields[key] = {OWNER_FIELD: fields[OWNER_FIELD]}
        await client.set_documents_metadata(
            dataset_id,
            {document_id: Mark(owner=TOOLSET_OWNER).values()},
            partial_update=True,
            create_fields=False,
            fields=owner_fields[key],
        )
    except (DifyError, ValueError) as error:
        # The upload itself succeeded and is answered as such; this tool set still knows
        # the document is its own, other processes will see it as someone else's.
        logger.warning(
            "could not tag document %s of %s as uploaded by the agent tools: %s",
            document_id,
            dataset_id,
            error,
        )
