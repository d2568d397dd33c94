"""JSON shapes of datasets, documents and retrieval records, keyed as the recordings show."""

from __future__ import annotations

from typing import Any

from ._clock import Epoch
from ._documents_views import metadata_json, state_json
from ._state import Dataset, Document, Segment, UploadFile
from ._timeline import COMPLETED, display_status


def _upload_json(upload: UploadFile, epoch: Epoch, created_by: str) -> dict[str, Any]:
    return {
        "id": upload.id,
        "name": upload.name,
        "size": upload.size,
        "extension": upload.extension,
        "mime_type": upload.mime_type,
        "created_by": created_by,
        # The only float timestamp in the recordings (e.g. 1795880405.555714).
        "created_at": round(epoch.seconds(upload.created_at), 6),
    }


def document_json(
    document: Document,
    epoch: Epoch,
    created_by: str,
    *,
    indexing_status: str | None = None,
    summary: tuple[bool, str | None] = (False, None),
) -> dict[str, Any]:
    """The document object of create responses and of the list endpoint.

    Args:
        document: The document (its timeline already advanced).
        epoch: Maps clock readings to epoch seconds.
        created_by: The account id reported as creator.
        indexing_status: Overrides the reported status (``DocumentScript.initial_status``).
        summary: ``(need_summary, summary_index_status)`` (`_summaries.summary_state`).
    """
    timeline = document.timeline
    status = indexing_status or timeline.status
    return {
        "id": document.id,
        "position": document.position,
        "data_source_type": "upload_file",
        "data_source_info": {"upload_file_id": document.upload.id},
        "data_source_detail_dict": {
            "upload_file": _upload_json(document.upload, epoch, created_by)
        },
        "dataset_process_rule_id": document.process_rule_id,
        "name": document.name,
        "created_from": "api",
        "created_by": created_by,
        "created_at": epoch.whole(document.created_at),
        "tokens": timeline.tokens,
        # The stored status: list and detail show the stage, only display_status says paused.
        "indexing_status": status,
        "error": timeline.error,
        "enabled": True,
        "disabled_at": None,
        "disabled_by": None,
        "archived": False,
        "display_status": display_status(status, timeline.is_paused),
        "word_count": timeline.word_count,
        "hit_count": 0,
        "doc_form": document.doc_form,
        "doc_metadata": None,
        "summary_index_status": summary[1],
        "need_summary": summary[0],
        # Status actions, updates and metadata (recordings 09-16); same keys, same order.
        **state_json(document, epoch, created_by, status=status),
    }


def indexing_status_json(document: Document, epoch: Epoch) -> dict[str, Any]:
    """One entry of ``GET .../documents/{batch}/indexing-status``: exactly these 12 keys."""
    timeline = document.timeline
    stamps = timeline.stamps
    completed, total = timeline.counts()
    return {
        "id": document.id,
        "indexing_status": timeline.reported_status,
        "processing_started_at": epoch.whole(stamps["processing_started_at"]),
        "parsing_completed_at": epoch.whole(stamps["parsing_completed_at"]),
        "cleaning_completed_at": epoch.whole(stamps["cleaning_completed_at"]),
        "splitting_completed_at": epoch.whole(stamps["splitting_completed_at"]),
        "completed_at": epoch.whole(stamps["completed_at"]),
        "paused_at": epoch.whole(timeline.paused_at) if timeline.is_paused else None,
        "error": timeline.error,
        "stopped_at": epoch.whole(stamps["stopped_at"]),
        "completed_segments": completed,
        "total_segments": total,
    }


def document_detail_json(
    document: Document,
    dataset: Dataset,
    epoch: Epoch,
    created_by: str,
    metadata: str = "all",
    summary: tuple[bool, str | None] = (False, None),
) -> dict[str, Any]:
    """``GET .../documents/{document_id}`` (recording 08), honouring ``?metadata=``."""
    if metadata == "only":
        doc_metadata = metadata_json(document, epoch, as_strings=False)
        return {"id": document.id, "doc_type": None, "doc_metadata": doc_metadata}
    timeline = document.timeline
    stamps = timeline.stamps
    _, total = timeline.counts()
    countable = document.segments[:total] if timeline.started_processing else ()
    latency = None
    started, finished = stamps["processing_started_at"], stamps["completed_at"]
    if timeline.status == COMPLETED and started is not None and finished is not None:
        latency = finished - started
    moments = [document.updated_at, *(v for v in stamps.values() if v is not None)]
    rule = document.process_rule
    detail: dict[str, Any] = {
        "id": document.id,
        "position": document.position,
        "data_source_type": "upload_file",
        # The detail view inlines the upload file where the list shows its id (08).
        "data_source_info": {"upload_file": _upload_json(document.upload, epoch, created_by)},
        "dataset_process_rule_id": document.process_rule_id,
        "dataset_process_rule": {"mode": rule["mode"], "rules": rule["rules"]},
        "document_process_rule": {
            "id": document.process_rule_id,
            "dataset_id": dataset.id,
            "mode": rule["mode"],
            "rules": rule["rules"],
        },
        "name": document.name,
        "created_from": "api",
        "created_by": created_by,
        "created_at": epoch.whole(document.created_at),
        "tokens": timeline.tokens,
        "indexing_status": timeline.status,
        "completed_at": epoch.whole(stamps["completed_at"]),
        "updated_at": epoch.whole(max(moments)),
        "indexing_latency": latency,
        "error": timeline.error,
        "enabled": True,
        "disabled_at": None,
        "disabled_by": None,
        "archived": False,
        "doc_type": None,
        "doc_metadata": None,
        "segment_count": total,
        "average_segment_length": (
            sum(len(s.content) for s in countable) // len(countable) if countable else 0
        ),
        "hit_count": 0,
        "display_status": display_status(timeline.status, timeline.is_paused),
        "doc_form": document.doc_form,
        "doc_language": document.doc_language,
        "summary_index_status": summary[1],
        "need_summary": summary[0],
        **state_json(document, epoch, created_by, as_strings=False),
    }
    if metadata == "without":
        del detail["doc_type"], detail["doc_metadata"]
    return detail


def dataset_json(
    dataset: Dataset, epoch: Epoch, created_by: str, *, detail: bool = False
) -> dict[str, Any]:
    """The dataset object of ``POST /datasets`` and ``GET /datasets/{id}`` (recordings 00, 17).

    The create answer shows the stored retrieval model (``semantic_search`` for a new economy
    dataset). The detail (``detail=True``) is computed: an economy dataset shows
    ``keyword_search`` there and ``embedding_available: true``, though a retrieve without a
    ``retrieval_model`` still uses the stored ``semantic_search`` and fails (recording 17).
    """
    documents = list(dataset.documents.values())
    retrieval = dict(dataset.retrieval_model)
    if detail and dataset.indexing_technique == "economy":
        retrieval["search_method"] = "keyword_search"
    return {
        "id": dataset.id,
        "name": dataset.name,
        "description": dataset.description,
        "provider": "vendor",
        "permission": dataset.permission,
        "data_source_type": "upload_file" if documents else None,
        "indexing_technique": dataset.indexing_technique,
        "app_count": 0,
        "document_count": len(documents),
        "word_count": sum(d.timeline.word_count or 0 for d in documents),
        "created_by": created_by,
        "author_name": "admin",
        "created_at": epoch.whole(dataset.created_at),
        "updated_by": created_by,
        "updated_at": epoch.whole(dataset.updated_at),
        "embedding_model": None,
        "embedding_model_provider": None,
        "embedding_available": True if detail else None,
        "retrieval_model_dict": retrieval,
        "summary_index_setting": {
            "enable": True if dataset.summaries.enabled else None,
            "model_name": "simulated-summary" if dataset.summaries.enabled else None,
            "model_provider_name": "simulator" if dataset.summaries.enabled else None,
            "summary_prompt": None,
        },
        "tags": [],
        "doc_form": "text_model" if documents else None,
        "external_knowledge_info": {
            "external_knowledge_id": None,
            "external_knowledge_api_id": None,
            "external_knowledge_api_name": None,
            "external_knowledge_api_endpoint": None,
        },
        "external_retrieval_model": {
            "top_k": retrieval["top_k"],
            "score_threshold": 0.0,
            "score_threshold_enabled": None,
        },
        "doc_metadata": [],
        "built_in_field_enabled": False,
        "pipeline_id": None,
        "runtime_mode": "general",
        "chunk_structure": None,
        "icon_info": {"icon_type": None, "icon": None, "icon_background": None, "icon_url": None},
        "is_published": False,
        "total_documents": len(documents),
        "total_available_documents": sum(d.timeline.status == COMPLETED for d in documents),
        "enable_api": dataset.enable_api,
        "is_multimodal": False,
    }


def record_json(
    document: Document,
    segment: Segment,
    score: float,
    epoch: Epoch,
    created_by: str,
    now: float,
) -> dict[str, Any]:
    """One retrieve record, as Dify 1.14.1 answers it (recordings 06, 12).

    ``segment.document`` has every field null, whatever the document's name and metadata:
    only ``segment.document_id`` says where a hit comes from. Clients must name hits from the
    document list or detail, and the simulator makes them do so.
    """
    stamps = document.timeline.stamps
    completed = stamps["completed_at"] if document.timeline.status == COMPLETED else now
    return {
        "segment": {
            "id": segment.id,
            "position": segment.position,
            "document_id": document.id,
            "content": segment.content,
            "sign_content": None,
            "answer": None,
            "word_count": len(segment.content),
            "tokens": 0,
            "keywords": list(segment.keywords),
            "index_node_id": segment.index_node_id,
            "index_node_hash": segment.content_hash,
            "hit_count": 0,
            "enabled": True,
            "disabled_at": None,
            "disabled_by": None,
            "status": "completed",
            "created_by": created_by,
            "created_at": None,
            "indexing_at": epoch.whole(stamps["splitting_completed_at"]),
            "completed_at": epoch.whole(completed),
            "error": None,
            "stopped_at": None,
            "document": {
                "id": None,
                "data_source_type": None,
                "name": None,
                "doc_type": None,
                "doc_metadata": None,
            },
        },
        "child_chunks": [],
        "score": score,
        "tsne_position": None,
        "files": [],
        "summary": None,
    }
