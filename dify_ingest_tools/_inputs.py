"""Checks on caller-supplied path parts, done before any request.

Dify routes ``dataset_id`` through Werkzeug's ``uuid`` converter and ``batch`` through its
``string`` converter (anything without ``/``). We are stricter: nothing a caller passes may
change which route a request reaches, so hostile values fail here with a ValueError.
"""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = ["check_batch", "check_dataset_id", "check_document_id", "path_part"]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Real batches are 20 digits; console batches are similar. Leave room, but bound it.
_MAX_BATCH_LENGTH = 256
_FORBIDDEN_IN_BATCH = frozenset("/?#%\\")


def _check_uuid(value: object, what: str) -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError(
            f"{what} must be a UUID like 7789611a-7d24-4b75-ab16-a005f3cbd9b4, got {value!r:.80}"
        )
    return value


def check_dataset_id(value: object) -> str:
    """Return ``value`` if it is a UUID string, else raise ValueError."""
    return _check_uuid(value, "dataset_id")


def check_document_id(value: object) -> str:
    """Return ``value`` if it is a UUID string, else raise ValueError."""
    return _check_uuid(value, "document_id")


def check_batch(value: object) -> str:
    """Return ``value`` if it is a safe batch id, else raise ValueError.

    A batch is the string ``create-by-text`` / ``create-by-file`` returned (20 digits on
    current servers). Rejected: empty, whitespace or control characters, ``/ ? # % \\``,
    ``.`` / ``..`` (URL normalisation would remove them) and anything over 256 characters.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"batch must be a non-empty string, got {value!r:.80}")
    if len(value) > _MAX_BATCH_LENGTH:
        raise ValueError(f"batch is {len(value)} characters long; Dify batches are 20 digits")
    bad = [ch for ch in value if ch in _FORBIDDEN_IN_BATCH or ch.isspace() or not ch.isprintable()]
    if bad or value in (".", ".."):
        raise ValueError(
            f"batch {value!r:.80} contains characters that cannot be part of a Dify batch id "
            "(no whitespace, '/', '?', '#', '%' or '\\'); pass the `batch` string that "
            "create-by-text or create-by-file returned"
        )
    return value


def path_part(value: str) -> str:
    """Percent-encode one path segment (after the checks above, a belt-and-braces step)."""
    return quote(value, safe="")
