"""The multipart body of a file upload, sent so that Dify stores exactly the name given.

Dify reads the form with Werkzeug, which takes ``filename="..."`` verbatim: it does not
percent-decode it (aiohttp's `FormData` percent-encodes it, so ``my notes.txt`` became the
document ``my%20notes.txt``; recording 11). So the name goes out as raw UTF-8, as browsers
send it. The one sequence Werkzeug does rewrite in a quoted name is ``%22`` (to ``"``, the
HTML standard's escape for a quote); a name holding it also gets an RFC 5987 ``filename*``,
which Werkzeug reads after, and which wins (recording 11, case c).

A file given as a path is streamed from disk (`StreamedFile`), never read whole: one attempt
holds one chunk in memory, whatever the file's size.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp.abc import AbstractStreamWriter

#: Dify cuts longer names (create-by-text to the first 200 characters; create-by-file to the
#: part before the first dot, then the extension), so two long names can land on one document.
MAX_NAME_LENGTH = 200
#: Dify refuses file names holding these (400 "Filename contains invalid characters").
_REFUSED = frozenset('/\\:*?"<>|')
#: Dify's upload limit out of the box (``UPLOAD_FILE_SIZE_LIMIT=15``, in MiB: the file
#: service compares ``limit * 1024 * 1024`` with the file's size).
DEFAULT_MAX_FILE_SIZE = 15 * 1024 * 1024
# Bytes read from disk (and held) at a time while a file is sent.
_CHUNK = 256 * 1024


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


def check_file_size(size: int, limit: int | None, what: str) -> None:
    """Refuse (``ValueError``) a file the server would refuse as too large, before any request."""
    if limit is not None and size > limit:
        raise ValueError(
            f"{what} is {size:,} bytes, over the upload limit of {limit:,} bytes "
            f"({limit / 1048576:g} MiB; Dify's default is 15 MiB): Dify would refuse it "
            "(413 file_too_large). Split it, or if the server allows more "
            "(UPLOAD_FILE_SIZE_LIMIT), pass max_file_size= to the client"
        )


class FileChangedError(OSError):
    """A file changed (its size or modification time) while it was being uploaded.

    What Dify received would not be the file on disk, so the upload is not trusted; upload
    the file again once it is stable. ``filename`` is the path.
    """


class StreamedFile(aiohttp.payload.Payload):
    """A file sent from disk in chunks: one attempt holds one chunk, never the whole file.

    Each instance sends once (`write` opens the file); a retried request builds a new one,
    so every attempt reads the file afresh. The file must keep the size and modification
    time it had when the upload was asked for (``size``/``mtime_ns``): a change, before or
    while sending, raises `FileChangedError` instead of sending a body that does not match
    the declared length (which would leave the server waiting for bytes that never come).

    Attributes:
        digest: SHA-256 hex of the bytes sent, once a write has finished (else None).
        failure: The `FileChangedError` or `OSError` that stopped a write, if any (aiohttp
            reports it to the caller as a connection error; the client raises this instead).
    """

    _autoclose = True  # the file is opened and closed inside `write`

    def __init__(self, path: Path, *, size: int, mtime_ns: int, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._path = path
        self._size = size  # aiohttp's `size`: the multipart body gets a Content-Length
        self._expected = size
        self._mtime_ns = mtime_ns
        self.digest: str | None = None
        self.failure: OSError | None = None

    def check_unchanged(self) -> None:
        """Raise `FileChangedError` (or ``FileNotFoundError``) unless the file is as it was."""
        self._check(os.stat(self._path), self._expected)

    def _check(self, info: os.stat_result, read: int) -> None:
        if info.st_size != self._expected or read != self._expected:
            raise FileChangedError(
                f"{self._path} changed size while it was being uploaded (it had "
                f"{self._expected:,} bytes, now {info.st_size:,}; {read:,} read): upload it "
                "again once it is stable"
            )
        if info.st_mtime_ns != self._mtime_ns:
            raise FileChangedError(
                f"{self._path} was modified while it was being uploaded: upload it again "
                "once it is stable"
            )

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed file is sent from disk, not decoded into memory")

    async def write(self, writer: AbstractStreamWriter) -> None:
        try:
            await self._send(writer)
        except OSError as error:
            self.failure = error
            raise

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        await self.write(writer)

    async def _send(self, writer: AbstractStreamWriter) -> None:
        opening = asyncio.ensure_future(asyncio.to_thread(self._path.open, "rb"))
        try:
            handle = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # Cancelled (a dropped connection, a deadline) while the thread opens the file:
            # it still opens it, so close it then.
            opening.add_done_callback(_close_opened)
            raise
        try:
            sha = hashlib.sha256()
            read = 0

            def next_chunk() -> bytes:
                # One byte past the expected end: a file that grew is caught, not cut.
                chunk = handle.read(min(_CHUNK, self._expected - read + 1))
                sha.update(chunk)
                return chunk

            while chunk := await asyncio.to_thread(next_chunk):
                read += len(chunk)
                if read > self._expected:
                    break
                await writer.write(chunk)
            self._check(await asyncio.to_thread(os.fstat, handle.fileno()), read)
            self.digest = sha.hexdigest()
        finally:
            handle.close()


def _close_opened(opening: asyncio.Future[Any]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


def file_form(name: str, content: bytes | StreamedFile, data_json: str) -> aiohttp.MultipartWriter:
    """``multipart/form-data`` with the ``file`` part named ``name`` and the ``data`` JSON.

    ``name`` must have passed `check_file_name` (no quote, backslash or line break).
    ``content`` is the file's bytes, or a `StreamedFile` sent from disk.
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
