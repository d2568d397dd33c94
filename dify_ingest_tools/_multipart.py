"""The multipart body of a file upload, sent so that Dify stores exactly the name given.

Dify reads the form with Werkzeug, which takes ``filename="..."`` verbatim: it does not
percent-decode it (aiohttp's `FormData` percent-encodes it, so ``my notes.txt`` became the
document ``my%20notes.txt``; recording 11). So the name goes out as raw UTF-8, as browsers
send it. The one sequence Werkzeug does rewrite in a quoted name is ``%22`` (to ``"``, the
HTML standard's escape for a quote); a name holding it also gets an RFC 5987 ``filename*``,
which Werkzeug reads after, and which wins (recording 11, case c).
"""

from __future__ import annotations

import mimetypes
import unicodedata
from urllib.parse import quote

import aiohttp

__all__ = ["MAX_NAME_LENGTH", "check_document_name", "check_file_name", "file_form"]

#: Dify cuts longer names (create-by-text to the first 200 characters; create-by-file to the
#: part before the first dot, then the extension), so two long names can land on one document.
MAX_NAME_LENGTH = 200
#: Dify refuses file names holding these (400 "Filename contains invalid characters").
_REFUSED = frozenset('/\\:*?"<>|')


def check_document_name(name: object) -> str:
    """A document name Dify will store as given; raises ``ValueError``/``TypeError`` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"name is {len(name)} characters; Dify keeps at most {MAX_NAME_LENGTH} and cuts the "
            "rest, so different long names would land on one document: shorten it"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"name {name!r} is not valid Unicode text") from None
    return name


def check_file_name(name: object) -> str:
    """A file name that reaches Dify unchanged; raises ``ValueError``/``TypeError`` otherwise.

    Control characters (CR and LF would end the part's header line) and the characters
    Dify's file service refuses are rejected before any request.
    """
    checked = check_document_name(name)
    for char in checked:
        if char in _REFUSED:
            raise ValueError(
                f"file name {checked!r} contains {char!r}; Dify refuses file names holding any "
                'of / \\ : * ? " < > | (pass filename= to upload under another name)'
            )
        if unicodedata.category(char) == "Cc":
            raise ValueError(
                f"file name {checked!r} contains the control character {char!r}, which a "
                "multipart header cannot carry"
            )
    return checked


def file_form(name: str, content: bytes, data_json: str) -> aiohttp.MultipartWriter:
    """``multipart/form-data`` with the ``file`` part named ``name`` and the ``data`` JSON.

    ``name`` must have passed `check_file_name` (no quote, backslash or line break).
    """
    disposition = f'form-data; name="file"; filename="{name}"'
    if "%22" in name:
        disposition += f"; filename*=UTF-8''{quote(name, safe='')}"
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    writer = aiohttp.MultipartWriter("form-data")
    writer.append(content, {"Content-Type": content_type, "Content-Disposition": disposition})
    writer.append(
        data_json,
        {
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": 'form-data; name="data"',
        },
    )
    return writer
