"""What a sync will do, decided from the folder and the knowledge base alone (pure, no I/O).

The knowledge base is the manifest (design.md §12b): every document ``sync`` writes carries its
owner tag, its source path and its content hash (`models.ownership.Mark`). So a plan needs only the
folder's hashes and one listing of the knowledge base: a second run from a fresh machine plans
the same as the laptop that ran yesterday, and nothing that carries another owner's tag, or
none, is ever updated or deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dify_ingest_tools.folder_sync.scan import LeftOut, in_scope
from dify_ingest_tools.models.created import CreatedDocument
from dify_ingest_tools.models.ownership import Mark

SyncAction = Literal["upload", "update", "skip", "delete", "keep", "conflict", "leave"]
#: In ``ours``: a create was in flight under this name when a run died; whichever unmarked
#: document holds the name now is that upload.
ANY_DOCUMENT = "*"
#: By default a run may delete at most this share of the documents it owns (at least one).
DELETE_SHARE = 0.2


class SyncRefused(ValueError):
    """The run would delete too much; nothing was written (the CLI exits 2)."""


@dataclass(frozen=True)
class Remote:
    """A document of the knowledge base as its list item shows it."""

    id: str
    name: str
    mark: Mark
    indexing_status: str | None = None
    error: str | None = None


@dataclass
class SyncItem:
    """One file, or one owned document whose file is gone.

    Attributes:
        name: The document name: the path relative to the folder, parts joined by ``__``.
        action: ``upload`` (new), ``update`` (changed, or adopted), ``skip`` (unchanged),
            ``delete`` (file removed, ``--delete``), ``keep`` (file removed, or left out, and
            its document kept), ``conflict`` (a document of that name that this sync does not
            own: never touched) or ``leave`` (a file not synced: ``reason`` says why).
        path: The local file (None for a removed one).
        source: The path relative to the folder (``guides/setup.md``).
        content_hash: SHA-256 of the file.
        document_id: Dify's document id once known.
        batch: The batch of this run's upload.
        outcome: ``done`` (Dify said ``completed``, or deleted), ``failed``, ``empty``
            (``completed`` with 0 segments: nothing will be found), ``not_ready``
            (not seen ``completed``), ``not_started`` (stopped first), ``skipped`` (left out),
            ``conflict``, ``vanished``, ``changed`` (changed during read), or None until known.
        error: Dify's error text for a failure; the reason for anything not done.
        known_state: The document's ``indexing_status`` in the listing, before this run.
        adopt: Write this sync's marks on the document (new to the manifest, or adopted).
    """

    name: str
    action: SyncAction
    path: Path | None = None
    source: str | None = None
    content_hash: str | None = None
    document_id: str | None = None
    batch: str | None = None
    outcome: str | None = None
    error: str | None = None
    known_state: str | None = None
    adopt: bool = False
    #: What this run's create returned (its wait then needs no extra lookup).
    created: CreatedDocument | None = field(default=None, repr=False)

    def describe(self) -> str:
        """One line of a dry run's plan: the action, the name and why."""
        why = {
            "skip": "unchanged",
            "keep": self.error or "file removed; --delete deletes it",
            "conflict": self.error,
            "leave": self.error,
            "update": "adopted" if self.adopt and self.known_state is not None else "changed",
        }.get(self.action)
        return f"{self.action:<8} {self.name}" + (f"  ({why})" if why else "")


@dataclass
class Plan:
    """The items of a run, and how many documents of the knowledge base this owner has."""

    items: list[SyncItem] = field(default_factory=list)
    owned: int = 0


def _not_ours(remote: Remote) -> str:
    if remote.mark.owner is not None:
        return f"the name belongs to owner {remote.mark.owner!r}'s document: left untouched"
    return "the name belongs to a document with no owner tag: left untouched; --adopt claims it"


def plan(
    files: Mapping[str, tuple[Path, str, str]],
    left_out: Sequence[LeftOut],
    remote: Iterable[Remote],
    *,
    owner: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    delete: bool = False,
    retry_failed: bool = False,
    adopt: bool = False,
    ours: Mapping[str, tuple[str, str | None]] | None = None,
) -> Plan:
    """Decide per file and per owned document.

    Args:
        files: name -> (path, source, content hash) of the files read.
        left_out: The folder's files not synced (symlinks, too large, unreadable).
        remote: Every document of the knowledge base.
        owner: This sync's owner tag.
        delete: Delete owned documents whose file is gone (else keep them).
        retry_failed: Upload unchanged files again whose document failed to index.
        adopt: Claim documents of a file's name that carry no owner tag.
        ours: name -> (document id or `ANY_DOCUMENT`, content hash) of uploads this machine
            saw (a crash between a create and its marks): those documents are adopted.
    """
    by_name: dict[str, list[Remote]] = {}
    for document in remote:
        by_name.setdefault(document.name, []).append(document)
    known = ours or {}
    result = Plan()
    for name, (path, source, digest) in files.items():
        item = SyncItem(name=name, action="upload", path=path, source=source, content_hash=digest)
        result.items.append(item)
        candidates = by_name.get(name, [])
        if not candidates:
            item.adopt = True
            continue
        owned = next((d for d in candidates if d.mark.owner == owner), None)
        claimed = owned
        if claimed is None:
            unmarked = [d for d in candidates if d.mark.owner is None]
            recorded = known.get(name)
            claimed = next(
                (d for d in unmarked if recorded and recorded[0] in (d.id, ANY_DOCUMENT)), None
            )
            if claimed is None and adopt and unmarked:
                claimed = unmarked[0]
            if claimed is None:
                item.action, item.error = "conflict", _not_ours(candidates[0])
                item.document_id = candidates[0].id
                continue
            item.adopt = True
        item.document_id, item.known_state = claimed.id, claimed.indexing_status
        stored_hash = claimed.mark.content_hash
        if claimed is not owned:
            recorded = known.get(name)
            stored_hash = recorded[1] if recorded and recorded[0] == claimed.id else None
        elif claimed.mark.source != source:
            item.adopt = True  # the source mark is missing or stale: write it again
        if stored_hash != digest or (claimed.indexing_status == "error" and retry_failed):
            item.action = "update"
        else:
            item.action = "skip"
            if claimed.indexing_status == "error":
                item.error = claimed.error or "indexing failed (see the document in Dify)"
    present = set(files) | {entry.name for entry in left_out if entry.present}
    for entry in left_out:
        item = SyncItem(name=entry.name, action="leave", source=entry.source, error=entry.reason)
        result.items.append(item)
    for document in (d for docs in by_name.values() for d in docs):
        if document.mark.owner != owner:
            continue
        result.owned += 1
        if document.name in files or not in_scope(document.name, include, exclude):
            continue
        item = SyncItem(
            name=document.name,
            action="delete" if delete else "keep",
            source=document.mark.source,
            document_id=document.id,
            known_state=document.indexing_status,
        )
        if document.name in present:
            item.action, item.error = "keep", "file left out of this run; its document is kept"
        result.items.append(item)
    return result


def delete_limit(owned: int, max_delete: int | None) -> int:
    """How many owned documents a run may delete without ``--force``."""
    if max_delete is not None:
        return max_delete
    return max(1, int(owned * DELETE_SHARE))


def check_deletions(
    items: Sequence[SyncItem], owned: int, *, owner: str, max_delete: int | None, force: bool
) -> str | None:
    """Why the run must be refused (None: it may go ahead).

    A run that would delete every document it owns (an empty folder: an unmounted disk, a
    wrong path) or more than the limit is refused unless ``force``.
    """
    deleting = sum(1 for item in items if item.action == "delete")
    if not deleting or force:
        return None
    limit = delete_limit(owned, max_delete)
    if deleting >= owned:
        return (
            f"refusing to delete all {owned} documents owned by {owner!r}: the folder has "
            "none of their files (an empty or unmounted folder?); pass --force if that is "
            "what you want"
        )
    if deleting > limit:
        return (
            f"refusing to delete {deleting} of {owned} documents owned by {owner!r} (more "
            f"than the limit of {limit}); pass --max-delete {deleting} or --force"
        )
    return None
