"""How `DifyVectorStore` turns LangChain's arguments into the store core's, and hits back.

LangChain ``Document``s become `StoredDocument`s (named by ``doc_key``), a call's keyword
arguments its write options, and the core's hits ``Document``s again. Glue only: what a
Dify document holds, and how it is written, is the store core's (`dify_ingest_tools.agent`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from langchain_core.documents import Document

from dify_ingest_tools.agent.store import new_id
from dify_ingest_tools.agent.store_mapping import Hit, StoredDocument
from dify_ingest_tools.events import EventCallback

__all__ = [
    "DocKey",
    "WriteDefaults",
    "document_of",
    "documents_of",
    "ids_to_delete",
    "name_of",
    "stored_documents",
    "write_options",
]

DocKey = str | Callable[[Document], str]

_WAIT_KEYS = (
    "timeout",
    "poll_interval",
    "max_poll_interval",
    "stall_timeout",
    "not_found_grace",
    "on_paused",
    "on_empty",
    "summaries",
)


def _key(document: Document, doc_id: str, doc_key: DocKey | None) -> str:
    if doc_key is None:
        return doc_id
    if callable(doc_key):
        return str(doc_key(document))
    value = document.metadata.get(doc_key)
    if value is None or value == "":
        raise ValueError(
            f"doc_key={doc_key!r}: a document has no {doc_key!r} metadata "
            "to name its Dify document by"
        )
    return str(value)


def stored_documents(
    documents: Sequence[Document], ids: Sequence[str | None] | None, doc_key: DocKey | None
) -> list[StoredDocument]:
    """The documents to write: each one's id (given, its own, or a new UUID) and key."""
    if ids is not None and len(ids) != len(documents):
        raise ValueError(f"got {len(ids)} ids for {len(documents)} documents")
    stored = []
    for index, document in enumerate(documents):
        given = ids[index] if ids is not None else None
        doc_id = given or document.id or new_id()
        if not isinstance(doc_id, str):
            raise TypeError(f"ids must be strings, got {type(doc_id).__name__}")
        stored.append(
            StoredDocument(
                key=_key(document, doc_id, doc_key),
                id=doc_id,
                text=document.page_content,
                metadata=dict(document.metadata),
            )
        )
    return stored


class WriteDefaults(Protocol):
    """How a store's writes wait unless a call says otherwise (`DifyVectorStore`'s settings)."""

    wait: bool
    wait_options: dict[str, Any]
    on_event: EventCallback | None
    progress: bool


def write_options(kwargs: Mapping[str, Any], store: WriteDefaults) -> tuple[bool, dict[str, Any]]:
    """``(wait, the wait's options)`` of one write: the store's, overridden by the call's."""
    wait = bool(kwargs.get("wait", store.wait))
    options = {**store.wait_options}
    for key in _WAIT_KEYS:
        if key in kwargs:
            options[key] = kwargs[key]
    on_event = kwargs.get("on_event", store.on_event)
    if on_event is not None:
        options["on_event"] = on_event
    if kwargs.get("progress", store.progress):
        options["progress"] = True
    return wait, options


def name_of(kwargs: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
    """``(kwargs, dataset_name, create_if_missing)``, the last two taken out of ``kwargs``."""
    return kwargs, kwargs.pop("dataset_name", None), bool(kwargs.pop("create_if_missing", False))


def documents_of(texts: Iterable[str], metadatas: list[dict[str, Any]] | None) -> list[Document]:
    """``add_texts``' arguments as documents."""
    texts = list(texts)
    if metadatas is not None and len(metadatas) != len(texts):
        raise ValueError(f"got {len(metadatas)} metadatas for {len(texts)} texts")
    return [
        Document(page_content=text, metadata=dict(metadatas[i]) if metadatas else {})
        for i, text in enumerate(texts)
    ]


def ids_to_delete(ids: list[str] | None) -> list[str]:
    """The ids a delete names (all of a knowledge base is refused)."""
    if ids is None:
        raise ValueError(
            "pass the ids to delete: DifyVectorStore does not delete a whole knowledge base"
        )
    return [str(i) for i in ids]


def document_of(hit: Hit) -> Document:
    """A search hit as LangChain's ``Document``: the chunk, with its document's id and metadata."""
    return Document(
        id=hit.document.id, page_content=hit.content, metadata=dict(hit.document.metadata)
    )
