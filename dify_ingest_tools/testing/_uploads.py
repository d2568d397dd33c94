"""Uploaded files: reading the multipart form, and what a parser would get out of a file."""

from __future__ import annotations

import re

from aiohttp import BodyPartReader, web

from ._script import PDF_ERROR

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

#: ``(field name, filename, content, content type)``
UploadPart = tuple[str, str, bytes, str | None]


def supported(extension: str) -> bool:
    """Whether Dify's default ETL accepts files with this (lower-case) extension."""
    return extension in TEXT_EXTENSIONS or extension in BINARY_EXTENSIONS


async def read_multipart(request: web.BaseRequest) -> tuple[list[UploadPart], dict[str, str]]:
    """The file parts, in order, and the plain form fields (first value of each).

    A body that is not ``multipart/*``, or is malformed, has neither.
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
            name = part.name or ""
            if part.filename is not None:
                content = bytes(await part.read(decode=False))
                files.append((name, part.filename, content, part.headers.get("Content-Type")))
            else:
                form.setdefault(name, await part.text())
    except ValueError:
        return [], {}
    return files, form


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
