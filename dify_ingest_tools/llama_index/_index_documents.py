"""How `DifyIndex` turns LlamaIndex's objects into the store core's, and hits back.

Documents are grouped by source into `StoredDocument`s (one Dify document per source file),
whose manifest keeps each member's ``doc_id`` and ``hash``; hits become ``TextNode``s and
``MetadataFilters`` the core's filter dict. Glue only: what a Dify document holds, and how
it is written, is the store core's (`dify_ingest_tools.agent`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.schema import (
    BaseNode,
    Document,
    NodeRelationship,
    NodeWithScore,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from dify_ingest_tools.agent.store_mapping import Hit, Known, StoredDocument, fit_key

__all__ = [
    "SOURCE_KEYS",
    "SourceKey",
    "as_document",
    "dify_filter",
    "group",
    "node_of",
    "ref_doc_hashes",
    "source_of",
    "stored",
    "with_id",
]

SourceKey = str | Callable[[Document], str]
#: Metadata keys that name a document's source file, in order of preference (what
#: ``SimpleDirectoryReader`` sets on every page of a file).
SOURCE_KEYS = ("file_path", "file_name")
_REF_DOCS = "ref_docs"


def source_of(document: Document, source_key: SourceKey | None) -> str:
    """The key (Dify document name) of the source ``document`` belongs to."""
    if callable(source_key):
        key = str(source_key(document))
    elif source_key is not None:
        value = document.metadata.get(source_key)
        key = str(value) if value not in (None, "") else document.doc_id
    else:
        key = next(
            (str(document.metadata[k]) for k in SOURCE_KEYS if document.metadata.get(k)),
            document.doc_id,
        )
    return fit_key(key)


def group(documents: Sequence[Document], source_key: SourceKey | None) -> dict[str, list[Document]]:
    """The documents by source, in order."""
    groups: dict[str, list[Document]] = {}
    for document in documents:
        groups.setdefault(source_of(document, source_key), []).append(document)
    return groups


def stored(key: str, members: Sequence[Document]) -> StoredDocument:
    """One source's documents as one Dify document (their ``doc_id``/``hash`` in its manifest)."""
    return StoredDocument(
        key=key,
        id=key,
        text="\n\n".join(member.get_content() for member in members),
        metadata=dict(members[0].metadata),
        manifest={_REF_DOCS: {member.doc_id: member.hash for member in members}},
    )


def ref_doc_hashes(known: Known | None) -> dict[str, str]:
    """``doc_id`` -> ``hash`` of the documents a Dify document holds (none: not an index's)."""
    if known is None:
        return {}
    found = known.manifest.get(_REF_DOCS)
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def as_document(node: BaseNode) -> Document:
    """A node sent as a document: Dify does its own chunking."""
    return Document(
        text=node.get_content(),
        metadata=dict(node.metadata),
        id_=node.ref_doc_id or node.node_id,
    )


def node_of(hit: Hit) -> NodeWithScore:
    """A hit as a node: the chunk, its source's metadata, a ``SOURCE`` relationship."""
    node = TextNode(text=hit.content, metadata=dict(hit.document.metadata))
    if hit.segment_id:
        node.id_ = hit.segment_id
    source = next(iter(ref_doc_hashes(hit.document)), hit.document.id)
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=source)
    return NodeWithScore(node=node, score=hit.score)


_OPERATORS: dict[FilterOperator, str] = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.TEXT_MATCH: "$contains",
    FilterOperator.CONTAINS: "$contains",
}


def dify_filter(filters: MetadataFilters | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as the filter dict the store core translates."""
    if filters is None or isinstance(filters, Mapping):
        return filters
    clauses: list[dict[str, Any]] = []
    for item in filters.filters:
        if not isinstance(item, MetadataFilter):
            raise ValueError("Dify filters on one level only: nested MetadataFilters")
        operator = _OPERATORS.get(item.operator)
        if operator is None:
            raise ValueError(f"Dify metadata filters cannot express {item.operator.value!r}")
        clauses.append({item.key: {operator: item.value}})
    if filters.condition == FilterCondition.NOT:
        raise ValueError("Dify metadata filters cannot negate a group of filters")
    key = "$or" if filters.condition == FilterCondition.OR else "$and"
    return {key: clauses}


def with_id(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``from_documents``' keyword arguments, once they name the knowledge base."""
    if kwargs.get("dataset_id") is None:
        raise TypeError("from_documents needs dataset_id= or name= (the knowledge base)")
    return kwargs
