"""Short, truthful answers an agent (LLM) can act on: the same words in every framework.

Each function takes what Dify said (a `BatchIndexingStatus`) or what went wrong (an error,
answered by `dify_ingest_tools.agent.error_answers`) and returns an `Answer`: the paragraph
the model reads (``text``), an ``outcome`` to branch on, whether it is a tool *error*
(``is_error``), and ``data``, the same facts as a JSON-ready dict (for structured tool outputs
and artifacts). Nothing here does I/O or imports a framework: the LangChain and LlamaIndex
adapters, the tool set (`dify_ingest_tools.agent.toolkit`) and the
MCP server only decide when to call these, and render ``is_error`` answers their framework's
way (a ``ToolException``; a raised `DifyToolError`; an MCP ``isError`` result), so an agent
reads the same text whichever framework runs it.

What is an answer and what is an error:

* a ready, working, paused or failed batch, a wait that ran out of time, a stall, and a
  dataset or batch Dify does not know are answers (``is_error=False``): the model can wait
  again, report, re-upload or fix the id it passed;
* any other API error (bad key, rate limit, outage, a base URL that is not Dify's API) and
  an invalid argument are tool errors (``is_error=True``), with Dify's message and what to do
  next.

Answers never contain the API key or the server's URL, and server-provided text (Dify's
error messages, document ids, status names) goes through `cut` or `_base.shown.shown`: redacted,
control characters escaped, cut to a few hundred characters; a batch with many failed
documents names the first few within a fixed budget and counts the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from dify_ingest_tools._base.shown import (
    FAILED_SHOWN,
    ID_LIMIT,
    NO_ERROR_TEXT,
    escaped,
    redacted_head,
    shown,
)
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.models.status import NOTHING_TO_FIND, BatchIndexingStatus

Outcome: TypeAlias = Literal[
    "ready",  # every document completed: retrieve now
    "working",  # still indexing
    "paused",  # a document is paused; only Dify's console resumes it
    "failed",  # a document ended in error
    "empty",  # nothing to find: a document indexed with 0 chunks, or no documents at all
    "timeout",  # a bounded wait ran out of time (Dify keeps indexing)
    "stalled",  # nothing changed for the stall timeout (worker down?)
    "not_found",  # Dify knows no such dataset or batch (an answer: fix the id)
    "error",  # any other Dify or connection error (a tool error)
    "invalid",  # the tool's arguments were invalid (a tool error)
]
"""What an `Answer` says, in one word."""

# Dify's error texts reach the model verbatim, but bounded: a hostile or broken server can
# send megabytes, and a model needs a sentence.
_MAX_SERVER_TEXT = 500
_CUT_MARK = " […]"
# All failed documents of one answer together (ids and error texts), in characters; a
# hostile batch of 10,000 failed documents must not make a 5 MB answer.
_FAILURES_CHARS = 1500
# Distinct statuses named in a progress line (Dify has eight; a hostile server, any number).
_STATUSES_SHOWN = 8


@dataclass(frozen=True)
class Answer:
    """What a tool tells the model, and the same facts as data.

    Attributes:
        text: One paragraph for the model: the verdict, the progress, and what to do next.
        outcome: The verdict in one word (see `Outcome`).
        is_error: True when the tool call itself failed (an API error, an invalid argument):
            adapters raise it as their framework's tool error, whose message is ``text``.
        data: JSON-ready facts: ``outcome``, ``is_error``, ``dataset_id``, ``batch``, and the
            batch's progress (``verdict``, ``documents``, ``completed_documents``,
            ``status_counts``, ``completed_segments``, ``total_segments``, ``progress``,
            ``failed_documents``, ``paused_documents``) when a status was seen, or ``error``
            (``type``, ``status``, ``code``, ``message``) for errors.
        status: The batch status the answer is about, when one was observed.
        error: The exception the answer is about, if any (chain it when raising).
    """

    text: str
    outcome: Outcome
    is_error: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)
    status: BatchIndexingStatus | None = None
    error: BaseException | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return self.text


class DifyToolError(DifyError):
    """A tool call the tools cannot answer; its message is what the model should read.

    One class for every framework: the tool set (`dify_ingest_tools.agent.toolkit.DifyToolset`)
    and the LlamaIndex tool specs raise it, the LangChain tools turn it into a
    ``ToolException`` (an error ``ToolMessage``), the MCP server into a result with
    ``isError: true``. The message never contains the API key or the server's URL.

    Args:
        answer: The `Answer` to carry, or the text of one (outcome ``invalid``).

    Attributes:
        answer: The `Answer` (``text``, ``outcome``, ``is_error``, ``data``).
        error: The error behind it, if any (also the ``__cause__`` when raised).
    """

    def __init__(self, answer: Answer | str) -> None:
        self.answer = tool_error_answer(answer) if isinstance(answer, str) else answer
        self.error = self.answer.error
        super().__init__(self.answer.text)

    def __reduce__(self) -> tuple[type[DifyToolError], tuple[Answer]]:
        # Rebuilt from the answer, not from the message (errors cross process pools).
        return (type(self), (self.answer,))


# -- building blocks ----------------------------------------------------------------------------


def cut(text: str, budget: int) -> tuple[str, bool]:
    """``text`` on one line, safe to show (`_base.shown.shown`'s redaction and escapes), shortened
    to ``budget`` characters at a word boundary, and whether it was cut (then it ends in
    `` […]``)."""
    # Twice the budget and some: whitespace runs collapse, escapes lengthen.
    head, more = redacted_head(text, 2 * budget + 64)
    text = escaped(" ".join(head.split()))  # a model reads whitespace runs as noise
    if len(text) <= budget and not more:
        return text, False
    if len(text) <= budget - len(_CUT_MARK):
        return text.rstrip() + _CUT_MARK, True
    room = max(budget - len(_CUT_MARK), 1)
    head = text[:room]
    space = head.rfind(" ")
    if space > room // 2:
        head = head[:space]
    return head.rstrip() + _CUT_MARK, True


def bounded(text: str, budget: int = _MAX_SERVER_TEXT) -> str:
    return cut(text, budget)[0]


def sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (Dify's messages usually bring their own)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?", _CUT_MARK)) else f"{text}."


def _status_counts(status: BatchIndexingStatus) -> dict[str, int]:
    """``status_counts()``, its names safe to show; the most common `_STATUSES_SHOWN`."""
    counts = sorted(status.status_counts().items(), key=lambda item: (-item[1], item[0]))
    shown_counts: dict[str, int] = {}
    for name, n in counts[:_STATUSES_SHOWN]:
        key = shown(name, ID_LIMIT)
        shown_counts[key] = shown_counts.get(key, 0) + n
    if len(counts) > _STATUSES_SHOWN:
        shown_counts["other"] = sum(n for _, n in counts[_STATUSES_SHOWN:])
    return shown_counts


def progress_line(status: BatchIndexingStatus) -> str:
    docs = len(status.documents)
    done = sum(doc.is_completed for doc in status.documents)
    counts = ", ".join(f"{n} {name}" for name, n in sorted(_status_counts(status).items()))
    return (
        f"{done} of {docs} document(s) completed ({counts}); "
        f"{status.completed_segments}/{status.total_segments} segments indexed"
    )


def _failed_shown(status: BatchIndexingStatus) -> tuple[list[tuple[str, str]], int]:
    """``(id, error)`` of the failed documents that fit `_FAILURES_CHARS` (at most
    `FAILED_SHOWN`), safe to show, and how many more failed."""
    failed = status.failed_documents
    shown_docs: list[tuple[str, str]] = []
    used = 0
    for doc in failed[:FAILED_SHOWN]:
        room = min(_MAX_SERVER_TEXT, _FAILURES_CHARS - used)
        if room < 80 and shown_docs:
            break
        error = bounded(doc.error, max(room, 80)) if doc.error else NO_ERROR_TEXT
        entry = (shown(doc.id, ID_LIMIT), error)
        used += sum(map(len, entry)) + 20
        shown_docs.append(entry)
    return shown_docs, len(failed) - len(shown_docs)


def _failures(status: BatchIndexingStatus) -> str:
    shown_docs, more = _failed_shown(status)
    text = " ".join(f"Document {id_} failed: {sentence(error)}" for id_, error in shown_docs)
    if more:
        text += f" {more} more document(s) failed too."
    return text


def _status_data(status: BatchIndexingStatus) -> dict[str, Any]:
    failed, more_failed = _failed_shown(status)
    data: dict[str, Any] = {
        "dataset_id": status.dataset_id,
        "batch": status.batch,
        "verdict": status.verdict,
        "documents": len(status.documents),
        "completed_documents": sum(doc.is_completed for doc in status.documents),
        "status_counts": _status_counts(status),
        "completed_segments": status.completed_segments,
        "total_segments": status.total_segments,
        "progress": status.progress,
        "failed_documents": [{"id": id_, "error": error} for id_, error in failed],
        "paused_documents": [
            shown(doc.id, ID_LIMIT) for doc in status.paused_documents[:FAILED_SHOWN]
        ],
        "empty_documents": [
            shown(doc.id, ID_LIMIT) for doc in status.empty_documents[:FAILED_SHOWN]
        ],
    }
    if more_failed:
        data["failed_documents_not_shown"] = more_failed
    return data


def build_answer(
    text: str,
    outcome: Outcome,
    *,
    status: BatchIndexingStatus | None = None,
    is_error: bool = False,
    dataset_id: str | None = None,
    batch: str | None = None,
    error: BaseException | None = None,
    details: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Answer:
    data: dict[str, Any] = {"outcome": outcome, "is_error": is_error}
    if status is not None:
        data.update(_status_data(status))
    else:
        data.update(dataset_id=dataset_id, batch=batch)
    if details is not None:
        data["error"] = dict(details)
    data.update(extra)
    return Answer(
        text=text, outcome=outcome, is_error=is_error, data=data, status=status, error=error
    )


# -- a batch's status ---------------------------------------------------------------------------


def answer_status(status: BatchIndexingStatus) -> Answer:
    """The answer to "is batch X of dataset D ready?", from one status."""
    head = f"Batch {status.batch} of dataset {status.dataset_id}"
    if not status.documents:
        return build_answer(f"{head} reports no documents.", "empty", status=status)
    if status.is_empty:
        empty = status.empty_documents
        ids = ", ".join(shown(doc.id, ID_LIMIT) for doc in empty[:FAILED_SHOWN])
        more = f" and {len(empty) - FAILED_SHOWN} more" if len(empty) > FAILED_SHOWN else ""
        text = (
            f"{head} is EMPTY: {progress_line(status)}. {len(empty)} document(s) ({ids}{more}) "
            f"were {NOTHING_TO_FIND}. Do not wait again: check the source (empty or "
            "whitespace-only text, an unreadable file) and upload it again, or tell the user."
        )
        return build_answer(text, "empty", status=status)
    if status.is_completed:
        text = f"{head} is READY: {progress_line(status)}. Its documents can be retrieved now."
        return build_answer(text, "ready", status=status)
    if status.is_failed:
        still = "" if status.is_terminal else " The other documents are still being indexed."
        text = (
            f"{head} FAILED: {progress_line(status)}. {_failures(status)}{still} Fix or replace "
            "the failed document(s) and upload again; retrieval will not find their content."
        )
        return build_answer(text, "failed", status=status)
    if status.is_paused:
        text = (
            f"{head} is PAUSED: {progress_line(status)}. A paused document resumes only from "
            "Dify's console; it will not finish on its own: tell the user."
        )
        return build_answer(text, "paused", status=status)
    text = (
        f"{head} is NOT READY yet, still indexing: {progress_line(status)}. Check again or wait "
        "for it before retrieving; results retrieved now may be incomplete."
    )
    return build_answer(text, "working", status=status)


def tool_error_answer(
    text: str,
    outcome: Outcome = "invalid",
    *,
    dataset_id: str | None = None,
    batch: str | None = None,
    error: BaseException | None = None,
) -> Answer:
    """A tool error worded by its caller (e.g. arguments that do not fit a tool's schema)."""
    return build_answer(
        text, outcome, is_error=True, dataset_id=dataset_id, batch=batch, error=error
    )


def status_answer(status: BatchIndexingStatus) -> str:
    """The text of `answer_status` (what the adapters of earlier versions called)."""
    return answer_status(status).text
