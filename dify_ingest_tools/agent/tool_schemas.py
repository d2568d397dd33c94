"""What an agent sees of the tool set: argument models, descriptions and output models.

Built once per binding (a pre-bound dataset hides ``dataset_id``; an allow-list turns it
into an enum) and shared by every adapter, so LangChain, LlamaIndex and MCP show the same
arguments with the same descriptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from dify_ingest_tools._base.inputs import check_dataset_id

TOOL_NAMES = ("upload_text", "indexing_status", "wait_for_indexing", "search", "list_documents")
"""The tools, in the order an agent uses them."""

# Dify refuses longer retrieval queries (its service API validates 250 characters).
QUERY_MAX_CHARS = 250
# Dify's own `display_status` filter values for the document list.
DocumentStatus = Literal[
    "queuing", "indexing", "paused", "error", "available", "disabled", "archived"
]
DOCUMENT_STATUSES: tuple[str, ...] = get_args(DocumentStatus)

_BATCH = (
    "The `batch` string the upload returned (usually 20 digits, e.g. "
    "'20250612093011123456'). Copy it exactly; it identifies one upload."
)
_DATASET = "The id (a UUID) of the Dify knowledge base (dataset)."


def _dataset_field(datasets: Sequence[str] | None) -> Any:
    """``dataset_id``: any UUID, or one of the allowed ones (an enum the model can read)."""
    if not datasets:
        return Annotated[str, AfterValidator(check_dataset_id), Field(description=_DATASET)]
    allowed = {dataset.lower(): dataset for dataset in datasets}

    def allowed_only(value: str) -> str:
        found = allowed.get(value.strip().lower())
        if found is None:
            raise ValueError(
                f"dataset_id {value!r:.60} is not a knowledge base these tools may use; use "
                f"one of: {', '.join(allowed.values())}"
            )
        return found

    return Annotated[
        str,
        AfterValidator(allowed_only),
        Field(
            description=f"{_DATASET} One of the knowledge bases these tools may use.",
            json_schema_extra={"enum": list(allowed.values())},
        ),
    ]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain some text, not only whitespace")
    return value


class _Args(BaseModel):
    # Unknown arguments are refused: a model that invents one learns it at once.
    model_config = ConfigDict(extra="forbid")


def argument_models(
    *,
    bound: bool,
    datasets: Sequence[str] | None,
    max_wait_seconds: float,
    default_wait_seconds: float,
    max_upload_wait_seconds: float,
    default_top_k: int,
    max_top_k: int,
    allow_replace: bool = False,
) -> dict[str, type[BaseModel]]:
    """The pydantic model of each tool's arguments (its JSON schema is what the model sees)."""
    replaces = (
        "Uploading a name that exists replaces that document (and re-indexes it)."
        if allow_replace
        else (
            "Uploading a name these tools uploaded before replaces that document (and "
            "re-indexes it); a document of that name that someone else created is not "
            "replaced: choose another name."
        )
    )
    dataset: dict[str, Any] = {} if bound else {"dataset_id": (_dataset_field(datasets), ...)}
    batch = (str, Field(min_length=1, max_length=256, description=_BATCH))
    wait = (
        float,
        Field(
            default=default_wait_seconds,
            gt=0,
            description=(
                "The longest to wait, in seconds, before answering with the progress so far "
                f"(at most {max_wait_seconds:g}; larger values are reduced to it)."
            ),
        ),
    )
    models: dict[str, type[BaseModel]] = {
        "upload_text": create_model(
            "UploadTextArgs",
            __base__=_Args,
            **dataset,
            name=(
                Annotated[str, AfterValidator(_not_blank)],
                Field(
                    min_length=1,
                    max_length=255,
                    description=f"The document's name, e.g. 'returns-policy.md'. {replaces}",
                ),
            ),
            text=(
                Annotated[str, AfterValidator(_not_blank)],
                Field(min_length=1, description="The document's full text."),
            ),
            wait_seconds=(
                float,
                Field(
                    default=0.0,
                    ge=0,
                    description=(
                        "Also wait up to this many seconds for the new document to be indexed "
                        f"(0: do not wait; at most {max_upload_wait_seconds:g})."
                    ),
                ),
            ),
        ),
        "indexing_status": create_model(
            "IndexingStatusArgs", __base__=_Args, **dataset, batch=batch
        ),
        "wait_for_indexing": create_model(
            "WaitForIndexingArgs", __base__=_Args, **dataset, batch=batch, timeout_seconds=wait
        ),
        "search": create_model(
            "SearchArgs",
            __base__=_Args,
            **dataset,
            query=(
                Annotated[str, AfterValidator(_not_blank)],
                Field(
                    min_length=1,
                    max_length=QUERY_MAX_CHARS,
                    description="What to look for, in a few words or a short question.",
                ),
            ),
            top_k=(
                int,
                Field(
                    default=default_top_k,
                    ge=1,
                    description=f"How many passages to return (at most {max_top_k}).",
                ),
            ),
        ),
        "list_documents": create_model(
            "ListDocumentsArgs",
            __base__=_Args,
            **dataset,
            keyword=(
                str | None,
                Field(
                    default=None,
                    max_length=QUERY_MAX_CHARS,
                    description="Only documents whose name contains this (case-sensitive).",
                ),
            ),
            status=(
                DocumentStatus | None,
                Field(
                    default=None,
                    description="Only documents in this state ('available' = searchable).",
                ),
            ),
            page=(int, Field(default=1, ge=1, description="Page number, 20 documents a page.")),
        ),
    }
    return models


def descriptions(
    prefix: str, *, bound_to: str | None, max_wait_seconds: float, search_wait_seconds: float
) -> dict[str, str]:
    """What each tool is for, written for the model; ``prefix`` names the sibling tools."""
    where = f"the knowledge base {bound_to}" if bound_to else "a Dify knowledge base"
    give = "" if bound_to else " and the knowledge base's `dataset_id`"
    wait, status = f"{prefix}wait_for_indexing", f"{prefix}indexing_status"
    return {
        "upload_text": (
            f"Upload a text document to {where}. Dify indexes it in the background: it is NOT "
            f"searchable until its batch is READY. Give a `name` and the `text`{give}. Returns "
            f"the document id and the `batch` to pass to {status} or {wait}; with "
            "`wait_seconds` it also waits (briefly) for the indexing."
        ),
        "indexing_status": (
            f"Check, without waiting, whether an upload to {where} is indexed and searchable "
            f"yet. Give the upload's `batch`{give}. Answers READY (search now), NOT READY (with "
            "how many documents are in each stage and segments indexed so far), PAUSED, or "
            "FAILED (naming each failed document with Dify's error)."
        ),
        "wait_for_indexing": (
            f"Wait until an upload to {where} is indexed, for at most `timeout_seconds` (this "
            f"tool's limit is {max_wait_seconds:g} s). Give the upload's `batch`{give}. Answers "
            "READY when it can be searched; if time runs out it answers with the progress so "
            "far (Dify keeps indexing: wait again later); if a document fails or is paused it "
            "says which one and Dify's error."
        ),
        "search": (
            f"Search {where} and return the most relevant passages, each with its document's "
            f"name, score and segment. Give a short `query`{give}. Uploads made through these "
            f"tools are waited for first (up to {search_wait_seconds:g} s), so text uploaded "
            "a moment ago is found once it is indexed."
        ),
        "list_documents": (
            f"List the documents of {where}: name, id and status ('available' means "
            f"searchable){give and ', given the `dataset_id`'}. Use it to find a document you "
            "did not upload, or to see what is still indexing."
        ),
    }


# -- structured output (MCP's outputSchema; the artifacts' JSON elsewhere) ---------------------


class _Output(BaseModel):
    answer: str = Field(description="The same answer as the text content, for the model.")
    outcome: str = Field(description="A machine-readable verdict of the call.")


class DocumentOutput(BaseModel):
    """One document of a batch, as the status tools report it."""

    id: str
    indexing_status: str
    completed_segments: int
    total_segments: int
    error: str | None = None


class IndexingOutput(_Output):
    """``indexing_status`` / ``wait_for_indexing``. ``outcome``: ready, working, paused,
    failed, empty (indexed, but a document produced no chunks: nothing will be found),
    stalled, timeout or not_found."""

    dataset_id: str
    batch: str
    progress: float | None = None
    completed_segments: int | None = None
    total_segments: int | None = None
    documents: list[DocumentOutput] = Field(default_factory=list)


class UploadOutput(IndexingOutput):
    """``upload_text``. ``outcome``: uploaded (no wait), a wait's outcome, or not_found (no
    such knowledge base: nothing was uploaded, so no ``document_id`` nor ``batch``)."""

    batch: str | None = None  # type: ignore[assignment]
    document_id: str | None = None
    name: str


class HitOutput(BaseModel):
    """One search hit (``content`` cut to the tool's budget)."""

    document_id: str | None = None
    document_name: str | None = None
    score: float | None = None
    segment_id: str | None = None
    position: int | None = None
    content: str
    truncated: bool = False


class SearchOutput(_Output):
    """``search``. ``outcome``: found, nothing_found or not_found (no such knowledge base)."""

    dataset_id: str
    query: str
    hits: list[HitOutput] = Field(default_factory=list)
    still_indexing: list[str] = Field(
        default_factory=list, description="Batches uploaded through these tools, not yet ready."
    )


class ListedDocument(BaseModel):
    """One document of the list."""

    id: str
    name: str
    status: str
    batch: str | None = Field(
        default=None, description="Known only for uploads made through these tools."
    )
    error: str | None = None


class DocumentListOutput(_Output):
    """``list_documents``. ``outcome``: listed, empty or not_found (no such knowledge base)."""

    dataset_id: str
    page: int
    total: int
    has_more: bool
    documents: list[ListedDocument] = Field(default_factory=list)


OUTPUT_MODELS: dict[str, type[_Output]] = {
    "upload_text": UploadOutput,
    "indexing_status": IndexingOutput,
    "wait_for_indexing": IndexingOutput,
    "search": SearchOutput,
    "list_documents": DocumentListOutput,
}
