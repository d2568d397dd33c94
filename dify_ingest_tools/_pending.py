"""The pending-upload gate: what a client uploaded and has not yet seen finish.

Retrievers wait on it (`AsyncDifyKnowledgeClient.wait_for_pending`) so a chain never searches
a knowledge base whose fresh uploads are still indexing.

Two kinds of entries. A create's batch holds just that document (one per service-API call):
the batch is waited on. An update re-indexes the document in its *original* batch, which can
hold other documents (a console upload of several files): only the updated document is
waited on, and only its status forgets it.
"""

from __future__ import annotations

from .models import BatchIndexingStatus, BatchRef, CreatedDocument
from .models_documents import UpdatedDocument

__all__ = ["PendingUploads"]


class PendingUploads:
    """Per dataset: the creates and the updates this client has not yet seen terminal."""

    def __init__(self) -> None:
        # dataset -> batch -> (ref, document id) of each create
        self._by_dataset: dict[str, dict[str, tuple[BatchRef, str]]] = {}
        # dataset -> batch -> (ref, {lowered id: id}) of the documents updated in that batch
        self._updated: dict[str, dict[str, tuple[BatchRef, dict[str, str]]]] = {}

    def __bool__(self) -> bool:
        return any(self._by_dataset.values()) or any(self._updated.values())

    def remember(self, created: CreatedDocument) -> None:
        """Record a create or an update; an earlier one of the same document is forgotten."""
        dataset = created.dataset_id.lower()
        # Uploaded again under the same name (an upsert), the document moved to the new batch
        # and the old one answers "Documents not found."; updated, it is re-indexed anew.
        self.forget_document(dataset, created.document_id)
        if isinstance(created, UpdatedDocument):
            updated = self._updated.setdefault(dataset, {})
            _, documents = updated.setdefault(created.batch, (created.ref, {}))
            documents[created.document_id.lower()] = created.document_id
        else:
            pending = self._by_dataset.setdefault(dataset, {})
            pending[created.batch] = (created.ref, created.document_id)

    def forget_document(self, dataset_id: str, document_id: str) -> None:
        """Forget every entry of a document (it was deleted, or is recorded anew)."""
        dataset, key = dataset_id.lower(), document_id.lower()
        pending = self._by_dataset.get(dataset, {})
        for batch, (_, pending_id) in list(pending.items()):
            if pending_id.lower() == key:
                del pending[batch]
        updated = self._updated.get(dataset, {})
        for batch, (_, documents) in list(updated.items()):
            if documents.pop(key, None) is not None and not documents:
                del updated[batch]

    def forget_if_done(self, status: BatchIndexingStatus) -> None:
        """Forget what a status shows finished (completed or failed).

        A create: its batch is terminal. An update: its document is terminal, or no longer in
        the batch (deleted, or moved by a re-upload under its name).
        """
        # Called with every status the client fetches: nothing to do is the common case.
        if not (self._by_dataset or self._updated):
            return
        dataset = status.dataset_id.lower()
        pending = self._by_dataset.get(dataset)
        if pending and status.batch in pending and status.is_terminal:
            del pending[status.batch]
        updated = self._updated.get(dataset)
        entry = updated.get(status.batch) if updated else None
        if entry is None or updated is None:
            return
        documents = entry[1]
        seen = {doc.id.lower(): doc for doc in status.documents}
        for key in list(documents):
            doc = seen.get(key)
            if doc is None or doc.is_terminal:
                del documents[key]
        if not documents:
            del updated[status.batch]

    def datasets(self) -> list[str]:
        """Every dataset with a pending create or update (lower-case ids)."""
        found = [d for d, pending in self._by_dataset.items() if pending]
        return found + [d for d, pending in self._updated.items() if pending and d not in found]

    def documents_of(self, ref: BatchRef) -> tuple[str, ...]:
        """The document this client uploaded in the batch, if it is still pending."""
        entry = self._by_dataset.get(ref.dataset_id.lower(), {}).get(ref.batch)
        return (entry[1],) if entry is not None else ()

    def batches(self, dataset_id: str) -> list[BatchRef]:
        """The dataset's pending create batches, oldest upload first."""
        return [ref for ref, _ in self._by_dataset.get(dataset_id.lower(), {}).values()]

    def updates(self, dataset_id: str) -> list[tuple[BatchRef, list[str]]]:
        """The dataset's pending updates: each batch with the updated documents in it."""
        return [
            (ref, list(documents.values()))
            for ref, documents in self._updated.get(dataset_id.lower(), {}).values()
        ]

    def refs(self, dataset_id: str) -> list[BatchRef]:
        """Every batch the dataset's pending creates (first) and updates are in."""
        refs = {ref.batch: ref for ref in self.batches(dataset_id)}
        for ref, _ in self.updates(dataset_id):
            refs.setdefault(ref.batch, ref)
        return list(refs.values())
