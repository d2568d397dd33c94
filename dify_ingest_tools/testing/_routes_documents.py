"""Handlers of the maintenance endpoints: updates, status actions, metadata and segments.

Recorded from a real Dify 1.14.1 in ``recorded/09`` to ``16``; the precedence of the checks
(dataset, payload, document, availability) follows those recordings.
"""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from aiohttp import web

from ._core import Core
from ._documents_state import STATUS_TASK_SECONDS, MetaField
from ._documents_views import BUILT_IN_FIELDS, field_json, segment_json, visible_segments
from ._http import error_response, invalid_param, json_response, no_content, not_found
from ._route_steps import Handler, _body, _dataset, _int_arg, _payload
from ._state import Dataset, Document, FileInfo
from ._timeline import COMPLETED
from ._updates import document_display_status, update_in_place
from ._uploads import FILE_TOO_LARGE, extract_text, read_multipart, supported
from ._validation import FieldError, Payload, validation_message
from ._views import document_json

ACTIONS = ("enable", "disable", "archive", "un_archive")
METADATA_TYPES = ("string", "number", "time")
SEGMENT_STATUSES = ("waiting", "indexing", "completed", "error", "re_segment")
_SUCCESS = {"result": "success"}
_NOT_AVAILABLE = "Document is not available"
_NEEDS_SOURCE = "Data source or Process rule is required"
_INTERNAL = {"message": "Internal Server Error", "code": "unknown", "status": 500}


def _document(dataset: Dataset, document_id: str) -> Document | None:
    return dataset.documents.get(document_id.lower())


def _updated(core: Core, document: Document) -> web.Response:
    store = core.store
    body = document_json(document, store.epoch, store.account_id, indexing_status="waiting")
    return json_response({"document": body, "batch": document.batch})


def _available(document: Document, now: float) -> bool:
    document.timeline.advance(now)
    return document_display_status(document) == "available"


# -- updates ---------------------------------------------------------------------------------


async def update_by_text(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``POST .../documents/{id}/update-by-text`` (and the deprecated ``update_by_text``)."""
    raw = await _body(request)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "update_by_text")
        if isinstance(dataset, web.Response):
            return dataset
        payload = _payload(raw, "DocumentTextUpdate")
        if isinstance(payload, web.Response):
            return payload
        name = payload.string("name", required=False, nullable=True)
        text = payload.string("text", required=False, nullable=True)
        process_rule = payload.mapping("process_rule")
        message = payload.message()
        if message is not None:
            return invalid_param(message)
        if text is not None and name is None:
            error = FieldError(
                "",
                "Value error, name is required when text is provided",
                "value_error",
                payload.data,
            )
            return invalid_param(validation_message("DocumentTextUpdate", [error]))
        document = _document(dataset, params["document_id"])
        if document is None:
            return not_found("Document not found")
        if not _available(document, store.clock()):
            return invalid_param(_NOT_AVAILABLE)
        if text is None and process_rule is None:
            return invalid_param(_NEEDS_SOURCE)
        update_in_place(store, dataset, document, name=name, text=text, process_rule=process_rule)
        return _updated(core, document)


async def update_by_file(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``PATCH .../documents/{id}`` (canonical) and ``POST .../update-by-file`` (aliases)."""
    files, form = await read_multipart(request, core.max_file_size)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "update_by_file")
        if isinstance(dataset, web.Response):
            return dataset
        try:
            args = json.loads(form["data"]) if "data" in form else {}
        except ValueError as exc:
            return invalid_param(str(exc))
        payload = Payload("KnowledgeConfig", args)
        name = payload.string("name", required=False, nullable=True)
        process_rule = payload.mapping("process_rule")
        message = payload.message()
        if message is not None:
            return invalid_param(message)
        upload = next((part for part in files if part[0] == "file"), None)
        file: FileInfo | None = None
        text: str | None = None
        if upload is not None:
            _, filename, content, content_type = upload
            extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
            # The upload is stored (and its type checked) before the document is looked at.
            if not supported(extension):
                return error_response(415, "unsupported_file_type", "File type not allowed.")
            if content is None:
                return error_response(413, "file_too_large", FILE_TOO_LARGE)
            text, _ = extract_text(extension, content, store.new_id()[:8])
            mime = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
            file = FileInfo(filename, extension, mime, len(content))
        document = _document(dataset, params["document_id"])
        if document is None:
            return not_found("Document not found")
        if not _available(document, store.clock()):
            return invalid_param(_NOT_AVAILABLE)
        if file is None and process_rule is None:
            return invalid_param(_NEEDS_SOURCE)
        new_name = name or (file.name if file is not None else None)
        update_in_place(
            store,
            dataset,
            document,
            name=new_name,
            text=text,
            file=file,
            process_rule=process_rule,
        )
        return _updated(core, document)


# -- enable / disable / archive --------------------------------------------------------------


def _refusal(document: Document, action: str, now: float) -> str | None:
    if document.state.locked(now):
        return f"Document:{document.name} is being indexed, please try again later"
    if action == "disable" and document.state.enabled:
        document.timeline.advance(now)
        if document.timeline.status != COMPLETED:
            return f"Document: {document.name} is not completed."
    return None


def _apply(document: Document, action: str, now: float, seconds: float) -> None:
    state = document.state
    if action == "enable" and not state.enabled:
        state.enabled, state.disabled_at = True, None
        state.change_index(now, seconds, not state.archived)
    elif action == "disable" and state.enabled:
        state.enabled, state.disabled_at = False, now
        state.change_index(now, seconds, False)
    elif action == "archive" and not state.archived:
        state.archived = True
        if state.enabled:
            state.change_index(now, seconds, False)
    elif action == "un_archive" and state.archived:
        state.archived = False
        if state.enabled:
            state.change_index(now, seconds, True)


async def document_status(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``PATCH .../documents/status/{action}`` with ``{"document_ids": [...]}``."""
    raw = await _body(request)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "document_status")
        if isinstance(dataset, web.Response):
            return dataset
        action = params["action"]
        if action not in ACTIONS:
            return error_response(
                400, "invalid_action", f"Invalid action: {action}. Must be one of {list(ACTIONS)}"
            )
        payload = _payload(raw, "DocumentStatusPayload")
        if isinstance(payload, web.Response):
            return payload
        ids = payload.data.get("document_ids") if isinstance(payload.data, dict) else None
        if not isinstance(ids, list):
            return invalid_param("document_ids is required")
        now = store.clock()
        # Unknown ids are skipped; every document is checked before any is changed.
        documents = [d for i in ids if isinstance(i, str) and (d := _document(dataset, i))]
        for document in documents:
            refusal = _refusal(document, action, now)
            if refusal is not None:
                return error_response(400, "invalid_action", refusal)
        seconds = STATUS_TASK_SECONDS * store.time_scale
        for document in documents:
            _apply(document, action, now, seconds)
        return json_response(_SUCCESS)


# -- metadata fields -------------------------------------------------------------------------


def _name_problem(dataset: Dataset, name: str, current: MetaField | None = None) -> str | None:
    if len(name) > 255:
        return "Metadata name cannot exceed 255 characters."
    if any(name == builtin for builtin, _ in BUILT_IN_FIELDS):
        return "Metadata name already exists in Built-in fields."
    existing = dataset.metadata.by_name(name)
    if existing is not None and existing is not current:
        return "Metadata name already exists."
    return None


async def metadata_fields(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``GET .../metadata`` (list) and ``POST .../metadata`` (create, 201)."""
    raw = await _body(request)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "metadata_fields")
        if isinstance(dataset, web.Response):
            return dataset
        if request.method == "GET":
            fields = [field_json(dataset, i, count=True) for i in dataset.metadata.fields]
            return json_response(
                {
                    "doc_metadata": fields,
                    "built_in_field_enabled": dataset.metadata.built_in_enabled,
                }
            )
        payload = _payload(raw, "MetadataArgs")
        if isinstance(payload, web.Response):
            return payload
        kind = payload.literal("type", METADATA_TYPES, required=True)
        name = payload.string("name")
        message = payload.message()
        if message is not None:
            return invalid_param(message)
        assert kind is not None
        assert name is not None
        problem = _name_problem(dataset, name)
        if problem is not None:
            return invalid_param(problem)
        field = MetaField(id=store.new_id(), name=name, type=kind)
        dataset.metadata.fields[field.id] = field
        return json_response(field_json(dataset, field.id, count=False), 201)


async def metadata_field(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``PATCH .../metadata/{id}`` (rename) and ``DELETE`` (204, unknown ids too)."""
    raw = await _body(request)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "metadata_field")
        if isinstance(dataset, web.Response):
            return dataset
        field_id = params["metadata_id"].lower()
        field = dataset.metadata.fields.get(field_id)
        if request.method == "DELETE":
            if field is not None:
                del dataset.metadata.fields[field_id]
                for document in dataset.documents.values():
                    document.state.metadata.pop(field_id, None)
            return no_content()
        payload = _payload(raw, "MetadataUpdatePayload")
        if isinstance(payload, web.Response):
            return payload
        name = payload.string("name")
        message = payload.message()
        if message is not None:
            return invalid_param(message)
        assert name is not None
        if field is None:
            return invalid_param("Metadata not found.")
        problem = _name_problem(dataset, name, field)
        if problem is not None:
            return invalid_param(problem)
        field.name = name
        for document in dataset.documents.values():
            entry = document.state.metadata.get(field_id)
            if entry is not None:
                entry["name"] = name
        return json_response(field_json(dataset, field_id, count=False))


async def builtin_fields(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``GET .../metadata/built-in``."""
    with core.store.lock:
        dataset = _dataset(core, request, params, "builtin_fields")
        if isinstance(dataset, web.Response):
            return dataset
        return json_response({"fields": [{"name": n, "type": t} for n, t in BUILT_IN_FIELDS]})


async def builtin_action(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``POST .../metadata/built-in/{action}``: ``enable`` / ``disable``; anything else 200."""
    with core.store.lock:
        dataset = _dataset(core, request, params, "builtin_action")
        if isinstance(dataset, web.Response):
            return dataset
        if params["action"] in ("enable", "disable"):
            dataset.metadata.built_in_enabled = params["action"] == "enable"
        return json_response(_SUCCESS)


def _operations(data: Any) -> list[dict[str, Any]] | str:
    operations = data.get("operation_data") if isinstance(data, dict) else None
    if not isinstance(operations, list):
        return "operation_data is required"
    for operation in operations:
        if not isinstance(operation, dict) or not isinstance(operation.get("document_id"), str):
            return "document_id is required"
        if not isinstance(operation.get("metadata_list"), list):
            return "metadata_list is required"
    return operations


async def documents_metadata(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``POST .../documents/metadata``: set values; ``partial_update`` merges."""
    raw = await _body(request)
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "documents_metadata")
        if isinstance(dataset, web.Response):
            return dataset
        payload = _payload(raw, "MetadataOperationData")
        if isinstance(payload, web.Response):
            return payload
        operations = _operations(payload.data)
        if isinstance(operations, str):
            return invalid_param(operations)
        targets = []
        for operation in operations:
            document = _document(dataset, operation["document_id"])
            if document is None:
                return invalid_param("Document not found.")
            targets.append((document, operation))
        for document, operation in targets:
            values = {} if not operation.get("partial_update") else dict(document.state.metadata)
            for item in operation["metadata_list"]:
                field = dataset.metadata.fields.get(str(item.get("id", "")).lower())
                if field is None:
                    continue  # a binding to no field: Dify's detail never shows it
                values[field.id] = {
                    "name": field.name,
                    "type": field.type,
                    "value": item.get("value"),
                }
            # Keep the dataset's field order, as Dify's detail lists them.
            document.state.metadata = {i: values[i] for i in dataset.metadata.fields if i in values}
            document.updated_at = store.clock()
        return json_response(_SUCCESS)


# -- segments --------------------------------------------------------------------------------


async def list_segments(
    core: Core, request: web.BaseRequest, params: dict[str, str]
) -> web.Response:
    """``GET .../documents/{id}/segments?page=&limit=&keyword=&status=``."""
    query = request.query
    page = max(1, _int_arg(query.get("page"), 1))
    limit = _int_arg(query.get("limit"), 20)
    limit = min(limit if limit >= 1 else 20, 100)
    keyword = (query.get("keyword") or "").lower()
    statuses = query.getall("status", [])
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "list_segments")
        if isinstance(dataset, web.Response):
            return dataset
        document = _document(dataset, params["document_id"])
        if document is None:
            return not_found("Document not found.")
        if any(status not in SEGMENT_STATUSES for status in statuses):
            # Dify looks the value up in its enum and fails with its generic 500 (13).
            return json_response(_INTERNAL, 500)
        document.timeline.advance(store.clock())
        items = [
            segment_json(document, segment, store.epoch, store.account_id)
            for segment in visible_segments(document)
        ]
        if keyword:
            items = [item for item in items if keyword in item["content"].lower()]
        if statuses:
            items = [item for item in items if item["status"] in statuses]
        chosen = items[(page - 1) * limit : page * limit]
        return json_response(
            {
                "data": chosen,
                "doc_form": document.doc_form,
                "total": len(items),
                "has_more": len(chosen) == limit,
                "limit": limit,
                "page": page,
            }
        )


async def get_segment(core: Core, request: web.BaseRequest, params: dict[str, str]) -> web.Response:
    """``GET .../documents/{id}/segments/{segment_id}``."""
    store = core.store
    with store.lock:
        dataset = _dataset(core, request, params, "get_segment")
        if isinstance(dataset, web.Response):
            return dataset
        document = _document(dataset, params["document_id"])
        if document is None:
            return not_found("Document not found.")
        document.timeline.advance(store.clock())
        wanted = params["segment_id"].lower()
        segment = next((s for s in visible_segments(document) if s.id == wanted), None)
        if segment is None:
            return not_found("Segment not found.")
        item = segment_json(document, segment, store.epoch, store.account_id)
        return json_response({"data": item, "doc_form": document.doc_form})


DOCUMENT_HANDLERS: dict[str, Handler] = {
    "update_by_text": update_by_text,
    "update_by_file": update_by_file,
    "document_status": document_status,
    "metadata_fields": metadata_fields,
    "metadata_field": metadata_field,
    "builtin_fields": builtin_fields,
    "builtin_action": builtin_action,
    "documents_metadata": documents_metadata,
    "list_segments": list_segments,
    "get_segment": get_segment,
}
