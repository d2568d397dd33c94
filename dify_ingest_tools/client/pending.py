"""What is still indexing: one registry per client, read through scoped views.

The client remembers every create and update it sent until it learns Dify is done with it.
Everything that waits on "my uploads" reads this one registry: the client's own waits and the
retrievers' gate (`PendingUploads`, the client's view), the agent tool set (one view per
conversation), the stores (one view each) and the ledger hook (the batches it has entries for).
A view records and lists only its own entries; they live in the registry, under one rule.

The forgetting rule, the same for every view: an entry is forgotten, for all of them, when
the client learns Dify has nothing left to do for it — a status it sees shows the document
terminal (or, in a whole batch's answer, no longer in its batch), Dify answers that its batch
is gone (``Documents not found.``), the document is deleted, or it is uploaded again under its
name (an upsert moves it to a new batch; the old one answers "Documents not found.").

Two kinds of entries. A create's batch holds just that document (one per service-API call):
the batch is waited on. An update re-indexes the document in its *original* batch, which can
hold other documents (a console upload of several files): only the updated document is
waited on.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from dify_ingest_tools.models.created import BatchRef, CreatedDocument
from dify_ingest_tools.models.documents import UpdatedDocument
from dify_ingest_tools.models.status import BatchIndexingStatus

# Batches of documents this client updated or waited on by result, for document-scoped waits.
_LOCATION_MEMORY = 10_000


class PendingScope:
    """Who remembers an entry: the client, one tool set, one store, the ledger hook.

    Compared by identity: each `DifyToolset.fresh` copy and each store makes its own.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"PendingScope({self.name!r})"


CLIENT = PendingScope("client")
"""The client's own scope: every create and update it sends (what `pending_batches` lists)."""
LEDGER = PendingScope("ledger")
"""The ledger hook's scope: batches with ledger entries it settles when they finish."""


@dataclass(eq=False)
class _Entry:
    ref: BatchRef
    document_id: str
    update: bool
    created: CreatedDocument | None
    scopes: set[PendingScope] = field(default_factory=set)


class _Registry:
    """The entries of every scope, and the one forgetting rule."""

    def __init__(self) -> None:
        # dataset (lower case) -> batch -> document (lower case) -> entry, oldest batch first
        self.batches: dict[str, dict[str, dict[str, _Entry]]] = {}
        # (dataset, document) (lower case) -> the batches it has an entry in
        self.documents: dict[tuple[str, str], set[str]] = {}
        # (dataset, document) (lower case) -> the batch it was last seen in; kept after it
        # finished (an update's batch is its original one, which nothing else tells).
        self.located: OrderedDict[tuple[str, str], str] = OrderedDict()

    def add(
        self,
        scope: PendingScope,
        ref: BatchRef,
        document_id: str,
        *,
        update: bool,
        created: CreatedDocument | None,
        upload: bool,
    ) -> None:
        dataset, key = ref.dataset_id.lower(), document_id.lower()
        entry = self.batches.get(dataset, {}).get(ref.batch, {}).get(key)
        if entry is not None:
            # The same upload, recorded by one more scope (or updated again in its batch).
            entry.scopes.add(scope)
            if upload:
                entry.update, entry.created = update, created or entry.created
            return
        if upload:
            # Sent again: an earlier entry of the document is over (moved, or re-indexed anew).
            self.forget_document(dataset, key)
        entry = _Entry(ref, document_id, update, created, {scope})
        self.batches.setdefault(dataset, {}).setdefault(ref.batch, {})[key] = entry
        self.documents.setdefault((dataset, key), set()).add(ref.batch)

    def _drop(self, dataset: str, batch: str, key: str) -> None:
        batches = self.batches[dataset]
        entries = batches[batch]
        del entries[key]
        if not entries:
            del batches[batch]
            if not batches:
                del self.batches[dataset]
        held = self.documents[(dataset, key)]
        held.discard(batch)
        if not held:
            del self.documents[(dataset, key)]

    def forget_document(self, dataset_id: str, document_id: str) -> None:
        dataset, key = dataset_id.lower(), document_id.lower()
        for batch in list(self.documents.get((dataset, key), ())):
            self._drop(dataset, batch, key)

    def forget_batch(self, ref: BatchRef) -> None:
        dataset = ref.dataset_id.lower()
        for key in list(self.batches.get(dataset, {}).get(ref.batch, ())):
            self._drop(dataset, ref.batch, key)

    def forget_if_done(self, status: BatchIndexingStatus, *, whole: bool) -> None:
        # Called with every status the client fetches: nothing to do is the common case.
        if not self.batches:
            return
        batches = self.batches.get(status.dataset_id.lower())
        if not batches:
            return
        seen = {doc.id.lower(): doc for doc in status.documents}
        # A status merged from several batches (document-scoped waits) names them all.
        for batch in status.batch.split(","):
            for key in list(batches.get(batch, ())):
                doc = seen.get(key)
                # Absent from a whole batch's answer: deleted, or moved by a re-upload.
                absent = doc is None and whole and bool(seen)
                if absent or (doc is not None and doc.is_terminal):
                    self._drop(status.dataset_id.lower(), batch, key)

    def locate(self, dataset_id: str, document_id: str, batch: str) -> None:
        key = (dataset_id.lower(), document_id.lower())
        self.located[key] = batch
        self.located.move_to_end(key)
        while len(self.located) > _LOCATION_MEMORY:
            self.located.popitem(last=False)


class PendingView:
    """One scope's view of the registry: what it recorded and the registry has not forgotten.

    Reads list this scope's entries only; the forgetting methods apply the registry's one
    rule, for every scope (what Dify is done with is done for everyone).
    """

    def __init__(self, registry: _Registry, scope: PendingScope) -> None:
        self._registry = registry
        self.scope = scope

    def view(self, scope: PendingScope) -> PendingView:
        """Another scope's view of the same registry."""
        return PendingView(self._registry, scope)

    def _entries(self, dataset_id: str | None = None) -> list[_Entry]:
        datasets = (
            self._registry.batches.values()
            if dataset_id is None
            else [self._registry.batches.get(dataset_id.lower(), {})]
        )
        return [
            entry
            for batches in datasets
            for entries in batches.values()
            for entry in entries.values()
            if self.scope in entry.scopes
        ]

    def __bool__(self) -> bool:
        return any(
            self.scope in entry.scopes
            for batches in self._registry.batches.values()
            for entries in batches.values()
            for entry in entries.values()
        )

    # -- recording --------------------------------------------------------------------------

    def remember(self, created: CreatedDocument) -> None:
        """Record a create or an update sent; an earlier one of the same document is over."""
        self._registry.add(
            self.scope,
            created.ref,
            created.document_id,
            update=isinstance(created, UpdatedDocument),
            created=created,
            upload=True,
        )

    def track(self, ref: BatchRef, document_id: str) -> None:
        """Record an upload learnt of elsewhere (another process's, in the ledger)."""
        self._registry.add(self.scope, ref, document_id, update=False, created=None, upload=False)

    # -- the one forgetting rule --------------------------------------------------------------

    def forget_if_done(self, status: BatchIndexingStatus) -> None:
        """A whole batch's status, as fetched: forget what it shows terminal or no longer holds."""
        self._registry.forget_if_done(status, whole=True)

    def seen(self, status: BatchIndexingStatus) -> None:
        """A status that may be reduced to some documents: forget those it shows terminal."""
        self._registry.forget_if_done(status, whole=False)

    def forget_batch(self, ref: BatchRef) -> None:
        """Dify no longer knows the batch (``Documents not found.``): nothing left to wait for."""
        self._registry.forget_batch(ref)

    def forget_document(self, dataset_id: str, document_id: str) -> None:
        """Forget every entry of a document (it was deleted)."""
        self._registry.forget_document(dataset_id, document_id)

    # -- reading ------------------------------------------------------------------------------

    def datasets(self) -> list[str]:
        """Every dataset with a pending create or update of this scope (lower-case ids)."""
        return list(dict.fromkeys(entry.ref.dataset_id.lower() for entry in self._entries()))

    def holds(self, dataset_id: str, batch: str) -> bool:
        """True when this scope has an entry in the batch."""
        entries = self._registry.batches.get(dataset_id.lower(), {}).get(batch, {})
        return any(self.scope in entry.scopes for entry in entries.values())

    def documents_of(self, ref: BatchRef) -> tuple[str, ...]:
        """The documents this scope created in the batch, if still pending."""
        entries = self._registry.batches.get(ref.dataset_id.lower(), {}).get(ref.batch, {})
        return tuple(
            entry.document_id
            for entry in entries.values()
            if self.scope in entry.scopes and not entry.update
        )

    def batches(self, dataset_id: str) -> list[BatchRef]:
        """The dataset's pending create batches of this scope, oldest upload first."""
        refs = {e.ref.batch: e.ref for e in self._entries(dataset_id) if not e.update}
        return list(refs.values())

    def updates(self, dataset_id: str) -> list[tuple[BatchRef, list[str]]]:
        """The dataset's pending updates of this scope: each batch with its updated documents."""
        found: dict[str, tuple[BatchRef, list[str]]] = {}
        for entry in self._entries(dataset_id):
            if entry.update:
                found.setdefault(entry.ref.batch, (entry.ref, []))[1].append(entry.document_id)
        return list(found.values())

    def refs(self, dataset_id: str) -> list[BatchRef]:
        """Every batch the dataset's pending creates (first) and updates are in."""
        refs = {ref.batch: ref for ref in self.batches(dataset_id)}
        for ref, _ in self.updates(dataset_id):
            refs.setdefault(ref.batch, ref)
        return list(refs.values())

    def uploads(self, dataset_id: str) -> list[CreatedDocument]:
        """The creates' and updates' results this scope recorded in the dataset, still pending."""
        return [e.created for e in self._entries(dataset_id) if e.created is not None]


class PendingUploads(PendingView):
    """A client's registry of what it sent and has not seen finish, as the client's own view.

    Retrievers wait on it (`AsyncDifyKnowledgeClient.wait_for_pending`) so a chain never
    searches a knowledge base whose fresh uploads are still indexing; `view` gives the tool
    sets, stores and the ledger hook their own scopes of it.
    """

    def __init__(self) -> None:
        super().__init__(_Registry(), CLIENT)

    def locate(self, dataset_id: str, document_id: str, batch: str) -> None:
        """Note the batch a document was seen in (kept after it finished, most recent 10,000)."""
        self._registry.locate(dataset_id, document_id, batch)

    def batch_of(self, dataset_id: str, document_id: str) -> str | None:
        """The batch the document was last noted in (`locate`), if any."""
        return self._registry.located.get((dataset_id.lower(), document_id.lower()))
