"""`ToolResult`, what a call of the tool set returns, and the shapes its indexing answers take.

The tool set (`dify_ingest_tools.agent.toolkit`) builds every result through these, so the
status, wait and upload tools, and a call answered from an error, report a batch the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from dify_ingest_tools._base.shown import ID_LIMIT, shown
from dify_ingest_tools.agent.answers import Answer, DifyToolError
from dify_ingest_tools.agent.tool_schemas import (
    DocumentListOutput,
    DocumentOutput,
    IndexingOutput,
    SearchOutput,
    UploadOutput,
)
from dify_ingest_tools.models.status import BatchIndexingStatus

# Documents of a batch listed in a status result (a hostile batch may hold 10,000), and the
# characters of each one's error there (the answer's text names the failures too).
_DOCUMENTS_SHOWN = 20
_DOCUMENT_ERROR_CHARS = 200


@dataclass(frozen=True)
class ToolResult:
    """What a call answered.

    Attributes:
        text: The answer for the model, identical in every framework.
        data: The same as JSON-ready structured data (``outcome`` says what happened).
        artifact: The typed object behind it: a `CreatedDocument`, a `BatchIndexingStatus`
            (or None), a list of `RetrievedChunk`, or a `DocumentList`.
    """

    text: str
    data: dict[str, Any]
    artifact: Any

    @property
    def outcome(self) -> str:
        return str(self.data.get("outcome", ""))


def indexing_data(
    dataset_id: str, batch: str, status: BatchIndexingStatus | None
) -> dict[str, Any]:
    """A batch's fields of a result: its progress and (the first) documents, when seen."""
    if status is None:
        return {"dataset_id": dataset_id, "batch": batch}
    return {
        "dataset_id": dataset_id,
        "batch": batch,
        "progress": status.progress,
        "completed_segments": status.completed_segments,
        "total_segments": status.total_segments,
        "documents": [
            DocumentOutput(
                id=shown(doc.id, ID_LIMIT),
                indexing_status=shown(str(doc.indexing_status), ID_LIMIT),
                completed_segments=doc.completed_segments,
                total_segments=doc.total_segments,
                error=(shown(doc.error, _DOCUMENT_ERROR_CHARS) or None) if doc.is_failed else None,
            )
            for doc in status.documents[:_DOCUMENTS_SHOWN]
        ],
    }


def settled(answer: Answer) -> Answer:
    """The answer, or the tool error it is."""
    if answer.is_error:
        raise DifyToolError(answer) from answer.error
    return answer


def indexing_result(answer: Answer, dataset_id: str, batch: str) -> ToolResult:
    """The result of the status and wait tools."""
    dataset = answer.status.dataset_id if answer.status is not None else dataset_id
    fields = indexing_data(dataset, batch, answer.status)
    data = IndexingOutput(answer=answer.text, outcome=answer.outcome, **fields)
    return ToolResult(answer.text, data.model_dump(mode="json"), answer.status)


def answered_result(name: str, answer: Answer, dataset_id: str, args: Any) -> ToolResult:
    """An answer to a call that raised, in the tool's own result shape: a dataset or
    batch Dify does not know (the model can fix the id it passed)."""
    common = {"answer": answer.text, "outcome": answer.outcome, "dataset_id": dataset_id}
    data: BaseModel
    if name == "search":
        data = SearchOutput(**common, query=args.query)
    elif name == "list_documents":
        data = DocumentListOutput(**common, page=args.page, total=0, has_more=False)
    elif name == "upload_text":
        data = UploadOutput(**common, name=args.name)
    else:
        data = IndexingOutput(**common, batch=args.batch)
    return ToolResult(answer.text, data.model_dump(mode="json"), None)
