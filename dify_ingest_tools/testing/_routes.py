"""Route handlers: what each endpoint answers once routing, faults and auth let a request in.

Handlers read the request body first (the only awaits), then do everything else under the
store lock. Errors keep Dify's precedence: the dataset decorator's 404/403 come before any
body validation.
"""

from __future__ import annotations

import json
import mimetypes
import os
from typing import Any

from aiohttp import web

from ._core import Core
from ._http import error_response, invalid_param, json_response, no_content, not_found
from ._metadata_filter import document_filter, ranks_everything
from ._retrieval import REQUIRED_RETRIEVAL_FIELDS, keyword_search, search_error
from ._route_steps import Handler, _body, _dataset, _int_arg, _payload, like_pattern
from ._state import Dataset, Document, FileInfo
from ._summaries import summary_state
from ._updates import document_display_status
from ._uploads import (
    FILE_TOO_LARGE,
    MAX_NAME_LENGTH,
    extract_text,
    read_multipart,
    refused_file_name,
    stored_file_name,
    supported,
)
from ._validation import Payload
from ._views import (
    dataset_json,
    document_detail_json,
    document_json,
    indexing_status_json,
    record_json,
)

TECHNIQUES = ("high_quality", "economy")
PERMISSIONS = ("only_me", "all_team_members", "partial_members")
DOC_FORMS = ("text_model", "hierarchical_model", "qa_model")
DISPLAY_STATUSES = ("queuing", "indexing", "paused", "error", "available", "disabled", "archived")
# Dify's retrieval service falls back to 4 when a retrieval_model carries no top_k.
DEFAULT_TOP_K = 4


def _resolve_technique(dataset: Dataset, requested: str | None) -> str | web.Response:
    technique = requested or dataset.indexing_technique
    if technique is None:
        return invalid_param("indexing_technique is required.")
    if dataset.indexing_technique is None:
        dataset.indexing_technique = technique
    return technique


def _created(core: Core, document: Document) -> web.Response:
    status = document.initial_status
    epoch, account = core.store.epoch, core.store.account_id
    document_body = document_json(document, epoch, account, indexing_status=status)
    return json_response({"document": document_body, "batch": document.batch})


# -- datasets --------------------------------------------------------------------------------


async def create_dataset(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``POST /v1/datasets``."""
    raw = await _body(request)
    payload = _payload(raw, "DatasetCreatePayload")
    if isinstance(payload, web.Response):
        return payload
    name = payload.string("name", min_length=1, max_length=40)
    description = payload.string("description", required=False, nullable=True, max_length=400)
    technique = payload.literal("indexing_technique", TECHNIQUES)
    permission = payload.literal("permission", PERMISSIONS)
    message = payload.message()
    if message is not None:
        return invalid_param(message)
    assert name is not None  # a missing or invalid name is a validation error
    store = core.store
    with store.lock:
        if any(dataset.name == name for dataset in store.datasets.values()):
            return error_response(
                409,
                "dataset_name_duplicate",
                "The dataset name already exists. Please modify your dataset name.",
            )
        dataset = store.create_dataset(
            name,
            indexing_technique=technique,
            description=description or "",
            permission=permission or "only_me",
        )
        return json_response(dataset_json(dataset, store.epoch, store.account_id))


async def get_dataset(core: Core, request: web.BaseRequest, params: dict[str, str]) -> web.Response:
    """``GET /v1/datasets/{dataset_id}``."""
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "get_dataset")
        if isinstance(dataset, web.Response):
            return dataset
        if core.dataset_detail_error:
            # A server without its plugin daemon fails here (08); clients must not need this.
            return invalid_param(
                f"Failed to request plugin daemon, url: plugin/{store.tenant_id}/management/models"
            )
        now = store.clock()
        for document in dataset.documents.values():
            document.timeline.advance(now)
        return json_response(dataset_json(dataset, store.epoch, store.account_id, detail=True))


# -- creating documents ----------------------------------------------------------------------


async def create_by_text(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``POST .../document/create-by-text`` (and the deprecated ``create_by_text``)."""
    raw = await _body(request)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "create_by_text")
        if isinstance(dataset, web.Response):
            return dataset
        payload = _payload(raw, "DocumentTextCreatePayload")
        if isinstance(payload, web.Response):
            return payload
        name = payload.string("name")
        text = payload.string("text")
        # 1.14.1 requires the key even when the dataset already has a technique.
        requested = payload.literal("indexing_technique", TECHNIQUES, required=True)
        process_rule = payload.mapping("process_rule")
        doc_form = payload.string("doc_form", required=False) or "text_model"
        doc_language = payload.string("doc_language", required=False) or "English"
        message = payload.message()
        if message is not None:
            return invalid_param(message)
        assert name is not None  # missing or invalid: a validation error above
        assert text is not None
        # FileService.upload_text keeps the first 200 characters of the name.
        name = name[:MAX_NAME_LENGTH]
        if doc_form not in DOC_FORMS:
            return invalid_param("Invalid doc_form.")
        technique = _resolve_technique(dataset, requested)
        if isinstance(technique, web.Response):
            return technique
        document = store.add_document(
            dataset,
            name,
            text,
            process_rule=process_rule,
            doc_form=doc_form,
            doc_language=doc_language,
            indexing_technique=technique,
        )
        return _created(core, document)


async def create_by_file(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``POST .../document/create-by-file`` (and the deprecated ``create_by_file``)."""
    files, form = await read_multipart(request, core.max_file_size)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "create_by_file")
        if isinstance(dataset, web.Response):
            return dataset
        try:
            args = json.loads(form["data"]) if "data" in form else {}
        except ValueError as exc:
            return invalid_param(str(exc))
        payload = Payload("KnowledgeConfig", args)
        requested = payload.literal("indexing_technique", TECHNIQUES)
        process_rule = payload.mapping("process_rule")
        doc_form = payload.string("doc_form", required=False) or "text_model"
        doc_language = payload.string("doc_language", required=False) or "English"
        message = payload.message()
        if message is not None:
            return invalid_param(message)
        # Werkzeug keys request.files by field name: two parts both named "file" count once
        # and the first wins (05), while a second field name is "too many files".
        fields = {field for field, *_ in files}
        if "file" not in fields:
            return error_response(400, "no_file_uploaded", "Please upload your file.")
        if len(fields) > 1:
            return error_response(400, "too_many_files", "Only one file is allowed.")
        _, filename, content, content_type = next(part for part in files if part[0] == "file")
        if not filename:
            return error_response(
                400, "filename_not_exists_error", "The specified filename does not exist."
            )
        if refused_file_name(filename):
            # FileService raises a ValueError, which Dify's API answers as invalid_param.
            return invalid_param("Filename contains invalid characters")
        filename = stored_file_name(filename)
        extension = os.path.splitext(filename)[1].lstrip(".").lower()
        if not supported(extension):
            # Dify's UnsupportedFileTypeError carries no text, hence the empty message (02b).
            return invalid_param("")
        if content is None:
            return error_response(413, "file_too_large", FILE_TOO_LARGE)
        technique = _resolve_technique(dataset, requested)
        if isinstance(technique, web.Response):
            return technique
        text, unreadable = extract_text(extension, content, store.new_id()[:8])
        mime = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        document = store.add_document(
            dataset,
            filename,
            text,
            file=FileInfo(filename, extension, mime, len(content)),
            process_rule=process_rule,
            doc_form=doc_form,
            doc_language=doc_language,
            indexing_technique=technique,
            unreadable=unreadable,
        )
        return _created(core, document)


# -- reading documents -----------------------------------------------------------------------


async def indexing_status(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``GET .../documents/{batch}/indexing-status``; query parameters are ignored (03b)."""
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "indexing_status")
        if isinstance(dataset, web.Response):
            return dataset
        documents = store.batch_documents(dataset, params["batch"])
        if not documents:
            return not_found("Documents not found.")
        data = [indexing_status_json(document, store.epoch) for document in documents]
        if core.shuffle and len(data) > 1:
            # The batch query has no ORDER BY; the real order changed between polls (05b).
            core.rng.shuffle(data)
        return json_response({"data": data})


async def list_documents(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``GET .../documents?page=&limit=&keyword=&status=``, newest first."""
    query = request.query
    page = max(1, _int_arg(query.get("page"), 1))
    limit = _int_arg(query.get("limit"), 20)
    limit = limit if limit >= 1 else 20
    keyword = query.get("keyword") or ""
    status = (query.get("status") or "").lower()  # INDEXING works too (15)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "list_documents")
        if isinstance(dataset, web.Response):
            return dataset
        now = store.clock()
        documents = sorted(
            dataset.documents.values(), key=lambda d: (d.created_at, d.position), reverse=True
        )
        if keyword:
            matches = like_pattern(keyword).search
            documents = [d for d in documents if matches(d.name)]
        if status in DISPLAY_STATUSES:
            for document in documents:
                document.timeline.advance(now)
            documents = [d for d in documents if document_display_status(d) == status]
        # Dify caps a page at 100 items but computes has_more as `len(items) == limit`.
        per_page = min(limit, 100)
        items = documents[(page - 1) * per_page : page * per_page]
        for document in items:  # only the page's documents need their state brought up to now
            document.timeline.advance(now)
        return json_response(
            {
                "data": [
                    document_json(
                        d,
                        store.epoch,
                        store.account_id,
                        summary=summary_state(
                            d.timeline, dataset.summaries, dataset.indexing_technique, now
                        ),
                    )
                    for d in items
                ],
                "has_more": len(items) == limit,
                "limit": limit,
                "total": len(documents),
                "page": page,
            }
        )


async def get_document(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``GET .../documents/{document_id}?metadata=all|only|without``."""
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "get_document")
        if isinstance(dataset, web.Response):
            return dataset
        document = dataset.documents.get(params["document_id"].lower())
        if document is None:
            return not_found("Document not found.")
        metadata = request.query.get("metadata", "all")
        if metadata not in ("all", "only", "without"):
            return error_response(400, "invalid_metadata", f"Invalid metadata value: {metadata}")
        now = store.clock()
        document.timeline.advance(now)
        summary = summary_state(
            document.timeline, dataset.summaries, dataset.indexing_technique, now
        )
        return json_response(
            document_detail_json(
                document, dataset, store.epoch, store.account_id, metadata, summary
            )
        )


async def delete_dataset(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``DELETE /v1/datasets/{dataset_id}``: 204; its batches then answer ``Dataset not found.``."""
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "delete_dataset")
        if isinstance(dataset, web.Response):
            return dataset
        store.delete_dataset(dataset)
        return no_content()


async def delete_document(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``DELETE .../documents/{document_id}``: 204 with an empty body."""
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "delete_document")
        if isinstance(dataset, web.Response):
            return dataset
        document = dataset.documents.get(params["document_id"].lower())
        if document is not None and document.state.archived:
            return error_response(
                403, "archived_document_immutable", "The archived document is not editable."
            )
        if not store.delete_document(dataset, params["document_id"]):
            return not_found("Document Not Exists.")
        return no_content()


# -- retrieval -------------------------------------------------------------------------------


def _top_k(model: dict[str, Any] | None, dataset: Dataset) -> int:
    if model is None:
        return int(dataset.retrieval_model["top_k"])
    value = model.get("top_k")
    return value if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_TOP_K


def _threshold(model: dict[str, Any] | None, dataset: Dataset) -> float | None:
    model = model if model is not None else dataset.retrieval_model
    value = model.get("score_threshold")
    if model.get("score_threshold_enabled") and isinstance(value, (int, float)):
        return float(value)
    return None


async def retrieve(core: Core, request: web.BaseRequest, params: dict[str, str]) -> web.Response:
    """``POST .../retrieve`` (alias ``hit-testing``): keyword search over completed segments.

    ``top_k`` comes from the request's ``retrieval_model`` (4 when it has none), else from the
    dataset's retrieval model (2 for a new dataset, as recorded in 00). An economy dataset
    answers a vector search (its stored default included) with Dify's 400 (recordings 06b,
    17); every other search is answered with keyword search.
    """
    raw = await _body(request)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "retrieve")
        if isinstance(dataset, web.Response):
            return dataset
        payload = _payload(raw, "HitTestingPayload")
        if isinstance(payload, web.Response):
            return payload
        query = payload.string("query", max_length=250)
        model = payload.mapping("retrieval_model")
        payload.require("retrieval_model", model, REQUIRED_RETRIEVAL_FIELDS)
        payload.mapping("external_retrieval_model")
        message = payload.message()
        if message is not None:
            return invalid_param(message)
        if not query:
            return invalid_param("Query or attachment_ids is required")
        unsearchable = search_error(dataset, model)
        if unsearchable is not None:
            return invalid_param(unsearchable)
        now = store.clock()
        accept = document_filter(dataset, model, now, store.epoch)
        if isinstance(accept, web.Response):
            return accept
        hits = keyword_search(
            dataset,
            query,
            top_k=_top_k(model, dataset),
            score_threshold=_threshold(model, dataset),
            now=now,
            accept=accept,
            include_unmatched=ranks_everything(dataset, model),
        )
        records = [
            record_json(hit.document, hit.segment, hit.score, store.epoch, store.account_id, now)
            for hit in hits
        ]
        # Recording 06 shows "query" as the plain string, not {"content": ...}.
        return json_response({"query": query, "records": records})


HANDLERS: dict[str, Handler] = {
    "create_dataset": create_dataset,
    "get_dataset": get_dataset,
    "delete_dataset": delete_dataset,
    "create_by_text": create_by_text,
    "create_by_file": create_by_file,
    "indexing_status": indexing_status,
    "list_documents": list_documents,
    "get_document": get_document,
    "delete_document": delete_document,
    "retrieve": retrieve,
}
