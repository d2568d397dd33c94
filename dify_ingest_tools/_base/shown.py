"""Text from Dify or the file system, made safe wherever it is shown: `shown`.

Document names, passages, error texts and file names are not ours: a hostile server, a proxy
or a file on disk can fill them with the API key (an echoed ``Authorization`` header),
megabytes, or terminal control sequences (an ANSI clear-screen, a BEL, a CR that overwrites
the line before it, an LF that forges a line of its own). The models keep what was sent (no
per-field validators on the polling hot path); every surface that shows such text — summaries,
exception messages, events, progress bars, tool answers, the ledger, CLI output — goes through
`shown`: credentials redacted by `errors.scrub`, control and bidi characters escaped (``\\x1b``,
``\\n``, ``\\u202e``), then cut to a limit (the whole result, marker included, fits it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from dify_ingest_tools._base.redaction import scrub

if TYPE_CHECKING:
    from dify_ingest_tools.events import IndexingEvent
    from dify_ingest_tools.models.documents import DifyDocument
    from dify_ingest_tools.models.status import BatchIndexingStatus, DocumentIndexingStatus

#: Longest document error shown, in characters (Dify's own are a sentence or two).
DOCUMENT_ERROR_LIMIT = 500
#: A message names this many failed documents; ``failed_documents`` has them all.
FAILED_SHOWN = 20
NO_ERROR_TEXT = "Dify gave no error text"
#: Longest text `shown` gives by default (a CLI field: a hit's passage, an error).
SHOWN_LIMIT = 200
#: Longest document or file name shown (Dify's own limit is 255; the file system's 255 bytes).
NAME_LIMIT = 120
#: Longest id, batch or status name from Dify shown (a UUID is 36, a batch 20).
ID_LIMIT = 64
#: Longest string from Dify in the CLI's ``--json`` output (a passage, a name).
JSON_TEXT_LIMIT = 10_000

# Redaction looks this far past a cut, so a key that straddles it is redacted whole and no
# part of it survives (keys and bearer tokens are far shorter).
_REDACT_WINDOW = 4096
# C0, DEL and C1 controls (ESC, BEL, CR, LF, and the one-byte CSI 0x9b), zero-width and bidi
# characters (a U+202E right-to-left override reorders the rest of a terminal line), line and
# paragraph separators, and lone surrogates (undecodable file-name bytes under
# surrogateescape, which a UTF-8 stream refuses to write).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` with every control, bidi and zero-width character written as an escape."""
    return _UNSAFE.sub(_escape, text)


def redacted_head(text: str, limit: int) -> tuple[str, bool]:
    """The first ``limit`` characters of ``text`` with credentials redacted, and whether
    ``text`` goes on past them (only a window past the cut is scanned, not all of 20 MB)."""
    window = text[: limit + _REDACT_WINDOW]
    clean = scrub(window, len(window))
    return clean[:limit], len(clean) > limit or len(text) > len(window)


def shown(text: str | None, limit: int = SHOWN_LIMIT) -> str:
    """Text from Dify or the file system, safe to show in a terminal, a log or a model's context.

    Credentials are redacted (the client's key, anything that looks like a Dify key, a
    ``Bearer`` or ``Authorization:`` credential), control characters escaped (BEL as
    ``\\x07``, ESC as ``\\x1b``, CR and LF as ``\\r`` and ``\\n``), and the result cut to at
    most ``limit`` characters, ending ``…[cut, N characters]`` when it was cut.

    Args:
        text: The text (None shows as an empty string).
        limit: The longest result, in characters (the marker included).
    """
    if not text:
        return ""
    head, more = redacted_head(text, limit)
    safe = escaped(head)
    if not more and len(safe) <= limit:
        return safe
    mark = f"…[cut, {len(text):,} characters]"
    if len(mark) * 2 > limit:
        mark = "…"
    return safe[: max(limit - len(mark), 0)] + mark


_D = TypeVar("_D", "DocumentIndexingStatus", "DifyDocument")


def shown_json(value: Any, limit: int = JSON_TEXT_LIMIT) -> Any:
    """A JSON value with every string redacted and cut to ``limit`` characters (its control
    characters are left to the JSON encoder, which escapes them)."""
    if isinstance(value, str):
        return scrub(value, limit)
    if isinstance(value, dict):
        return {scrub(str(key), 200): shown_json(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [shown_json(item, limit) for item in value]
    return value


def shown_error(text: str | None) -> str | None:
    """A document's ``error``, safe to show (None when there is none)."""
    return shown(text, DOCUMENT_ERROR_LIMIT) if text else None


def error_text(text: str | None) -> str:
    """A document's ``error``, safe to show, or a sentence saying Dify gave none."""
    return shown_error(text) or NO_ERROR_TEXT


def failures(status: BatchIndexingStatus) -> str:
    """``document <id>: <error>; ...`` for the failed documents (the first `FAILED_SHOWN`)."""
    failed = status.failed_documents
    text = "; ".join(f"document {doc.id}: {error_text(doc.error)}" for doc in failed[:FAILED_SHOWN])
    if len(failed) > FAILED_SHOWN:
        text += f"; and {len(failed) - FAILED_SHOWN} more"
    return text


def scrubbed_document(document: _D) -> _D:
    """The document with its ``error`` safe to show (itself when it has none)."""
    if not document.error:
        return document
    return document.model_copy(update={"error": shown_error(document.error)})


def scrubbed_status(status: BatchIndexingStatus) -> BatchIndexingStatus:
    """The status with every document's ``error`` safe to show, for JSON output."""
    if not any(doc.error for doc in status.documents):
        return status
    documents = tuple(scrubbed_document(doc) for doc in status.documents)
    return status.model_copy(update={"documents": documents})


def scrubbed_event(event: IndexingEvent) -> IndexingEvent:
    """The event with the documents' errors in its snapshot safe to show."""
    update: dict[str, object] = {}
    if event.status is not None:
        update["status"] = scrubbed_status(event.status)
    if event.document is not None:
        update["document"] = scrubbed_document(event.document)
    return event.model_copy(update=update) if update else event
