"""What a sync did (or, for a dry run, would do): `SyncReport`, one `SyncItem` per file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dify_ingest_tools.folder_sync.plan import SyncItem


@dataclass
class SyncReport:
    """What a sync did (or, for a dry run, would do). ``items`` holds every file."""

    dataset_id: str
    owner: str = ""
    items: list[SyncItem] = field(default_factory=list)
    interrupted: bool = False
    dry_run: bool = False
    #: Trouble that did not stop the run (the ledger, the metadata writes), one line each.
    warnings: list[str] = field(default_factory=list)
    #: Why the guard refused the run (then nothing was written).
    refused: str | None = None
    #: Documents uploaded whose owner marks could not be written.
    marks_missing: int = 0

    def _names(self, action: str, outcome: str | None = "done") -> list[str]:
        return [i.name for i in self.items if i.action == action and i.outcome == outcome]

    def _with(self, outcome: str) -> list[SyncItem]:
        return [i for i in self.items if i.outcome == outcome]

    @property
    def uploaded(self) -> list[str]:
        return self._names("upload")

    @property
    def updated(self) -> list[str]:
        return self._names("update")

    @property
    def skipped(self) -> list[str]:
        """Unchanged files whose document Dify reports ``completed``."""
        return self._names("skip")

    @property
    def deleted(self) -> list[str]:
        return self._names("delete")

    @property
    def kept(self) -> list[str]:
        """Owned documents whose file is gone or left out, kept in Dify."""
        return [i.name for i in self.items if i.action == "keep"]

    @property
    def failed(self) -> list[SyncItem]:
        return self._with("failed")

    @property
    def not_ready(self) -> list[str]:
        return [i.name for i in self._with("not_ready")]

    @property
    def empty(self) -> list[SyncItem]:
        """Files Dify indexed with no chunks (empty or whitespace-only text, nothing its
        parser could read): ``completed`` with 0 segments, so nothing will be found."""
        return self._with("empty")

    @property
    def not_started(self) -> list[str]:
        return [i.name for i in self._with("not_started")]

    @property
    def conflicts(self) -> list[SyncItem]:
        """Files whose name is held by a document this sync does not own (left untouched)."""
        return self._with("conflict")

    @property
    def left_out(self) -> list[SyncItem]:
        """Files not synced, with the reason (symlinks, too large, not regular files)."""
        return self._with("skipped")

    @property
    def vanished(self) -> list[str]:
        return [i.name for i in self._with("vanished")]

    @property
    def changed(self) -> list[str]:
        """Files that changed while they were read or sent (run again to sync them)."""
        return [i.name for i in self._with("changed")]

    @property
    def ok(self) -> bool:
        """Everything in scope done: Dify said ``completed`` for every file synced."""
        unfinished = (
            self.failed
            or self.empty
            or self.not_ready
            or self.not_started
            or self.conflicts
            or self.vanished
            or self.changed
        )
        return not (unfinished or self.interrupted or self.refused or self.marks_missing)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``--json``)."""

        def reasons(items: list[SyncItem]) -> list[dict[str, Any]]:
            return [{"name": i.name, "reason": i.error} for i in items]

        summary: dict[str, Any] = {
            "dataset_id": self.dataset_id,
            "owner": self.owner,
            "uploaded": self.uploaded,
            "updated": self.updated,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "kept": self.kept,
            "failed": [{"name": i.name, "error": i.error} for i in self.failed],
            "empty": reasons(self.empty),
            "not_ready": self.not_ready,
            "not_started": self.not_started,
            "conflicts": reasons(self.conflicts),
            "left_out": reasons(self.left_out),
            "vanished": self.vanished,
            "changed_during_read": self.changed,
            "interrupted": self.interrupted,
            "warnings": self.warnings,
        }
        if self.dry_run:
            summary["dry_run"] = True
            summary["plan"] = [
                {"action": i.action, "name": i.name, "source": i.source, "reason": i.error}
                for i in self.items
            ]
        if self.refused:
            summary["refused"] = self.refused
        return summary
