"""Uploaded files: reading the multipart form, and what a parser would get out of a file."""

from __future__ import annotations

import io
import os
import re
from typing import NamedTuple

from aiohttp import BodyPartReader, hdrs, web

from ._disposition import parse_options_header
from ._script import PDF_ERROR

#: Dify's file service cuts longer names, and refuses names holding these characters.
MAX_NAME_LENGTH = 200
REFUSED_FILE_NAME_CHARACTERS = frozenset('/\\:*?"<>|')

#: Dify's default ETL extensions; anything else is refused with an empty message (02b).
TEXT_EXTENSIONS = frozenset(
    {"txt", "markdown", "md", "mdx", "html", "htm", "csv", "vtt", "properties"}
)
#: Binary formats: the magic bytes a parser needs, and the error it raises without them.
BINARY_EXTENSIONS: dict[str, tuple[bytes, str]] = {
    "pdf": (b"%PDF", PDF_ERROR),
    "docx": (b"PK", "Package not found at '/tmp/{token}.docx'"),
    "xlsx": (b"PK", "File is not a zip file"),
    "xls": (b"\xd0\xcf\x11\xe0", "Unsupported format, or corrupt file"),
}
_PRINTABLE_RUN = re.compile(rb"[ -~]{4,}")

#: Dify's upload limit out of the box (``UPLOAD_FILE_SIZE_LIMIT=15``, in MiB).
DEFAULT_MAX_FILE_SIZE = 15 * 1024 * 1024
#: The answer to a larger file: 413 ``file_too_large`` (the OpenAPI spec's example body).
FILE_TOO_LARGE = "File size exceeded."
#: Werkzeug's (and Flask's) ``max_form_memory_size``: a plain field may hold this much.
MAX_FORM_FIELD = 500_000
_CHUNK = 256 * 1024


class UploadPart(NamedTuple):
    """One file part of a multipart form."""

    field: str
    filename: str
    #: The bytes, or None when the file was over the limit (read to its end and dropped).
    content: bytes | None
    content_type: str | None


def supported(extension: str) -> bool:
    """Whether Dify's default ETL accepts files with this (lower-case) extension."""
    return extension in TEXT_EXTENSIONS or extension in BINARY_EXTENSIONS


async def read_multipart(
    request: web.BaseRequest, max_file_size: int | None = None
) -> tuple[list[UploadPart], dict[str, str]]:
    """The file parts, in order, and the plain form fields (first value of each).

    A file is read in chunks and kept only up to ``max_file_size`` bytes: a larger one is read
    to its end (so the client can be answered) and dropped, its content None. A plain field
    over Werkzeug's 500 kB makes the form unreadable. Memory stays bounded by the limit whatever the
    client sends.

    Each part's name and file name are read from its ``Content-Disposition`` as Werkzeug reads
    them (`parse_options_header`), not as aiohttp would: a part with a ``filename`` parameter
    is a file, percent escapes in a quoted name are kept, and a later parameter wins. A body
    that is not ``multipart/*``, or is malformed, has neither files nor fields: Werkzeug's
    form parser gives up silently, part headers that are not UTF-8 included.
    """
    files: list[UploadPart] = []
    form: dict[str, str] = {}
    if not request.content_type.startswith("multipart/"):
        return files, form
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            disposition = part.headers.get(hdrs.CONTENT_DISPOSITION)
            if disposition is not None:
                # aiohttp keeps undecodable header bytes as surrogates; Werkzeug decodes
                # part headers strictly as UTF-8 and fails.
                disposition.encode("utf-8")
            _, options = parse_options_header(disposition)
            name = options.get("name", "")
            filename = options.get("filename")
            if filename is not None:
                content = await _read_limited(part, max_file_size)
                files.append(
                    UploadPart(name, filename, content, part.headers.get(hdrs.CONTENT_TYPE))
                )
            else:
                raw = await _read_limited(part, MAX_FORM_FIELD)
                if raw is None:  # Werkzeug refuses it; here the form is simply unreadable
                    raise ValueError("form field over the limit")
                form.setdefault(name, bytes(part.decode(raw)).decode(part.get_charset("utf-8")))
    except ValueError:  # UnicodeError included
        return [], {}
    return files, form


async def _read_limited(part: BodyPartReader, limit: int | None) -> bytes | None:
    kept: io.BytesIO | None = io.BytesIO()
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if kept is not None and limit is not None and size > limit:
            kept = None  # over the limit: keep reading to the end, holding nothing
        if kept is not None:
            kept.write(chunk)
    # getvalue() hands over the buffer without a copy when nothing else holds it.
    return kept.getvalue() if kept is not None else None


def stored_file_name(filename: str) -> str:
    """The name Dify's file service stores: over 200 characters, the part before the first
    dot cut to 200, then the extension."""
    if len(filename) <= MAX_NAME_LENGTH:
        return filename
    extension = os.path.splitext(filename)[1].lstrip(".").lower()
    return filename.split(".")[0][:MAX_NAME_LENGTH] + "." + extension


def refused_file_name(filename: str) -> bool:
    """Whether Dify's file service refuses the name (400 "Filename contains invalid ...")."""
    return any(char in REFUSED_FILE_NAME_CHARACTERS for char in filename)


def extract_text(extension: str, content: bytes, token: str) -> tuple[str, str | None]:
    """The text of an uploaded file, and the parser error when its bytes do not fit its type.

    Args:
        extension: A supported extension (see :func:`supported`).
        content: The file's bytes.
        token: Random characters for error texts that name a temp file.
    """
    if extension in TEXT_EXTENSIONS:
        return content.decode("utf-8", errors="replace"), None
    magic, error = BINARY_EXTENSIONS[extension]
    if not content.startswith(magic):
        # Accepted with 200, then the document fails while parsing (02a).
        return "", error.format(token=token)
    return " ".join(run.decode() for run in _PRINTABLE_RUN.findall(content)), None
