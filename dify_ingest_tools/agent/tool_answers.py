"""Answers of the tool set's upload, search and list tools (the status answers are `answers`).

Kept apart from `answers` so each stays one subject: these format what an agent gets back
from writing and reading a knowledge base, within a size budget a model's context can afford.
Every field that came from Dify (names, passages, ids, statuses, errors) is cut with
`answers.cut` or `_base.shown.shown` (redacted, control characters escaped, bounded), and
`fit_answer` is the last step of every tool call: the text stays within ``answer_chars`` and
the structured content within `STRUCTURED_FACTOR` times that, whatever the server sent (a
1 MB document name makes an answer of the usual size).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dify_ingest_tools._base.shown import ID_LIMIT, NAME_LIMIT, shown
from dify_ingest_tools.agent.answers import cut
from dify_ingest_tools.agent.tool_schemas import HitOutput, ListedDocument
from dify_ingest_tools.models.created import CreatedDocument
from dify_ingest_tools.models.documents import DifyDocument
from dify_ingest_tools.models.retrieval import RetrievedChunk

#: Below this many characters a passage says nothing useful: it is left out instead.
MIN_HIT_CHARS = 80
#: The structured content repeats the text (``answer``) and holds the same facts as fields:
#: at most this many times ``answer_chars``, JSON keys included.
STRUCTURED_FACTOR = 3
# Notes (pending uploads) take at most this share of a search answer.
_NOTES_SHARE = 4
# A document's error in the list (the list's lines share the budget).
_LIST_ERROR_CHARS = 300
# The shortest a name or error in the list gets before documents are left out instead.
_LIST_FLOOR = 16
_TEXT_CUT = "\n(The rest of this answer was cut to keep it short.)"


def _id(value: str | None) -> str | None:
    return shown(value, ID_LIMIT) if value is not None else None


def name_shown(value: str, limit: int = NAME_LIMIT) -> str:
    """A document name from Dify as an answer shows it (safe, on one line, cut)."""
    return cut(value, limit)[0]


def upload_answer(created: CreatedDocument, indexing: str | None) -> str:
    """What ``upload_text`` says: where the document went, its batch, and what to do next."""
    head = (
        f"Uploaded '{name_shown(created.name)}' to knowledge base {_id(created.dataset_id)} as "
        f"document {_id(created.document_id)}, batch {_id(created.batch)}."
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


def _notes(notes: Sequence[str], budget: int) -> list[str]:
    """The notes that fit ``budget`` characters (each cut), and a count of the rest."""
    kept: list[str] = []
    used = 0
    for note in notes:
        text = cut(note, max(budget - used, MIN_HIT_CHARS))[0]
        if used + len(text) > budget and kept:
            kept.append(f"({len(notes) - len(kept)} more note(s) left out.)")
            break
        kept.append(text)
        used += len(text) + 1
    return kept


def search_hits(
    chunks: Sequence[RetrievedChunk],
    names: Mapping[str, str],
    *,
    hit_chars: int,
    budget: int,
) -> tuple[list[HitOutput], int]:
    """The hits that fit ``budget`` characters of answer lines (each passage at most
    ``hit_chars``), every field safe to show; and how many were left out."""
    hits: list[HitOutput] = []
    used = left_out = 0
    for chunk in chunks:
        raw_name = chunk.document_name or names.get(chunk.document_id or "")
        hit = HitOutput(
            document_id=_id(chunk.document_id),
            document_name=name_shown(raw_name) if raw_name else None,
            score=chunk.score,
            segment_id=_id(chunk.segment_id),
            position=chunk.position,
            content="",
        )
        frame = len(_hit_line(len(hits) + 1, hit)) + 1
        room = min(hit_chars, budget - used - frame)
        if room < MIN_HIT_CHARS:
            left_out += 1
            continue
        content, truncated = cut(chunk.content, room)
        hits.append(hit.model_copy(update={"content": content, "truncated": truncated}))
        used += frame + len(content)
    return hits, left_out


def search_answer(
    dataset_id: str,
    query: str,
    chunks: Sequence[RetrievedChunk],
    names: Mapping[str, str],
    *,
    notes: Sequence[str],
    hit_chars: int,
    answer_chars: int,
) -> tuple[str, list[HitOutput]]:
    """The passages found, one line each, then what may be missing and why; and the hits
    shown. The passages get what the head and the notes leave of ``answer_chars``."""
    query = cut(query, 300)[0]
    kept_notes = _notes(notes, answer_chars // _NOTES_SHARE) if notes else []
    head = f"{len(chunks)} passage(s) from knowledge base {dataset_id} for '{query}':"
    tail = f"({len(chunks)} more passage(s) left out to keep this answer short.)"
    reserved = len(head) + len(tail) + sum(len(note) + 1 for note in kept_notes) + 2
    hits, left_out = search_hits(
        chunks, names, hit_chars=hit_chars, budget=max(answer_chars - reserved, 0)
    )
    if hits:
        lines = [f"{len(hits)} passage(s) from knowledge base {dataset_id} for '{query}':"]
        lines += [_hit_line(number, hit) for number, hit in enumerate(hits, 1)]
        if left_out:
            lines.append(f"({left_out} more passage(s) left out to keep this answer short.)")
    else:
        lines = [
            f"No passages in knowledge base {dataset_id} match '{query}'. Try other words, or "
            "check that the documents are indexed (status 'available')."
        ]
    return "\n".join([*lines, *kept_notes]), hits


def listed_documents(
    documents: Sequence[DifyDocument],
    known: Mapping[str, tuple[str, str | None]],
    *,
    name_chars: int = NAME_LIMIT,
    error_chars: int = _LIST_ERROR_CHARS,
) -> list[ListedDocument]:
    """The list's documents, every field safe to show (``known``: id -> (name, batch) of
    the uploads these tools made)."""
    listed = []
    for doc in documents:
        status = doc.display_status or (str(doc.indexing_status) if doc.indexing_status else "")
        name, batch = known.get(doc.id, (doc.name, None))
        listed.append(
            ListedDocument(
                id=shown(doc.id, ID_LIMIT),
                name=name_shown(doc.name or name or "(no name)", name_chars),
                status=shown(status, ID_LIMIT) or "unknown",
                batch=_id(batch),
                error=cut(doc.error, error_chars)[0] if status == "error" and doc.error else None,
            )
        )
    return listed


def documents_answer(
    dataset_id: str,
    documents: Sequence[DifyDocument],
    known: Mapping[str, tuple[str, str | None]],
    *,
    page: int,
    page_size: int,
    total: int,
    has_more: bool,
    answer_chars: int,
) -> tuple[str, list[ListedDocument]]:
    """The documents of one page: name, id, status (and batch when these tools uploaded it),
    and the documents shown. Long names and errors are cut shorter until the page fits
    ``answer_chars``; if even the shortest do not fit, the last documents are left out."""
    documents = documents[:page_size]  # a server that ignores ``limit`` gets no more room
    name_chars, error_chars = NAME_LIMIT, _LIST_ERROR_CHARS
    while True:
        listed = listed_documents(documents, known, name_chars=name_chars, error_chars=error_chars)
        text = _documents_text(dataset_id, listed, len(documents), page, page_size, total, has_more)
        if len(text) <= answer_chars or name_chars <= _LIST_FLOOR:
            break
        name_chars = max(name_chars // 2, _LIST_FLOOR)
        error_chars = max(error_chars // 2, _LIST_FLOOR * 4)
    while len(text) > answer_chars and len(listed) > 1:
        listed.pop()
        text = _documents_text(dataset_id, listed, len(documents), page, page_size, total, has_more)
    return text, listed


def _documents_text(
    dataset_id: str,
    documents: Sequence[ListedDocument],
    on_page: int,
    page: int,
    page_size: int,
    total: int,
    has_more: bool,
) -> str:
    if not documents:
        if page > 1 and total:
            return (
                f"Knowledge base {dataset_id} has {total} document(s); page {page} is past "
                "the last one."
            )
        return f"Knowledge base {dataset_id} has no documents matching this request."
    first = (page - 1) * page_size + 1
    shown_range = f"{first}-{first + len(documents) - 1}"
    lines = [f"Knowledge base {dataset_id} has {total} document(s); showing {shown_range}:"]
    for doc in documents:
        line = f"- {doc.name} (id {doc.id}): {doc.status}"
        if doc.batch:
            line += f", batch {doc.batch}"
        if doc.error:
            line += f", error: {doc.error}"
        lines.append(line)
    if len(documents) < on_page:
        lines.append(
            f"({on_page - len(documents)} more document(s) of this page left out to keep this "
            "answer short: narrow the list with a keyword.)"
        )
    if has_more:
        lines.append(f"More documents follow: ask for page {page + 1}.")
    lines.append(
        "Only 'available' documents are searchable. Dify's list does not show upload batches; "
        "a batch is known only for documents uploaded through these tools."
    )
    return "\n".join(lines)


# -- the last step of every call --------------------------------------------------------------


def _clean(value: Any, limit: int) -> Any:
    """A JSON value with every string safe to show and at most ``limit`` characters."""
    if isinstance(value, str):
        return shown(value, limit)
    if isinstance(value, dict):
        return {shown(str(key), ID_LIMIT): _clean(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item, limit) for item in value]
    return value


def _size(data: Mapping[str, Any]) -> int:
    return len(json.dumps(data, ensure_ascii=False))


def fit_answer(text: str, data: Mapping[str, Any], budget: int) -> tuple[str, dict[str, Any]]:
    """The answer within its budget, whatever the parts were: the text at most ``budget``
    characters (cut at a line, and said so), every string of the structured content safe to
    show, and the whole of it at most `STRUCTURED_FACTOR` x ``budget`` characters (the longest
    lists lose their last items first). The builders above keep within it already; this is
    the guarantee for what they did not foresee."""
    if len(text) > budget:
        room = max(budget - len(_TEXT_CUT), 0)
        line = text.rfind("\n", 0, room)
        text = text[: line if line > room // 2 else room] + _TEXT_CUT
        text = text[:budget]
    fitted: dict[str, Any] = _clean({k: v for k, v in data.items() if k != "answer"}, budget)
    if "answer" in data:
        fitted = {"answer": text, **fitted}
    cap = STRUCTURED_FACTOR * budget
    while _size(fitted) > cap:
        lists = [key for key, value in fitted.items() if isinstance(value, list) and value]
        if not lists:
            break
        longest = max(lists, key=lambda key: len(json.dumps(fitted[key], ensure_ascii=False)))
        items = fitted[longest]
        # Far over: halve the list (a batch of 10,000 documents); near: one item at a time.
        keep = len(items) // 2 if _size(fitted) > 2 * cap else len(items) - 1
        fitted[longest] = items[:keep]
    return text, fitted
