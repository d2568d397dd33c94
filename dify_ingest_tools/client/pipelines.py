"""Knowledge pipelines (``POST /datasets/{id}/pipeline/run``): the body, checked before anything
is sent, and the answer's shape.

Shapes from ``contract/openapi_knowledge.json`` and Dify's ``PipelineGenerator.generate``: a
published run answers ``{"batch", "dataset": {...}, "documents": [{"id", "name",
"indexing_status", ...}]}`` at once (the pipeline runs in a worker), one document per
datasource item, all in ``batch``. A draft run (``is_published: false``) runs in the request
and creates no batch, so only published runs are sent. Belongs with the client's resources
(``client/`` in the layer map).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from dify_ingest_tools.models.created import CreatedDocument, PipelineRun

PipelineDatasource = Literal["local_file", "online_document", "website_crawl", "online_drive"]
"""Where a pipeline's items come from; decides the shape of each ``datasource_info_list`` item."""

# What each item needs (the spec's oneOf: local_file -> reference, ...).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "local_file": ("reference",),
    "online_document": ("workspace_id", "page"),
    "website_crawl": ("url",),
    "online_drive": ("id", "type"),
}
MAX_PIPELINE_ITEMS = 100


def pipeline_run_body(
    datasource_type: str,
    datasource_info_list: Iterable[Mapping[str, Any]],
    start_node_id: str,
    inputs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The JSON body of a published, blocking pipeline run.

    Raises:
        ValueError: An unknown datasource type, an empty list, an item without the fields its
            type needs, or a blank ``start_node_id`` (nothing is sent).
        TypeError: An argument of the wrong type.
    """
    kinds = get_args(PipelineDatasource)
    if datasource_type not in kinds:
        raise ValueError(f"datasource_type must be one of {', '.join(kinds)}")
    if isinstance(datasource_info_list, (str, bytes, Mapping)):
        raise TypeError("datasource_info_list must be a list of objects (one per item)")
    items = [dict(item) if isinstance(item, Mapping) else item for item in datasource_info_list]
    if not items:
        raise ValueError("datasource_info_list must hold at least one item")
    if len(items) > MAX_PIPELINE_ITEMS:
        raise ValueError(f"at most {MAX_PIPELINE_ITEMS} items per run")
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise TypeError(f"datasource_info_list[{position}] must be an object")
        missing = [key for key in _REQUIRED[datasource_type] if item.get(key) in (None, "")]
        if missing:
            raise ValueError(
                f"datasource_info_list[{position}] needs {', '.join(missing)} for "
                f"datasource_type {datasource_type!r}"
            )
    if not isinstance(start_node_id, str) or not start_node_id.strip():
        raise ValueError("start_node_id must be a non-empty string (the datasource node's id)")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(f"inputs must be a mapping, got {type(inputs).__name__}")
    return {
        "inputs": dict(inputs or {}),
        "datasource_type": datasource_type,
        "datasource_info_list": items,
        "start_node_id": start_node_id,
        "is_published": True,
        "response_mode": "blocking",
    }


def pipeline_run(dataset_id: str, payload: Any) -> PipelineRun:
    """The run a published pipeline answered with.

    Raises:
        KeyError, TypeError, ValueError: The answer is not ``{"batch", "documents": [...]}``.
    """
    if not isinstance(payload, dict):
        raise TypeError("not an object")
    batch = payload["batch"]
    if not isinstance(batch, (str, int)) or isinstance(batch, bool) or not str(batch):
        raise ValueError("no batch")
    documents = payload.get("documents") or []
    if not isinstance(documents, list):
        raise TypeError("documents is not a list")
    created = tuple(
        CreatedDocument.from_response(dataset_id, {"document": document, "batch": batch})
        for document in documents
    )
    return PipelineRun(dataset_id=dataset_id, batch=str(batch), documents=created, raw=payload)
