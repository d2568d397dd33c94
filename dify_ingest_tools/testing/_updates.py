"""Updating a document in place: what ``update-by-text`` and ``PATCH .../documents/{id}`` do.

Unlike a re-create under the same name (a new batch, the old run's counters left visible),
an update keeps the document's id *and its original batch*, nulls every stage timestamp,
marks the old segments ``re_segment`` (so both counters drop to 0 and the old text is no
longer retrieved) and queues the document again (recordings 09, 10).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from ._state import Dataset, Document, FileInfo, Segment, Store, UploadFile, _stored_rule
from ._text import keywords, split_segments
from ._timeline import COMPLETED, Timeline, display_status


def document_display_status(document: Document) -> str:
    """Dify's ``display_status``, archive and disable included."""
    timeline = document.timeline
    shown = display_status(timeline.status, timeline.is_paused)
    if timeline.status == COMPLETED:
        if document.state.archived:
            return "archived"
        if not document.state.enabled:
            return "disabled"
    return shown


def update_in_place(
    store: Store,
    dataset: Dataset,
    document: Document,
    *,
    name: str | None,
    text: str | None,
    file: FileInfo | None = None,
    process_rule: dict[str, Any] | None = None,
) -> Document:
    """Re-index ``document`` with new text (or its own, under a new rule) in its batch."""
    now = store.clock()
    if name is not None:
        document.name = name
    new_text = document.text if text is None else text
    chosen = store.scripts.get(document.name) or store.default_script
    if text is None and file is None:
        # Same content, new rule: a new process-rule row, same upload file.
        upload = document.upload
    else:
        info = file or FileInfo(name=document.name)
        upload = UploadFile(
            id=store.new_id(),
            name=info.name,
            size=len(new_text.encode()) if info.size is None else info.size,
            extension=info.extension,
            mime_type=info.mime_type,
            created_at=now,
        )
    contents = split_segments(new_text, chosen.segments)
    segments = tuple(
        Segment(
            id=store.new_id(),
            index_node_id=store.new_id(),
            position=index + 1,
            content=content,
            keywords=tuple(keywords(content)),
            content_hash=hashlib.sha256(content.encode()).hexdigest(),
        )
        for index, content in enumerate(contents)
    )
    old = document.timeline
    old.abandon(now)
    technique = dataset.indexing_technique or "economy"
    document.timeline = Timeline(
        chosen.stage_plan(store.time_scale),
        start=now,
        total_segments=len(segments),
        word_count=len(new_text),
        tokens=0 if technique == "economy" else len(new_text) // 4,
        fail_at=chosen.fail_at,
        error=chosen.error,
        stall_at=chosen.stall_at,
        pause_at=chosen.pause_at,
    )
    # The update response still shows the previous word count (recording 09).
    document.timeline.word_count = old.word_count
    document.text = new_text
    document.upload = upload
    document.segments = segments
    document.previous_segments = ()
    if process_rule is not None:
        document.process_rule_id = store.new_id()
        document.process_rule = _stored_rule(process_rule)
    document.updated_at = now
    document.state = replace(document.state, updated=True)
    dataset.updated_at = now
    return document
