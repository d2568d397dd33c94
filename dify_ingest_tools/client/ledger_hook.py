"""The client's side of the ledger: which backend, what to write, and never failing an upload.

The ledger is a convenience layered on Dify's own state: if it cannot be written (a read-only
home, Redis down), the upload or the poll still succeeds, a warning is logged (once per
outage), and writing is retried a little later.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from dify_ingest_tools._base.clock import Clock, as_clock
from dify_ingest_tools._base.shown import shown_error
from dify_ingest_tools.backends.ledger import (
    LEDGER_ENV,
    Ledger,
    LedgerEntry,
    LedgerState,
    Outcome,
    SQLiteLedger,
)
from dify_ingest_tools.client.pending import PendingView
from dify_ingest_tools.models.created import BatchRef, CreatedDocument
from dify_ingest_tools.models.status import BatchIndexingStatus

logger = logging.getLogger("dify_ingest_tools")

LedgerSpec = Ledger | str | os.PathLike[str] | bool | None

_OFF = frozenset({"", "0", "off", "none", "false", "no"})
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# After a failed write, skip the ledger this long before trying again.
_RETRY_AFTER = 30.0


def resolve_ledger(spec: LedgerSpec) -> Ledger | None:
    """The ledger a client uses.

    ``None``/``True``: ``$DIFY_INGEST_LEDGER`` if set, else SQLite in the user cache dir.
    ``False``: none. A path: SQLite there. A ``redis://`` URL: `RedisLedger`. A `Ledger`: it.
    """
    if spec is False:
        return None
    if spec is None or spec is True:
        value = os.environ.get(LEDGER_ENV)
        return SQLiteLedger() if value is None else _from_string(value)
    if isinstance(spec, (str, os.PathLike)):
        return _from_string(os.fspath(spec))
    if isinstance(spec, Ledger):
        return spec
    raise TypeError(f"ledger must be a Ledger, a path, a redis:// URL or a bool, not {spec!r}")


def _from_string(value: str) -> Ledger | None:
    if value.strip().lower() in _OFF:
        return None
    if value.startswith(_REDIS_SCHEMES):
        from dify_ingest_tools.backends.redis_ledger import RedisLedger

        return RedisLedger(value)
    return SQLiteLedger(Path(value).expanduser())


class LedgerRecorder:
    """Writes a client's uploads and observations to its ledger, in the client's scope.

    Args:
        ledger: The backend.
        scope: The ledger scope (the client's server and key).
        tracked: Its view of the client's pending registry: the uploads with ledger entries
            this client knows to be pending (polls of any other batch cost nothing here).
            They are forgotten by the registry's rule; `observe` runs before it forgets.
        clock: The client's clock (when to try the ledger again after a failed write).
    """

    def __init__(
        self,
        ledger: Ledger,
        scope: str,
        tracked: PendingView,
        *,
        clock: Clock | Callable[[], float] | None = None,
    ):
        self.ledger = ledger
        self.scope = scope
        # Each ledger call is real I/O (a thread, Redis): `io` keeps a fake clock still.
        self._io = as_clock(clock).io
        self._clock = as_clock(clock).monotonic
        self._tracked = tracked
        self._skip_until: float | None = None
        self._writing = asyncio.Lock()

    async def record(self, created: CreatedDocument, name: str, digest: str | None) -> None:
        """An upload succeeded: write it as pending."""
        if not self._usable():
            return
        async with self._writing:
            await self._record(created, name, digest)

    async def _record(self, created: CreatedDocument, name: str, digest: str | None) -> None:
        # Asked again in turn: after a locked ledger failed the write before this one, the
        # uploads queued behind it must not each wait out the busy timeout too.
        if not self._usable():
            return
        try:
            with self._io():
                await self.ledger.record(
                    self.scope,
                    dataset_id=created.dataset_id,
                    batch=created.batch,
                    document_id=created.document_id,
                    name=name or created.name,
                    content_hash=digest,
                )
        except Exception as error:
            self._failed("record an upload in", error)
            return
        self._tracked.track(created.ref, created.document_id)

    async def observe(self, status: BatchIndexingStatus) -> None:
        """A status poll answered: settle the documents of a tracked batch that finished."""
        if not self._tracked.holds(status.dataset_id, status.batch) or not self._usable():
            return
        outcomes = [
            # Dify's text, redacted and cut as everywhere it is shown (`_base.shown`).
            Outcome(doc.id, "error", shown_error(doc.error))
            if doc.is_failed
            else Outcome(doc.id, "completed")
            for doc in status.documents
            if doc.is_terminal
        ]
        if not outcomes:
            return
        try:
            with self._io():
                await self.ledger.settle(self.scope, status.dataset_id, status.batch, outcomes)
        except Exception as error:
            self._failed("update", error)

    async def mark(self, ref: BatchRef, state: LedgerState, error: str | None) -> None:
        """Settle every pending entry of a batch (``missing``: ``Documents not found.``)."""
        if not self._usable():
            return
        try:
            with self._io():
                await self.ledger.mark(
                    self.scope, ref.dataset_id, ref.batch, state, shown_error(error)
                )
        except Exception as failure:
            self._failed("update", failure)
            return
        # Settled (``missing``: Dify no longer knows the batch): over for every scope.
        self._tracked.forget_batch(ref)

    async def pending(self, dataset_id: str | None = None) -> list[LedgerEntry]:
        """What the ledger holds as pending in this scope (tracked from now on)."""
        if not self._usable():
            return []
        try:
            with self._io():
                entries = await self.ledger.pending(self.scope, dataset_id)
        except Exception as error:
            self._failed("read", error)
            return []
        for entry in entries:
            self._tracked.track(entry.ref, entry.document_id)
        return entries

    async def aclose(self) -> None:
        try:
            await self.ledger.aclose()
        except Exception as error:  # pragma: no cover - closing a broken backend
            logger.debug("closing the ledger failed: %s", error)

    def _usable(self) -> bool:
        if self._skip_until is None:
            return True
        if self._clock() >= self._skip_until:
            self._skip_until = None
            return True
        return False

    def _failed(self, what: str, error: Exception) -> None:
        logger.warning(
            "could not %s the pending ledger %r (%s: %s); uploads and waits go on without it "
            "for %.0fs",
            what,
            self.ledger,
            type(error).__name__,
            str(error)[:200],
            _RETRY_AFTER,
        )
        self._skip_until = self._clock() + _RETRY_AFTER
