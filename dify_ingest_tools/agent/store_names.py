"""A store named by its knowledge base's name: ``from_documents(..., name=...)``.

`DifyIndex.from_documents(docs, name="handbook")` and
`DifyVectorStore.from_documents(docs, dataset_name="handbook")` find the knowledge base by
name (`AsyncDifyKnowledgeClient.dataset_id_for`), or create it (economy unless the store's
``indexing_technique`` says otherwise) with ``create_if_missing=True``, as ``LlamaCloudIndex``
users expect. The client the store would have built from ``api_key`` / ``base_url`` is built
here, to look the name up, and handed to the store, which then owns (and closes) it. Belongs
with the store core (``agent/`` in the layer map).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, cast

from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.bridge import ClientBridge, DifyKnowledgeClient
from dify_ingest_tools.client.dataset_create import IndexingTechnique

_Work = Callable[[AsyncDifyKnowledgeClient], Coroutine[Any, Any, str]]


def _prepare(
    kwargs: dict[str, Any], name: str | None, create_if_missing: bool
) -> tuple[ClientBridge, DifyKnowledgeClient | None, _Work] | None:
    if name is None:
        if create_if_missing:
            raise ValueError("create_if_missing=True needs the knowledge base's name")
        return None
    if kwargs.get("dataset_id") is not None:
        raise ValueError("pass the knowledge base's id or its name, not both")
    client = kwargs.pop("client", None)
    api_key, base_url = kwargs.pop("api_key", None), kwargs.pop("base_url", None)
    if client is not None and (api_key is not None or base_url is not None):
        raise ValueError("pass either client= or api_key / base_url, not both")
    if client is not None and not isinstance(
        client, (AsyncDifyKnowledgeClient, DifyKnowledgeClient)
    ):
        raise TypeError(
            "client must be a DifyKnowledgeClient or an AsyncDifyKnowledgeClient, "
            f"got {type(client).__name__}"
        )
    owned = None
    if client is None:
        client = owned = DifyKnowledgeClient(api_key, base_url)
    kwargs["client"] = client
    technique = cast("IndexingTechnique", kwargs.get("indexing_technique") or "economy")

    def work(async_client: AsyncDifyKnowledgeClient) -> Coroutine[Any, Any, str]:
        return async_client.dataset_id_for(
            name, create_if_missing=create_if_missing, indexing_technique=technique
        )

    return ClientBridge(client), owned, work


def resolve_name(
    kwargs: dict[str, Any], name: str | None, create_if_missing: bool
) -> DifyKnowledgeClient | None:
    """Put the id of the knowledge base called ``name`` in ``kwargs["dataset_id"]`` (and the
    client in ``kwargs["client"]``); return the client built here, which the store must own.

    Nothing happens without a name. Raises `DifyDatasetNameError` for a missing (without
    ``create_if_missing``) or ambiguous name.
    """
    prepared = _prepare(kwargs, name, create_if_missing)
    if prepared is None:
        return None
    bridge, owned, work = prepared
    try:
        kwargs["dataset_id"] = bridge.call(work)
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    return owned


async def aresolve_name(
    kwargs: dict[str, Any], name: str | None, create_if_missing: bool
) -> DifyKnowledgeClient | None:
    """Async `resolve_name`."""
    prepared = _prepare(kwargs, name, create_if_missing)
    if prepared is None:
        return None
    bridge, owned, work = prepared
    try:
        kwargs["dataset_id"] = await bridge.acall(work)
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    return owned
