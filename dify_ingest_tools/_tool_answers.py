"""Answers of the tool set's upload, search and list tools (the status answers are `answers`).

Kept apart from `answers` so each stays one subject: these format what an agent gets back
from writing and reading a knowledge base, within a size budget a model's context can afford
(cut with `answers.cut`, the one way every answer shortens text).
"""

from __future__ import annotations

from collections.abc import Sequence

from ._tool_schemas import HitOutput, ListedDocument
from .models import CreatedDocument

__all__ = ["documents_answer", "replace_refused_answer", "search_answer", "upload_answer"]


def upload_answer(created: CreatedDocument, indexing: str | None) -> str:
    """What ``upload_text`` says: where the document went, its batch, and what to do next."""
    head = (
        f"Uploaded {created.name!r} to knowledge base {created.dataset_id} as document "
        f"{created.document_id}, batch {created.batch}."
    )
    if indexing is not None:
        return f"{head} {indexing}"
    return (
        f"{head} Dify is indexing it now: it is not searchable until that batch is READY, so "
        "wait for the batch before searching its content."
    )


def replace_refused_answer(dataset_id: str, name: str, document_id: str) -> str:
    """What ``upload_text`` says when the name belongs to a document it did not create."""
    return (
        f"Not uploaded: knowledge base {dataset_id} already has a document named {name!r} "
        f"(id {document_id}) that these tools did not create. It belongs to someone else, so "
        "these tools may not replace it; it was left unchanged. Upload under another name. "
        "Replacing other people's documents needs the tools' allow_replace setting, which "
        "only the user can turn on."
    )


def _hit_line(number: int, hit: HitOutput) -> str:
    name = hit.document_name or (f"document {hit.document_id}" if hit.document_id else "?")
    where = [] if hit.score is None else [f"score {hit.score:.2f}"]
    if hit.position is not None:
        where.append(f"segment {hit.position}")
    detail = f" ({', '.join(where)})" if where else ""
    return f"[{number}] {name}{detail}: {hit.content}"


def search_answer(
    dataset_id: str,
    query: str,
    hits: Sequence[HitOutput],
    *,
    left_out: int,
    notes: Sequence[str],
) -> str:
    """The passages found, one line each, then what may be missing and why."""
    if hits:
        lines = [f"{len(hits)} passage(s) from knowledge base {dataset_id} for {query!r}:"]
        lines += [_hit_line(number, hit) for number, hit in enumerate(hits, 1)]
        if left_out:
            lines.append(f"({left_out} more passage(s) left out to keep this answer short.)")
    else:
        lines = [
            f"No passages in knowledge base {dataset_id} match {query!r}. Try other words, or "
            "check that the documents are indexed (status 'available')."
        ]
    return "\n".join([*lines, *notes])


def documents_answer(
    dataset_id: str,
    documents: Sequence[ListedDocument],
    *,
    page: int,
    first: int,
    total: int,
    has_more: bool,
) -> str:
    """The documents of one page: name, id, status (and batch when these tools uploaded it)."""
    if not documents:
        if page > 1 and total:
            return (
                f"Knowledge base {dataset_id} has {total} document(s); page {page} is past "
                "the last one."
            )
        return f"Knowledge base {dataset_id} has no documents matching this request."
    shown = f"{first}-{first + len(documents) - 1}"
    lines = [f"Knowledge base {dataset_id} has {total} document(s); showing {shown}:"]
    for doc in documents:
        line = f"- {doc.name} (id {doc.id}): {doc.status}"
        if doc.batch:
            line += f", batch {doc.batch}"
        if doc.error:
            line += f", error: {doc.error}"
        lines.append(line)
    if has_more:
        lines.append(f"More documents follow: ask for page {page + 1}.")
    lines.append(
        "Only 'available' documents are searchable. Dify's list does not show upload batches; "
        "a batch is known only for documents uploaded through these tools."
    )
    return "\n".join(lines)
