"""The ``retrieval_model`` a retrieve sends: decided here once, for every path.

``client.retrieve`` with or without options, the LangChain and LlamaIndex retrievers, the
stores' searches and the toolkit's ``search`` all end in the client's ``retrieve``, which asks
`resolve_retrieval_model` what to send. Two Dify facts make "send nothing" or "send what the
caller gave" wrong (recording ``17_economy_semantic_default_and_whitespace.json``):

- A knowledge base made through the API with ``indexing_technique="economy"`` stores
  ``search_method: semantic_search``. A retrieve without a ``retrieval_model`` uses that stored
  model and fails with ``400 invalid_param "Default model not found for text-embedding"``: an
  economy dataset has only its keyword table.
- Dify validates a ``retrieval_model`` as a whole: ``{"top_k": 3}`` alone is a 400 naming the
  missing ``search_method``, ``reranking_enable`` and ``score_threshold_enabled``.

So every retrieve sends a complete model: the caller's keys over the dataset's own settings,
with ``keyword_search`` on an economy dataset unless the caller named a method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEYWORD_SEARCH = "keyword_search"
#: The keys Dify's ``HitTestingPayload`` requires in a ``retrieval_model`` (recording 17).
REQUIRED_KEYS = ("search_method", "reranking_enable", "score_threshold_enabled")
#: Dify's fallback when a model carries no ``top_k``.
_DEFAULT_TOP_K = 4


@dataclass(frozen=True)
class ResolvedModel:
    """What to send, and whether its ``search_method`` is only a guess.

    A guess happens when neither the caller nor the dataset's settings (nor a technique this
    client created with) said how the dataset is indexed.
    """

    model: dict[str, Any]
    guessed: bool

    def as_keyword_search(self) -> ResolvedModel:
        """The same model searching the keyword table (what an economy dataset has)."""
        return ResolvedModel({**self.model, "search_method": KEYWORD_SEARCH}, guessed=False)


def needs_dataset_settings(retrieval_model: Mapping[str, Any] | None) -> bool:
    """Whether the dataset's settings are needed: the caller's model is not complete."""
    return retrieval_model is None or any(key not in retrieval_model for key in REQUIRED_KEYS)


def resolve_retrieval_model(
    retrieval_model: Mapping[str, Any] | None,
    *,
    dataset_model: Mapping[str, Any] | None,
    technique: str | None,
    top_k: int | None,
    score_threshold: float | None,
) -> ResolvedModel:
    """The complete ``retrieval_model`` of one retrieve.

    Args:
        retrieval_model: The caller's (possibly partial) settings; their keys win.
        dataset_model: The dataset's stored ``retrieval_model_dict``, when it could be read.
        technique: The dataset's indexing technique, when known.
        top_k: Overrides the model's ``top_k``.
        score_threshold: Overrides the model's threshold (and switches it on).
    """
    given = dict(retrieval_model or {})
    stored = {k: v for k, v in (dataset_model or {}).items() if v is not None}
    if technique == "economy":
        # Only the keyword table exists, whatever the stored model says (recording 17).
        stored["search_method"] = KEYWORD_SEARCH
    model = {**stored, **given}
    guessed = not model.get("search_method")
    if guessed:
        model["search_method"] = "semantic_search"
    model.setdefault("reranking_enable", False)
    model.setdefault("top_k", _DEFAULT_TOP_K)
    model.setdefault("score_threshold_enabled", False)
    if top_k is not None:
        model["top_k"] = top_k
    if score_threshold is not None:
        model["score_threshold_enabled"] = True
        model["score_threshold"] = score_threshold
    return ResolvedModel(model, guessed)


def is_missing_embedding_model(status: int | None, message: str) -> bool:
    """Dify's answer to a vector search where no embedding model exists (an economy dataset)."""
    return status == 400 and "Default model not found for text-embedding" in message
