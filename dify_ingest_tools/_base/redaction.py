"""Server text made safe to show: the API key and credentials redacted, then bounded.

Everything a server sends that we show (messages, bodies, hints, the text of a failed
connection) goes through `scrub`: bounded (a 20 MB error message must not become 20 MB
exception strings, events and tool answers) and with the API key redacted (a proxy may echo
the Authorization header back).
"""

from __future__ import annotations

import re
import threading
from typing import Any

#: Longest server-provided text kept in a message or hint, in characters.
SHOWN_TEXT_LIMIT = 2000
#: Longest error body kept in ``DifyAPIError.body`` (as JSON text), in characters.
BODY_LIMIT = 8000
_REDACTED = "[redacted]"
_REDACT_MARGIN = 4096
# RFC 6750 token characters: the redaction stops where a JSON string or header value ends.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*")
_AUTH_HEADER = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?!bearer\b)[^\s\"',;]+")
# Dify API keys look like ``dataset-`` / ``app-`` and 24 letters and digits.
_KEY_LIKE = re.compile(r"\b(?:dataset|app)-[A-Za-z0-9]{16,}\b")
_secrets: frozenset[str] = frozenset()
_secrets_lock = threading.Lock()


def register_secret(secret: str) -> None:
    """Redact ``secret`` from every server-provided text shown from now on (the client's key)."""
    global _secrets
    if len(secret) < 4:  # too short to redact without mangling ordinary text
        return
    with _secrets_lock:
        _secrets = _secrets | {secret}


def shown_text(text: str, limit: int = SHOWN_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[cut, {len(text)} characters]"


def scrub(text: str, limit: int = SHOWN_TEXT_LIMIT) -> str:
    """Server-provided ``text``, safe to show: key and credentials redacted, then bounded.

    Redacted: every registered key (`register_secret`), anything that looks like a Dify key,
    and the credential after ``Bearer`` or an ``Authorization:`` header.
    """
    if not text:
        return text
    # Redact a generous prefix, not all of a 20 MB text: any key that starts before the final
    # cut ends well inside this prefix, so no part of it can survive the cut.
    head = text[: limit + _REDACT_MARGIN]
    for secret in _secrets:
        if secret in head:
            head = head.replace(secret, _REDACTED)
    head = _BEARER.sub(r"\1\2" + _REDACTED, head)
    head = _AUTH_HEADER.sub(r"\1" + _REDACTED, head)
    head = _KEY_LIKE.sub(_REDACTED, head)
    if len(text) <= limit:
        return head
    return f"{head[:limit]}…[cut, {len(text)} characters]"


def _scrub_payload(payload: Any, budget: list[int]) -> Any:
    """A JSON value with every string scrubbed and the whole kept near ``BODY_LIMIT``."""
    if isinstance(payload, str):
        cut = scrub(payload, max(64, min(SHOWN_TEXT_LIMIT, budget[0])))
        budget[0] -= len(cut)
        return cut
    if isinstance(payload, dict):
        out: dict[str, Any] = {}
        for key, value in payload.items():
            if budget[0] <= 0:
                out["…"] = "[cut]"
                break
            out[scrub(str(key), 200)] = _scrub_payload(value, budget)
        return out
    if isinstance(payload, list):
        items: list[Any] = []
        for value in payload:
            if budget[0] <= 0:
                items.append("…[cut]")
                break
            items.append(_scrub_payload(value, budget))
        return items
    budget[0] -= 8
    return payload


def safe_body(body: Any) -> Any:
    if body is None:
        return None
    if isinstance(body, str):
        return scrub(body, BODY_LIMIT)
    return _scrub_payload(body, [BODY_LIMIT])
