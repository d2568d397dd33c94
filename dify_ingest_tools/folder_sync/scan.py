"""What a folder holds, for ``sync``: its files, named as documents, and the ones left out.

The folder is the boundary. Symlinks are not followed unless asked (and even then never to a
target outside the folder); only regular files are read (a FIFO would block the run for ever);
a file over the upload limit is left out before anything reads it. A file is hashed in chunks,
never read whole, and its size and modification time are compared before and after, so a file
written to while it is read is reported instead of uploaded half old, half new.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dify_ingest_tools._http.multipart import DEFAULT_MAX_FILE_SIZE

#: Joins the folders of a file's relative path in its document name (Dify refuses ``/``).
NAME_SEPARATOR = "__"
_CHUNK = 1 << 20


class FileVanished(Exception):
    """The file was there when the folder was listed and is gone now."""


class ChangedDuringRead(Exception):
    """The file's size or modification time changed while it was read or sent."""


@dataclass(frozen=True)
class Snapshot:
    """A file's size and modification time: equal snapshots, same bytes (as far as we can tell)."""

    size: int
    mtime_ns: int


@dataclass(frozen=True)
class LeftOut:
    """A file of the folder that is not synced, and why."""

    name: str
    source: str
    reason: str
    #: The file exists and is meant to stay (a symlink, a file too large): its document,
    #: if any, is kept rather than deleted.
    present: bool = True


@dataclass
class FolderScan:
    """The folder's files in scope (document name -> path) and what was left out."""

    root: Path
    #: The folder's own name (of its real path: ``.`` names the current folder).
    name: str = ""
    files: dict[str, Path] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    left_out: list[LeftOut] = field(default_factory=list)


def document_name(relative: Path) -> str:
    """The document name of a path relative to the folder: ``a/b.md`` is ``a__b.md``."""
    return NAME_SEPARATOR.join(relative.parts)


def in_scope(name: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether ``--include`` / ``--exclude`` keep a document name in this run's scope."""
    if include and not any(fnmatch.fnmatch(name, pattern) for pattern in include):
        return False
    return not any(fnmatch.fnmatch(name, pattern) for pattern in exclude)


def _inside(target: Path, root: Path) -> bool:
    return target == root or root in target.parents


def scan(
    directory: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_symlinks: bool = False,
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
) -> FolderScan:
    """The files to sync, hidden files and folders skipped.

    Raises:
        ValueError: ``directory`` is not a folder, or two files would share a document name.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    real_root = root.resolve()
    result = FolderScan(root=root, name=real_root.name)
    seen_dirs = {real_root}

    def leave(relative: Path, reason: str, *, present: bool = True) -> None:
        name = document_name(relative)
        if in_scope(name, include, exclude):
            result.left_out.append(LeftOut(name, relative.as_posix(), reason, present))

    def symlink_target(path: Path) -> Path | None:
        """The target inside the folder a followed symlink points to, or None (left out)."""
        relative = path.relative_to(root)
        if not follow_symlinks:
            reason = "a symlink, not followed; --follow-symlinks follows those within the folder"
            leave(relative, reason)
            return None
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            leave(relative, "a broken symlink")
            return None
        if not _inside(target, real_root):
            leave(relative, "a symlink to outside the folder, never followed")
            return None
        return target

    for folder, dirs, files in os.walk(root, followlinks=follow_symlinks):
        here = Path(folder)
        kept_dirs = []
        for name in sorted(dirs):
            if name.startswith("."):
                continue
            path = here / name
            if path.is_symlink():
                target = symlink_target(path)
                if target is None or target in seen_dirs:
                    continue  # left out, or a loop back into a folder already walked
                seen_dirs.add(target)
            kept_dirs.append(name)
        dirs[:] = kept_dirs
        for filename in sorted(files):
            if filename.startswith("."):
                continue
            path = here / filename
            relative = path.relative_to(root)
            name = document_name(relative)
            if not in_scope(name, include, exclude):
                continue
            if path.is_symlink() and symlink_target(path) is None:
                continue
            try:
                info = path.stat()
            except OSError:
                leave(relative, "vanished", present=False)
                continue
            if not stat.S_ISREG(info.st_mode):
                leave(relative, "not a regular file")
                continue
            if max_file_size is not None and info.st_size > max_file_size:
                leave(
                    relative,
                    f"{info.st_size} bytes, over the upload limit of {max_file_size} bytes "
                    "(Dify refuses it; --max-file-size if your server allows more)",
                )
                continue
            if name in result.files:
                raise ValueError(
                    f"{result.files[name]} and {path} would both be the document {name!r}; "
                    "rename one (folders are joined with __ in document names)"
                )
            result.files[name] = path
            result.sources[name] = relative.as_posix()
    return result


def snapshot(path: Path) -> Snapshot:
    """The file's size and modification time (`FileVanished` if it is gone)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FileVanished(str(path)) from None
    return Snapshot(info.st_size, info.st_mtime_ns)


def digest(path: Path) -> tuple[str, Snapshot]:
    """SHA-256 of the file, read in chunks, with the snapshot it was read at.

    Raises:
        FileVanished: The file is gone.
        ChangedDuringRead: Its size or modification time changed while it was read.
    """
    before = snapshot(path)
    sha = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                sha.update(chunk)
    except FileNotFoundError:
        raise FileVanished(str(path)) from None
    after = snapshot(path)
    if after != before:
        raise ChangedDuringRead(str(path))
    return sha.hexdigest(), after
