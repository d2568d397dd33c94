"""The simulated knowledge bases: datasets, documents, batches and segments."""

from __future__ import annotations

import hashlib
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from ._clock import Clock, Epoch
from ._documents_state import DatasetMetadata, DocumentState
from ._script import DocumentScript
from ._summaries import SummarySettings
from ._text import keywords, split_segments
from ._timeline import Leftovers, Timeline

#: The retrieval model a new economy dataset reported (recording 00).
DEFAULT_RETRIEVAL_MODEL: dict[str, Any] = {
    "search_method": "semantic_search",
    "reranking_enable": False,
    "reranking_mode": None,
    "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""},
    "weights": None,
    "top_k": 2,
    "score_threshold_enabled": False,
    "score_threshold": None,
}

#: The rule Dify stores for ``process_rule: {"mode": "automatic"}`` (recording 08).
AUTOMATIC_RULES: dict[str, Any] = {
    "pre_processing_rules": [
        {"id": "remove_extra_spaces", "enabled": True},
        {"id": "remove_urls_emails", "enabled": False},
    ],
    "segmentation": {"delimiter": "\n", "max_tokens": 500, "chunk_overlap": 50},
}


@dataclass(frozen=True)
class Segment:
    """One chunk of a document, as keyword retrieval returns it."""

    id: str
    index_node_id: str
    position: int
    content: str
    keywords: tuple[str, ...]
    content_hash: str


@dataclass(frozen=True)
class UploadFile:
    """The stored file behind a document (create-by-text stores the text as a ``.txt``)."""

    id: str
    name: str
    size: int
    extension: str
    mime_type: str
    created_at: float


@dataclass
class Document:
    """A document and its current indexing run."""

    id: str
    dataset_id: str
    name: str
    position: int
    created_at: float
    batch: str
    text: str
    upload: UploadFile
    process_rule_id: str
    process_rule: dict[str, Any]
    doc_form: str
    doc_language: str
    timeline: Timeline
    segments: tuple[Segment, ...]
    previous_segments: tuple[Segment, ...]
    updated_at: float
    initial_status: str | None
    #: Enable/disable/archive flags and metadata values (the maintenance endpoints).
    state: DocumentState = field(default_factory=DocumentState)

    def retrievable_segments(self) -> tuple[Segment, ...]:
        """Segments a retrieve can return now: only completed ones (partial hits while indexing).

        Until a re-created document starts processing, its previous run's segments are still
        in the index (the 8/8 of recording 01e's first poll).
        """
        timeline = self.timeline
        if not timeline.started_processing and timeline.leftovers is not None:
            return self.previous_segments
        completed, _ = timeline.counts()
        return self.segments[:completed]


@dataclass
class Dataset:
    """A knowledge base."""

    id: str
    name: str
    description: str
    indexing_technique: str | None
    permission: str
    enable_api: bool
    created_at: float
    updated_at: float
    retrieval_model: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_RETRIEVAL_MODEL))
    documents: dict[str, Document] = field(default_factory=dict)
    #: batch -> document ids, in the order they joined it.
    batches: dict[str, list[str]] = field(default_factory=dict)
    next_position: int = 1
    #: Metadata fields and the built-in switch.
    metadata: DatasetMetadata = field(default_factory=DatasetMetadata)
    #: What its knowledge pipeline extracts from each item (``{name}``: the item's name);
    #: None for a knowledge base without a pipeline (``Pipeline not found``).
    pipeline_text: str | None = None
    #: Summary indexing (``summary_index_setting``), off unless asked.
    summaries: SummarySettings = field(default_factory=SummarySettings)


@dataclass(frozen=True)
class FileInfo:
    """How an uploaded file is described (create-by-file), or defaults for create-by-text."""

    name: str
    extension: str = "txt"
    mime_type: str = "text/plain"
    size: int | None = None


class Store:
    """Every dataset and document of one simulator, guarded by one re-entrant lock.

    The lock lets a test thread call the simulator's facade while ``serve_in_thread`` answers
    requests on another thread. Handlers never await while holding it.
    """

    def __init__(self, *, clock: Clock, rng: random.Random, time_scale: float) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.epoch = Epoch(clock)
        self.rng = rng
        self.time_scale = time_scale
        self.datasets: dict[str, Dataset] = {}
        self.scripts: dict[str, DocumentScript] = {}
        #: Consulted for names without a script of their own (e.g. name patterns).
        self.script_resolver: Callable[[str], DocumentScript | None] | None = None
        self.default_script = DocumentScript()
        self.account_id = self.new_id()
        self.tenant_id = self.new_id()
        self._used_batches: set[str] = set()

    # -- ids -------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A uuid4 drawn from the seeded rng, so a seeded simulator repeats its ids."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_batch(self, now: float) -> str:
        """A batch id as Dify makes it: UTC ``%Y%m%d%H%M%S`` plus 6 random digits (20 chars)."""
        stamp = datetime.fromtimestamp(self.epoch.seconds(now), tz=timezone.utc)
        while True:
            batch = stamp.strftime("%Y%m%d%H%M%S") + str(self.rng.randint(100000, 999999))
            if batch not in self._used_batches:
                self._used_batches.add(batch)
                return batch

    # -- datasets --------------------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        *,
        indexing_technique: str | None,
        dataset_id: str | None = None,
        enable_api: bool = True,
        description: str = "",
        permission: str = "only_me",
    ) -> Dataset:
        """Create a dataset; ``dataset_id`` must be a UUID not in use (any case)."""
        if dataset_id is None:
            dataset_id = self.new_id()
        else:
            try:
                dataset_id = str(uuid.UUID(dataset_id))
            except ValueError:
                raise ValueError(
                    f"dataset_id must be a UUID (Dify routes only match UUIDs), not {dataset_id!r}"
                ) from None
        if dataset_id in self.datasets:
            raise ValueError(f"dataset {dataset_id} already exists")
        now = self.clock()
        dataset = Dataset(
            id=dataset_id,
            name=name,
            description=description,
            indexing_technique=indexing_technique,
            permission=permission,
            enable_api=enable_api,
            created_at=now,
            updated_at=now,
        )
        self.datasets[dataset_id] = dataset
        return dataset

    def dataset(self, dataset_id: str) -> Dataset | None:
        """Look a dataset up by id; an upper-case UUID finds it too (recording 03b)."""
        return self.datasets.get(dataset_id.lower())

    def require_dataset(self, dataset_id: str) -> Dataset:
        """Like :meth:`dataset`, raising ``KeyError`` for an unknown id."""
        dataset = self.dataset(dataset_id)
        if dataset is None:
            raise KeyError(f"no dataset {dataset_id!r} in this simulator")
        return dataset

    # -- documents -------------------------------------------------------------------------

    def _resolved(self, name: str) -> DocumentScript | None:
        return self.script_resolver(name) if self.script_resolver is not None else None

    def find_document(self, document_id: str) -> tuple[Dataset, Document]:
        """Find a document in any dataset; ``KeyError`` if it does not exist."""
        for dataset in self.datasets.values():
            document = dataset.documents.get(document_id.lower())
            if document is not None:
                return dataset, document
        raise KeyError(f"no document {document_id!r} in this simulator")

    def batch_documents(self, dataset: Dataset, batch: str) -> list[Document]:
        """The documents of a batch, advanced to now (empty when unknown or deleted)."""
        now = self.clock()
        documents = [dataset.documents[i] for i in dataset.batches.get(batch, ())]
        for document in documents:
            document.timeline.advance(now)
        return documents

    def add_document(
        self,
        dataset: Dataset,
        name: str,
        text: str,
        *,
        file: FileInfo | None = None,
        script: DocumentScript | None = None,
        batch: str | None = None,
        process_rule: dict[str, Any] | None = None,
        doc_form: str = "text_model",
        doc_language: str = "English",
        indexing_technique: str | None = None,
        unreadable: str | None = None,
    ) -> Document:
        """Create a document, or re-index the existing one with the same name (an upsert).

        Args:
            dataset: Where the document goes.
            name: Its name; an existing document with this name is reused (recording 01e).
            text: Its text.
            file: The uploaded file's description; ``None`` for create-by-text.
            script: Overrides the scripts registered by name and the default script.
            batch: Join this existing batch instead of opening a new one (console uploads).
            process_rule: The request's ``process_rule``; ``None`` means automatic.
            doc_form: The document form reported back.
            doc_language: The document language reported back.
            indexing_technique: Decides ``tokens`` (0 for economy).
            unreadable: Parser error text when the file's bytes do not match its type; the
                document then fails while parsing (recording 02a).

        Returns:
            The created or re-indexed document.

        Raises:
            ValueError: If ``batch`` is not a batch of ``dataset``.
        """
        now = self.clock()
        chosen = script or self.scripts.get(name) or self._resolved(name) or self.default_script
        if unreadable is not None and chosen.fail_at is None:
            working = [
                stage for stage, _ in chosen.stage_plan(self.time_scale) if stage != "waiting"
            ]
            failing = "parsing" if "parsing" in working else next(iter(working), None)
            if failing is not None:
                chosen = replace(chosen, fail_at=failing, error=unreadable)

        gate = None
        if batch is not None:
            members = dataset.batches.get(batch)
            if not members:
                raise ValueError(f"batch {batch!r} does not exist in dataset {dataset.id}")
            # The worker takes a batch's documents one at a time (05b), so this one queues
            # behind the document that joined the batch last.
            gate = dataset.documents[members[-1]].timeline.done_for_gate
        else:
            batch = self.new_batch(now)

        contents = split_segments(text, chosen.segments)
        segments = tuple(
            Segment(
                id=self.new_id(),
                index_node_id=self.new_id(),
                position=index + 1,
                content=content,
                keywords=tuple(keywords(content)),
                content_hash=hashlib.sha256(content.encode()).hexdigest(),
            )
            for index, content in enumerate(contents)
        )
        technique = indexing_technique or dataset.indexing_technique or "economy"
        # Economy indexing builds a keyword table and spends no embedding tokens.
        tokens = 0 if technique == "economy" else len(text) // 4
        file = file or FileInfo(name=name)
        upload = UploadFile(
            id=self.new_id(),
            name=file.name,
            size=len(text.encode()) if file.size is None else file.size,
            extension=file.extension,
            mime_type=file.mime_type,
            created_at=now,
        )
        rule = _stored_rule(process_rule)

        existing = next((d for d in dataset.documents.values() if d.name == name), None)
        leftovers = None
        previous: tuple[Segment, ...] = ()
        if existing is not None:
            old = existing.timeline
            old.advance(now)
            completed, total = old.counts()
            leftovers = Leftovers(
                stamps=dict(old.stamps),
                completed_segments=completed,
                total_segments=total,
                error=old.error,
                word_count=old.word_count,
                tokens=old.tokens,
            )
            previous = existing.retrievable_segments()
            old.abandon(now)
            self._leave_batch(dataset, existing)

        timeline = Timeline(
            chosen.stage_plan(self.time_scale),
            start=now,
            total_segments=len(segments),
            word_count=len(text),
            tokens=tokens,
            fail_at=chosen.fail_at,
            error=chosen.error,
            stall_at=chosen.stall_at,
            pause_at=chosen.pause_at,
            leftovers=leftovers,
            gate=gate,
        )
        if existing is not None:
            document = existing
            document.batch = batch
            document.text = text
            document.upload = upload
            document.process_rule_id = self.new_id()
            document.process_rule = rule
            document.doc_form = doc_form
            document.doc_language = doc_language
            document.timeline = timeline
            document.segments = segments
            document.previous_segments = previous
            document.updated_at = now
            document.initial_status = chosen.initial_status
        else:
            document = Document(
                id=self.new_id(),
                dataset_id=dataset.id,
                name=name,
                position=dataset.next_position,
                created_at=now,
                batch=batch,
                text=text,
                upload=upload,
                process_rule_id=self.new_id(),
                process_rule=rule,
                doc_form=doc_form,
                doc_language=doc_language,
                timeline=timeline,
                segments=segments,
                previous_segments=(),
                updated_at=now,
                initial_status=chosen.initial_status,
            )
            dataset.next_position += 1
            dataset.documents[document.id] = document
        dataset.batches.setdefault(batch, []).append(document.id)
        dataset.updated_at = now
        return document

    def delete_dataset(self, dataset: Dataset) -> None:
        """Delete a dataset with its documents."""
        now = self.clock()
        for document in dataset.documents.values():
            document.timeline.abandon(now)
        self.datasets.pop(dataset.id, None)

    def delete_document(self, dataset: Dataset, document_id: str) -> bool:
        """Delete a document; its batch then answers ``Documents not found.``."""
        document = dataset.documents.pop(document_id.lower(), None)
        if document is None:
            return False
        document.timeline.abandon(self.clock())
        self._leave_batch(dataset, document)
        dataset.updated_at = self.clock()
        return True

    @staticmethod
    def _leave_batch(dataset: Dataset, document: Document) -> None:
        members = dataset.batches.get(document.batch)
        if members is not None and document.id in members:
            members.remove(document.id)
            if not members:
                del dataset.batches[document.batch]


def _stored_rule(process_rule: dict[str, Any] | None) -> dict[str, Any]:
    """The ``{mode, rules}`` Dify stores for a request's ``process_rule``."""
    if not process_rule or process_rule.get("mode", "automatic") == "automatic":
        return {"mode": "automatic", "rules": AUTOMATIC_RULES}
    rules = dict(process_rule.get("rules") or {})
    segmentation = dict(rules.get("segmentation") or {})
    segmentation.setdefault("chunk_overlap", 0)
    rules["segmentation"] = segmentation
    rules.setdefault("parent_mode", None)
    rules.setdefault("subchunk_segmentation", None)
    return {"mode": process_rule.get("mode"), "rules": rules}
