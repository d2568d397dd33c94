"""What an upload may be (`FileInput`, `UploadPath`): read into memory, or checked up front.

Below the resource mixins: the uploads and the document updates both read files here.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import IO

from dify_ingest_tools._http.multipart import check_file_name, check_file_size

FileInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""A path, raw bytes, or a binary file object opened for reading."""

UploadPath = str | os.PathLike[str]
"""A file's path (`upload_files_and_wait`)."""


def check_upload_paths(files: list[Path], limit: int | None) -> None:
    """Refuse, before any upload, what `upload_files_and_wait` could not upload as asked."""
    seen: dict[str, Path] = {}
    for path in files:
        info = os.stat(path)  # FileNotFoundError names the path
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} is not a regular file")
        check_file_name(path.name)
        check_file_size(info.st_size, limit, str(path))
        other = seen.setdefault(path.name, path)
        if other != path:
            raise ValueError(
                f"{other} and {path} would be one document named {path.name!r} (Dify's create "
                "is an upsert by name): upload them separately under distinct names"
            )


async def load_file(
    file: FileInput, filename: str | None, limit: int | None = None
) -> tuple[bytes, str]:
    """Read the upload into memory with its name; refuse more than ``limit`` bytes."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        if not filename:
            raise ValueError(
                "filename is required when uploading bytes: Dify picks the parser from "
                "its extension (e.g. filename='notes.md')"
            )
        check_file_size(len(file), limit, f"the upload {filename!r}")
        return bytes(file), filename
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        check_file_size((await asyncio.to_thread(path.stat)).st_size, limit, str(path))
        content = await asyncio.to_thread(path.read_bytes)
        return content, filename or path.name
    if hasattr(file, "read"):
        # One byte past the limit is enough to know it is too large.
        size = -1 if limit is None else limit + 1
        content = await asyncio.to_thread(file.read, size)
        if isinstance(content, str):
            raise TypeError("open the file in binary mode ('rb')")
        name = filename or Path(str(getattr(file, "name", "") or "")).name
        if not name:
            raise ValueError("filename is required for a file object without a name")
        if limit is not None and len(content) > limit:
            raise ValueError(
                f"the file object {name!r} holds more than the upload limit of {limit:,} "
                "bytes: Dify would refuse it (413 file_too_large); pass max_file_size= to "
                "the client if the server allows more"
            )
        return bytes(content), name
    raise TypeError(
        f"file must be a path, bytes or a binary file object, got {type(file).__name__}"
    )
