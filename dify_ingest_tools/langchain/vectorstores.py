"""`DifyVectorStore`: a Dify knowledge base as a LangChain vector store, read-after-write.

Dify embeds and indexes server-side, asynchronously. This store's writes return only once
Dify reports the written documents ``completed`` (``wait=True``, the default), so a search
right after ``add_documents`` sees them; with ``wait=False`` it returns at once and the
store's searches (and its retrievers) first wait for those writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from pydantic import SecretStr
from typing_extensions import Self

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools.agent.store import StoreCore, write_waits
from dify_ingest_tools.agent.store_mapping import StoredDocument
from dify_ingest_tools.agent.store_names import aresolve_name, resolve_name
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.bridge import ClientBridge, DifyKnowledgeClient
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.langchain._common import AnyDifyClient
from dify_ingest_tools.langchain._vectorstore_documents import (
    DocKey,
    document_of,
    documents_of,
    ids_to_delete,
    name_of,
    stored_documents,
    write_options,
)
from dify_ingest_tools.readiness.policy import OnEmpty

__all__ = ["DifyVectorStore"]


class DifyVectorStore(VectorStore):
    """A Dify knowledge base (dataset) as a LangChain `VectorStore`.

    Setup:
        ``pip install "dify-ingest-tools[langchain]"``; a Dify Knowledge API key
        (``dataset-...``) and the id of an existing knowledge base.

    Instantiate:
        .. code-block:: python

            from dify_ingest_tools.langchain import DifyVectorStore

            store = DifyVectorStore(dataset_id="...", api_key="dataset-...",
                                    base_url="https://dify.example.com/v1")

    Add (returns once Dify has indexed them):
        .. code-block:: python

            store.add_documents([Document(page_content="...", metadata={"source": "a.md"})],
                                ids=["a"])

    Delete:
        .. code-block:: python

            store.delete(["a"])

    Search:
        .. code-block:: python

            store.similarity_search("refund policy", k=3, filter={"source": "a.md"})

    Async:
        ``aadd_documents``, ``adelete``, ``aget_by_ids``, ``asimilarity_search`` and
        ``asimilarity_search_with_score`` are natively async.

    Use as Retriever:
        .. code-block:: python

            retriever = store.as_retriever(search_kwargs={"k": 3})

    How documents map onto Dify:

    * The caller's id is the **Dify document name** (``doc_key=None``), so re-adding an id
      updates that Dify document in place (Dify's ``update-by-text``: same document,
      re-indexed), never a duplicate. With ``doc_key="source"`` (a metadata key, or a
      function of the document) the name is that key instead: one Dify document per
      source, and a changed source with a new id (as LangChain's ``index()`` makes) updates
      it. Each key then holds one LangChain document at a time.
    * The store owns only what it wrote (its ``lc_id`` / ``lc_manifest`` mark): a key that
      names someone else's document raises `DifyDocumentConflictError` (nothing written)
      unless ``overwrite_foreign=True``; `delete` treats such ids as missing.
    * The id and the exact metadata are kept in two Dify metadata fields (``lc_id``,
      ``lc_manifest``: JSON, so types survive); every string or number value also gets a
      field of its own, for ``filter=``. Keys that clash with Dify's built-in fields are
      renamed: ``source`` is the field ``lc_source``.
    * Searches go through ``POST /retrieve`` (Dify ranks; on an economy knowledge base that
      is keyword search, scoring 0.0). Hits are chunks: ``page_content`` is the chunk,
      ``id`` and ``metadata`` those of its document (joined from the document's detail,
      cached). `get_by_ids` returns the whole document, its text rebuilt from its segments.
    * ``embeddings`` is None: Dify embeds server-side; passing ``embedding=`` is an error.

    Args:
        dataset_id: The knowledge base UUID.
        client: A `DifyKnowledgeClient` (sync and async use) or an
            `AsyncDifyKnowledgeClient` (async use only); otherwise one is built from
            ``api_key`` / ``base_url`` (or ``DIFY_API_KEY`` / ``DIFY_API_BASE_URL``).
        api_key: The Knowledge API key.
        base_url: The API root ending in ``/v1``.
        embedding: Must be None (Dify embeds server-side).
        doc_key: What names the Dify document: None (the id), a metadata key, or a function.
        wait: Return from writes only once Dify has indexed them (default True).
        wait_gate: Searches first wait for writes made with ``wait=False`` (default True).
        timeout: Seconds a write's wait (and a search's gate) may take.
        poll_interval: First gap between status polls.
        max_poll_interval: Longest gap between status polls.
        stall_timeout: Fail a wait when nothing changes for this long (None: off).
        on_empty: A document Dify indexes with 0 chunks (empty text: nothing will be
            found): ``"raise"`` `IndexingEmptyError` from the write (default), ``"warn"`` (log),
            or ``"accept"``.
        summaries: Writes also wait for the documents' summaries (summary indexing datasets).
        on_event: Receives every `IndexingEvent` of the store's waits.
        progress: Draw progress bars while waiting.
        search_method: Dify's ``search_method`` (``semantic_search``, ``keyword_search``,
            ``full_text_search``, ``hybrid_search``); None uses the dataset's own setting.
        retrieval_model: A complete Dify retrieval model (overrides ``search_method``).
        score_threshold: Drop hits scoring below this.
        indexing_technique: For creates (by default the dataset's own).
        process_rule: Dify chunking rules for writes (default automatic).
        cache_ttl: Seconds a document's id and metadata are trusted for search results.
        overwrite_foreign: Let writes replace a document of the same name that no store
            wrote (a console upload, a sync): by default that raises
            `DifyDocumentConflictError` before anything is written. Deletes and
            ``index(cleanup=...)`` never touch such documents either way.
    """

    def __init__(
        self,
        dataset_id: str,
        *,
        client: AnyDifyClient | None = None,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        embedding: Embeddings | None = None,
        doc_key: DocKey | None = None,
        wait: bool = True,
        wait_gate: bool = True,
        timeout: float = 600.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        stall_timeout: float | None = None,
        on_empty: OnEmpty = "raise",
        summaries: bool = False,
        on_event: EventCallback | None = None,
        progress: bool = False,
        search_method: str | None = None,
        retrieval_model: Mapping[str, Any] | None = None,
        score_threshold: float | None = None,
        indexing_technique: str | None = None,
        process_rule: Mapping[str, Any] | None = None,
        cache_ttl: float | None = 300.0,
        overwrite_foreign: bool = False,
    ) -> None:
        if embedding is not None:
            raise ValueError(
                "Dify embeds documents server-side with the knowledge base's own model: "
                "do not pass embedding= to DifyVectorStore"
            )
        check_dataset_id(dataset_id)
        if client is None:
            self._owned: DifyKnowledgeClient | None = DifyKnowledgeClient(api_key, base_url)
            client = self._owned
        elif api_key is not None or base_url is not None:
            raise ValueError("pass either client= or api_key / base_url, not both")
        else:
            self._owned = None
        self.wait_options = write_waits(
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            stall_timeout=stall_timeout,
            on_empty=on_empty,
            summaries=summaries,
        )
        self.client = client
        self.dataset_id = dataset_id
        self.doc_key = doc_key
        self.wait = wait
        self.wait_gate = wait_gate
        self.on_event = on_event
        self.progress = progress
        if retrieval_model is None and search_method is not None:
            retrieval_model = {"search_method": search_method}
        self.retrieval_model = dict(retrieval_model) if retrieval_model is not None else None
        self.score_threshold = score_threshold
        self._core = StoreCore(
            dataset_id,
            key_is_id=doc_key is None,
            indexing_technique=indexing_technique,
            process_rule=process_rule,
            cache_ttl=cache_ttl,
            overwrite_foreign=overwrite_foreign,
        )
        self._bridge = ClientBridge(client)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dataset_id={self.dataset_id!r})"

    @property
    def embeddings(self) -> Embeddings | None:
        """None: Dify embeds server-side."""
        return None

    def close(self) -> None:
        """Close the client this store built (a client passed in is left open)."""
        if self._owned is not None:
            self._owned.close()

    # -- writing ----------------------------------------------------------------------------

    async def _write(
        self,
        client: AsyncDifyKnowledgeClient,
        stored: list[StoredDocument],
        kwargs: Mapping[str, Any],
    ) -> list[str]:
        wait, options = write_options(kwargs, self)
        await self._core.write(client, stored, wait=wait, wait_options=options)
        return [document.id for document in stored]

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Add or replace documents; returns their ids.

        Args:
            documents: The documents; ``Document.id`` is used when ``ids`` is not given,
                else a new UUID.
            **kwargs: ``ids`` (one per document; re-adding an id replaces that document),
                ``wait`` (default: the store's), ``timeout`` and the other wait options,
                ``on_event``, ``progress``. LangChain's ``batch_size`` is accepted and
                ignored (writes are already bounded).

        Raises:
            DifyDocumentConflictError: A key names a document this kind of store did not
                write (raised before anything is written; see ``overwrite_foreign``).
            IndexingFailedError: Dify failed to index a document.
            IndexingTimeoutError: Not indexed within ``timeout`` (Dify may still finish).
        """
        stored = stored_documents(documents, kwargs.get("ids"), self.doc_key)
        return self._bridge.call(lambda client: self._write(client, stored, kwargs))

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Async `add_documents`."""
        stored = stored_documents(documents, kwargs.get("ids"), self.doc_key)
        return await self._bridge.acall(lambda client: self._write(client, stored, kwargs))

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add or replace texts (see `add_documents`)."""
        documents = documents_of(texts, metadatas)
        return self.add_documents(documents, ids=ids, **kwargs)

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async `add_texts`."""
        documents = documents_of(texts, metadatas)
        return await self.aadd_documents(documents, ids=ids, **kwargs)

    # -- deleting ---------------------------------------------------------------------------

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id; ids that do not exist are ignored. Returns True.

        Only documents a store wrote are deleted: an id that names someone else's document
        (no ``lc_id`` / ``lc_manifest`` mark) counts as missing.

        ``ids=None`` (LangChain's "delete all") is refused: delete a knowledge base's
        documents explicitly, or the knowledge base itself in Dify.
        """
        checked = ids_to_delete(ids)
        self._bridge.call(lambda client: self._core.delete(client, checked))
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Async `delete`."""
        checked = ids_to_delete(ids)
        await self._bridge.acall(lambda client: self._core.delete(client, checked))
        return True

    # -- reading ----------------------------------------------------------------------------

    async def _get(self, client: AsyncDifyKnowledgeClient, ids: Sequence[str]) -> list[Document]:
        found = await self._core.get(client, list(ids), gate=self._gate)
        return [
            Document(id=known.id, page_content=text, metadata=dict(known.metadata))
            for known, text in found
        ]

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in that order; missing ids are skipped."""
        return self._bridge.call(lambda client: self._get(client, ids))

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async `get_by_ids`."""
        return await self._bridge.acall(lambda client: self._get(client, ids))

    @property
    def _gate(self) -> dict[str, Any] | None:
        """What reads wait for first (writes made with ``wait=False``), if they wait."""
        return self.wait_options if self.wait_gate else None

    async def _search(
        self,
        client: AsyncDifyKnowledgeClient,
        query: str,
        k: int,
        filter: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
    ) -> list[tuple[Document, float]]:
        if k < 1:
            raise ValueError("k must be >= 1")
        model = kwargs.get("retrieval_model", self.retrieval_model)
        if "search_method" in kwargs:
            model = {**(model or {}), "search_method": kwargs["search_method"]}
        hits = await self._core.search(
            client,
            query,
            k=k,
            score_threshold=kwargs.get("score_threshold", self.score_threshold),
            filter=filter,
            retrieval_model=model,
            gate=self._gate,
        )
        return [(document_of(hit), hit.score or 0.0) for hit in hits]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` best chunks with Dify's scores (higher is better, 0..1).

        Args:
            query: The search text (Dify accepts up to 250 characters).
            k: How many chunks (Dify's ``top_k``).
            filter: Metadata filter: ``{"key": value}``, ``{"key": {"$gt": 1}}``,
                ``{"$or": [...]}``, or Dify's own ``metadata_filtering_conditions``.
            **kwargs: ``score_threshold``, ``search_method``, ``retrieval_model``.
        """
        return self._bridge.call(lambda client: self._search(client, query, k, filter, kwargs))

    async def asimilarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async `similarity_search_with_score`."""
        return await self._bridge.acall(
            lambda client: self._search(client, query, k, filter, kwargs)
        )

    def similarity_search(
        self, query: str, k: int = 4, filter: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` best chunks (see `similarity_search_with_score`)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async `similarity_search`."""
        scored = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in scored]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # Dify's scores are already relevance scores in [0, 1].
        return lambda score: score

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """Not available: Dify searches with its own embeddings of the query text."""
        raise ValueError("Dify embeds queries server-side: search with text, not a vector")

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """Not available (see `similarity_search_by_vector`)."""
        raise ValueError("Dify embeds queries server-side: search with text, not a vector")

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store on a knowledge base (``dataset_id=``, or ``dataset_name=``), with these
        texts added.

        ``kwargs`` are the constructor's (``dataset_id``, ``client``, ``overwrite_foreign``,
        ...); the write's own options (``wait``, ``timeout``) apply too. Instead of
        ``dataset_id``, ``dataset_name="handbook"`` finds the knowledge base by its exact
        name, and with ``create_if_missing=True`` creates it when there is none (economy,
        unless ``indexing_technique`` says otherwise); a missing or ambiguous name raises
        `DifyDatasetNameError` (naming the ids) before anything is written.
        """
        store = cls._named(embedding, kwargs, resolve_name(*name_of(kwargs)))
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Async `from_texts` (``dataset_name=`` and ``create_if_missing=`` too)."""
        store = cls._named(embedding, kwargs, await aresolve_name(*name_of(kwargs)))
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> Self:
        """A store on a knowledge base, with these documents added.

        The knowledge base is ``dataset_id=``, or ``dataset_name=`` (its exact name; with
        ``create_if_missing=True`` created when missing, economy unless
        ``indexing_technique`` says otherwise), as in `from_texts`.
        """
        ids = kwargs.pop("ids", None)
        store = cls._named(embedding, kwargs, resolve_name(*name_of(kwargs)))
        store.add_documents(documents, ids=ids)
        return store

    @classmethod
    async def afrom_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> Self:
        """Async `from_documents` (``dataset_name=`` and ``create_if_missing=`` too)."""
        ids = kwargs.pop("ids", None)
        store = cls._named(embedding, kwargs, await aresolve_name(*name_of(kwargs)))
        await store.aadd_documents(documents, ids=ids)
        return store

    @classmethod
    def _named(
        cls, embedding: Embeddings | None, kwargs: dict[str, Any], owned: DifyKnowledgeClient | None
    ) -> Self:
        """The store, owning the client a name lookup built (so `close` closes it)."""
        store = cls(embedding=embedding, **kwargs)
        if owned is not None:
            store._owned = owned
        return store
