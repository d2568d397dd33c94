"""The knowledge-base list (``GET /v1/datasets``) and knowledge pipelines (``POST
/v1/datasets/{id}/pipeline/run``).

The list: Dify's ``DatasetListApi.get``: ``page``, ``limit`` (default 20, capped at 100),
``keyword`` (``name ILIKE '%keyword%'``: a substring, any case), newest first, answered as
``{"data", "has_more", "limit", "total", "page"}``; not rate limited.

A pipeline run, as Dify's ``PipelineRunApi.post`` and ``PipelineGenerator.generate`` answer it:
the dataset's 404/403 first, then the body's validation (400 ``invalid_param``), then
``Pipeline not found`` (400) for a knowledge base that has no pipeline, then the run. A
published run creates one document per datasource item in one new batch and answers at once
with ``{"batch", "dataset", "documents"}``; what the pipeline extracts is the text the test
set with `DifySimulator.enable_pipeline` (``""``: documents that end with no chunks). A draft
run (``is_published: false``) runs in the request, creates nothing and answers the workflow
result. A datasource type Dify does not know fails inside the run: 500 ``pipeline_run_error``.
Simplification: a ``local_file`` ``reference`` is not looked up (no pipeline file upload).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ._core import Core
from ._http import error_response, invalid_param, json_response
from ._route_steps import Handler, _body, _dataset, _int_arg, _payload
from ._validation import FieldError
from ._views import dataset_json

__all__ = ["PIPELINE_HANDLERS"]

DATASOURCE_TYPES = ("local_file", "online_document", "website_crawl", "online_drive")


async def list_datasets(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``GET /v1/datasets?page=&limit=&keyword=``."""
    query = request.rel_url.query
    page = max(1, _int_arg(query.get("page"), 1))
    limit = _int_arg(query.get("limit"), 20)
    limit = min(limit if limit >= 1 else 20, 100)
    keyword = query.get("keyword")
    store = core.store
    with store.lock:
        datasets = list(store.datasets.values())
        if keyword:
            pattern = _ilike(keyword)
            datasets = [d for d in datasets if pattern.search(d.name)]
        datasets.sort(key=lambda d: d.created_at, reverse=True)
        items = datasets[(page - 1) * limit : page * limit]
        data = [dataset_json(d, store.epoch, store.account_id) for d in items]
        return json_response(
            {
                "data": data,
                "has_more": len(datasets) > page * limit,
                "limit": limit,
                "total": len(datasets),
                "page": page,
            }
        )


def _ilike(keyword: str) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in keyword]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _item_name(kind: str, item: dict[str, Any]) -> str:
    if kind == "website_crawl":
        name = item.get("title")
    elif kind == "online_document":
        page = item.get("page")
        name = page.get("page_name") if isinstance(page, dict) else None
    else:
        name = item.get("name")
    return name if isinstance(name, str) and name else "untitled"


async def pipeline_run(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``POST /v1/datasets/{dataset_id}/pipeline/run``."""
    raw = await _body(request)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "pipeline_run")
        if isinstance(dataset, web.Response):
            return dataset
        payload = _payload(raw, "PipelineRunApiEntity")
        if isinstance(payload, web.Response):
            return payload
        data = payload.data if isinstance(payload.data, dict) else {}
        checks: tuple[tuple[str, type, str, str], ...] = (
            ("inputs", dict, "Input should be a valid dictionary", "dict_type"),
            ("datasource_type", str, "Input should be a valid string", "string_type"),
            ("datasource_info_list", list, "Input should be a valid list", "list_type"),
            ("start_node_id", str, "Input should be a valid string", "string_type"),
            ("is_published", bool, "Input should be a valid boolean", "bool_type"),
            ("response_mode", str, "Input should be a valid string", "string_type"),
        )
        for name, kind, message, code in checks:
            if not isinstance(payload.data, dict):
                break
            if name not in data:
                payload.errors.append(FieldError(name, "Field required", "missing", data))
            elif not isinstance(data[name], kind):
                payload.errors.append(FieldError(name, message, code, data[name]))
        items = data.get("datasource_info_list")
        if isinstance(items, list):
            for position, item in enumerate(items):
                if not isinstance(item, dict):
                    payload.errors.append(
                        FieldError(
                            f"datasource_info_list.{position}",
                            "Input should be a valid dictionary",
                            "dict_type",
                            item,
                        )
                    )
        error = payload.message()
        if error is not None:
            return invalid_param(error)
        if dataset.pipeline_text is None:
            return invalid_param("Pipeline not found")
        kind = data["datasource_type"]
        if kind not in DATASOURCE_TYPES:
            return error_response(
                500, "pipeline_run_error", f"'{kind}' is not a valid DatasourceProviderType"
            )
        now = store.clock()
        if not data["is_published"]:
            run_id = store.new_id()
            stamp = store.epoch.whole(now)
            return json_response(
                {
                    "task_id": store.new_id(),
                    "workflow_run_id": run_id,
                    "data": {
                        "id": run_id,
                        "status": "succeeded",
                        "outputs": {},
                        "created_at": stamp,
                        "finished_at": stamp,
                    },
                }
            )
        batch: str | None = None
        documents = []
        for item in data["datasource_info_list"]:
            name = _item_name(kind, item)
            text = dataset.pipeline_text.replace("{name}", name)
            document = store.add_document(dataset, name, text, batch=batch)
            batch = document.batch
            documents.append(
                {
                    "id": document.id,
                    "position": document.position,
                    "data_source_type": kind,
                    "data_source_info": item,
                    "name": document.name,
                    "indexing_status": "waiting",
                    "error": None,
                    "enabled": True,
                }
            )
        return json_response(
            {
                "batch": batch,
                "dataset": {
                    "id": dataset.id,
                    "name": dataset.name,
                    "description": dataset.description,
                    "chunk_structure": "text_model",
                },
                "documents": documents,
            }
        )


PIPELINE_HANDLERS: dict[str, Handler] = {
    "list_datasets": list_datasets,
    "pipeline_run": pipeline_run,
}
