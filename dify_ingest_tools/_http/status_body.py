"""Reading an ``indexing-status`` answer: bounded first, then validated in one native pass.

The answer is validated by pydantic-core straight from the bytes (the polling hot path), as
`~dify_ingest_tools.models.status.IndexingStatusPayload` describes it. A
hostile or broken server can list hundreds of thousands of documents within the response
size cap; building a model for each costs gigabytes and seconds of CPU on the event loop. So
the number of documents is checked against `MAX_BATCH_DOCUMENTS` before any is built.
"""

from __future__ import annotations

import json
import re

from pydantic import TypeAdapter, ValidationError
from pydantic_core import SchemaValidator
from typing_extensions import TypedDict
from yarl import URL

from dify_ingest_tools._base.config import public_url
from dify_ingest_tools._http.answer_errors import validation_error
from dify_ingest_tools.errors import DifyResponseError
from dify_ingest_tools.models.status import MAX_BATCH_DOCUMENTS, DocumentIndexingStatus

_DECODER = json.JSONDecoder()


class _Envelope(TypedDict):
    # `IndexingStatusPayload` as a TypedDict: validated the same way, but a dict is cheaper
    # to build than a model instance we would throw away at once.
    data: tuple[DocumentIndexingStatus, ...]


_ENVELOPE: SchemaValidator | None = None


def _envelope() -> SchemaValidator:
    # Built on first use, not at import (import time is budgeted: bench_import.py).
    global _ENVELOPE
    _ENVELOPE = TypeAdapter(_Envelope).validator  # type: ignore[assignment]
    assert _ENVELOPE is not None
    return _ENVELOPE


_SPACE = re.compile(r"[ \t\n\r]*")


def parse_status_body(
    raw: bytes, url: URL, *, limit: int = MAX_BATCH_DOCUMENTS
) -> tuple[DocumentIndexingStatus, ...]:
    """The documents of an ``indexing-status`` answer.

    Raises:
        DifyResponseError: ``invalid_json``, ``unexpected_shape`` (``data`` is not a list, a
            document has no string ``id``), or ``too_many_documents`` (more than ``limit``).
    """
    # Every item but the last is followed by a comma, so a body with fewer commas than the
    # limit cannot hold too many; and one shorter than two bytes per item has fewer commas.
    # A one-document answer (~350 bytes, the hot path) costs a length comparison.
    if len(raw) >= 2 * limit and raw.count(b",") >= limit and _data_longer_than(raw, limit):
        raise DifyResponseError(
            f"the indexing-status answer lists more than {limit} documents; a Dify batch "
            "holds the documents of one create call (a few hundred at most), so this is not "
            "a Dify answer for a batch: check base_url and any proxy in between",
            status=200,
            code="too_many_documents",
            url=public_url(url),
            method="GET",
        )
    try:
        documents: tuple[DocumentIndexingStatus, ...] = (_ENVELOPE or _envelope()).validate_json(
            raw
        )["data"]
        return documents
    except ValidationError as exc:
        raise validation_error(exc, raw, url, "GET") from None


def _data_longer_than(raw: bytes, limit: int) -> bool:
    """Whether a top-level ``data`` array has more than ``limit`` items.

    Items of ``data`` are decoded one at a time and dropped, and at most ``limit + 1`` are
    read: time and memory stay in proportion to the limit, not to the answer. Other values
    are decoded whole by the C scanner (in proportion to their size). A body that is not a
    JSON object is left to the validation, which reports it.
    """
    try:
        text = raw.decode("utf-8")
        pos = _skip(text, 0)
        if text[pos : pos + 1] != "{":
            return False
        pos = _skip(text, pos + 1)
        if text[pos : pos + 1] == "}":
            return False
        while True:
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if not isinstance(key, str) or text[pos : pos + 1] != ":":
                return False
            pos = _skip(text, pos + 1)
            # JSON objects may repeat a key: every "data" is checked, whichever one wins.
            if key == "data" and text[pos : pos + 1] == "[":
                longer, pos = _array_longer_than(text, pos + 1, limit)
                if longer:
                    return True
            else:
                _, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if text[pos : pos + 1] != ",":
                return False
            pos = _skip(text, pos + 1)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return False


def _array_longer_than(text: str, pos: int, limit: int) -> tuple[bool, int]:
    """Count the items of the array starting at ``pos`` (after its ``[``), up to ``limit + 1``."""
    pos = _skip(text, pos)
    if text[pos : pos + 1] == "]":
        return False, pos + 1
    count = 0
    while True:
        _, pos = _DECODER.raw_decode(text, pos)
        count += 1
        if count > limit:
            return True, pos
        pos = _skip(text, pos)
        separator = text[pos : pos + 1]
        if separator == "]":
            return False, pos + 1
        if separator != ",":
            raise ValueError("malformed array")
        pos = _skip(text, pos + 1)


def _skip(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos
