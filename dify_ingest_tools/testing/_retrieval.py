"""Keyword retrieval over the segments that finished indexing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._state import Dataset, Document, Segment
from ._text import terms

#: What Dify's ``HitTestingPayload`` requires in a ``retrieval_model`` (recording 17).
REQUIRED_RETRIEVAL_FIELDS = ("search_method", "reranking_enable", "score_threshold_enabled")


def search_error(dataset: Dataset, model: dict[str, Any] | None) -> str | None:
    """The 400 message a search the dataset's index cannot run gets, else ``None``.

    An economy dataset has only its keyword table. Without a ``retrieval_model`` Dify uses the
    stored one, which for a dataset made through the API is ``semantic_search`` (recording 17,
    though the dataset's detail shows ``keyword_search``). A vector search then needs the
    workspace's default embedding model, which a server with economy datasets only lacks
    (17); full-text search looks for a vector table that was never made (06b).
    """
    if dataset.indexing_technique != "economy":
        return None
    method = (model if model is not None else dataset.retrieval_model).get("search_method")
    if method in ("semantic_search", "hybrid_search"):
        return "Default model not found for text-embedding"
    if method == "full_text_search":
        table = f"embedding_vector_index_{dataset.id.replace('-', '_')}_nod"
        return (
            f'relation "{table}" does not exist\n'
            f"LINE 2:                     FROM embedding_Vector_index_{table[23:35]}...\n"
            "                                 ^\n"
        )
    return None


@dataclass(frozen=True)
class Hit:
    """A segment that matched, with its score."""

    document: Document
    segment: Segment
    score: float


def keyword_search(
    dataset: Dataset,
    query: str,
    *,
    top_k: int,
    score_threshold: float | None,
    now: float,
    accept: Callable[[Document], bool] | None = None,
    include_unmatched: bool = False,
) -> list[Hit]:
    """Rank completed segments by the share of the query's words they contain.

    Only segments whose indexing finished are searched, so a document still ``indexing``
    already yields partial hits, as in Dify (only ``status == completed`` segments are
    returned). The score is the fraction of distinct query words found in the segment
    (0 < score <= 1); segments with no query word are not returned.

    Args:
        dataset: Where to search.
        query: The query text.
        top_k: The maximum number of hits.
        score_threshold: Drop hits scoring below this, when not ``None``.
        now: The clock reading (documents are advanced to it first).
        accept: Only documents it accepts are searched (disabled or archived documents,
            metadata filters).
        include_unmatched: Rank segments without any query word too (score 0.0), as a
            vector index returns its nearest neighbours whatever they say.

    Returns:
        Hits, best first; ties keep document order, then segment order.
    """
    wanted = terms(query)
    if not wanted or top_k <= 0:
        return []
    hits: list[Hit] = []
    for document in dataset.documents.values():
        document.timeline.advance(now)
        if accept is not None and not accept(document):
            continue
        for segment in document.retrievable_segments():
            found = len(wanted & terms(segment.content))
            if not found and not include_unmatched:
                continue
            score = found / len(wanted)
            if score_threshold is not None and score < score_threshold:
                continue
            hits.append(Hit(document, segment, score))
    hits.sort(key=lambda hit: -hit.score)
    return hits[:top_k]
