"""The pending-upload gate: what a client uploaded and has not yet seen finish.

Retrievers wait on it (`AsyncDifyKnowledgeClient.wait_for_pending`) so a chain never searches
a knowledge base whose fresh uploads are still indexing.
"""

from __future__ import annotations

from .models import BatchIndexingStatus, BatchRef, CreatedDocument

__all__ = ["PendingUploads"]


class PendingUploads:
    """Per dataset: batch -> (ref, document id) of each upload not yet seen terminal."""

    def __init__(self) -> None:
        self._by_dataset: dict[str, dict[str, tuple[BatchRef, str]]] = {}

    def __bool__(self) -> bool:
        return any(self._by_dataset.values())

    def remember(self, created: CreatedDocument) -> None:
        """Record an upload; an earlier upload of the same document is forgotten."""
        pending = self._by_dataset.setdefault(created.dataset_id.lower(), {})
        for batch, (_, document_id) in list(pending.items()):
            if document_id == created.document_id:
                # Uploaded again under the same name (an upsert): the document moved to the
                # new batch, and the old one now answers "Documents not found.".
                del pending[batch]
        pending[created.batch] = (created.ref, created.document_id)

    def forget_if_done(self, status: BatchIndexingStatus) -> None:
        """Forget the batch once a status shows it terminal (completed or failed)."""
        if status.is_terminal and self._by_dataset:
            self._by_dataset.get(status.dataset_id.lower(), {}).pop(status.batch, None)

    def batches(self, dataset_id: str) -> list[BatchRef]:
        """The dataset's pending batches, oldest upload first."""
        return [ref for ref, _ in self._by_dataset.get(dataset_id.lower(), {}).values()]
