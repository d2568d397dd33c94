"""The pending ledger: every upload, durable, so waits survive restarts and crashes.

Dify indexes asynchronously and keeps no list of "what you are waiting for": a kernel restart
or a crashed worker forgets which uploads were still indexing. Every create this package
sends is therefore written to a ledger (dataset, batch, document id, name, content hash,
time); a status poll that sees a document finish marks its entry ``completed`` or ``error``
(with Dify's error text). ``client.wait_for_pending()`` and ``dify-ingest wait --pending``
resume from it, and ``dify-ingest sync`` uses it to know what a folder already uploaded.

Design notes:

* **Embedded by default.** `SQLiteLedger` is one file under the user cache dir, standard
  library only. WAL journaling and a busy timeout let many processes share it; every write is
  one short transaction; SQL calls run on one worker thread, off the event loop; times come
  from SQLite (``julianday('now')``), so one file has one clock.
* **Scoped.** One file may hold uploads to several servers and workspaces: each entry carries
  a scope (the base URL and a one-way fingerprint of the API key, never the key), and a
  client only sees its own scope.
* **Upserts.** Dify's create is an upsert by name: a second upload of a name re-indexes the
  same document under a new batch, and the old batch answers ``Documents not found.``. The
  ledger marks the older entry ``superseded`` so nobody waits on it.
* **Private.** The file holds document names and Dify's error texts: its folder is 0700 and
  the file (with SQLite's ``-wal`` and ``-shm``) 0600, fixed on every open if they were
  looser; error texts are stored redacted and cut (`_base.shown.shown_error`), as shown everywhere.
* **Redis** (`dify_ingest_tools.backends.redis_ledger.RedisLedger`) keeps the same entries for
  fleets spread over machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from dify_ingest_tools._base.shown import shown_error
from dify_ingest_tools.models.created import BatchRef

#: Where the default ledger lives: a path, ``off`` to disable it, or a ``redis://`` URL.
LEDGER_ENV = "DIFY_INGEST_LEDGER"

LedgerState = Literal["pending", "completed", "error", "superseded", "missing", "deleted"]
#: States nobody waits on any more.
SETTLED: frozenset[str] = frozenset({"completed", "error", "superseded", "missing", "deleted"})

T = TypeVar("T")


@dataclass(frozen=True)
class LedgerEntry:
    """One upload as the ledger knows it.

    Attributes:
        dataset_id: The knowledge base.
        batch: The batch creation returned (for an update: the document's original batch).
        document_id: Dify's document id.
        name: The document name.
        content_hash: SHA-256 of what was uploaded (``content_hash``), if known.
        uploaded_at: Epoch seconds of the upload.
        state: ``pending`` (still indexing as far as anyone saw), ``completed``, ``error``,
            ``superseded`` (uploaded again under the same name), ``missing`` (Dify answered
            ``Documents not found.``: deleted elsewhere) or ``deleted`` (deleted by a sync).
        error: Dify's error text for ``error`` (and the reason for ``missing``).
        updated_at: Epoch seconds of the last state change.
    """

    dataset_id: str
    batch: str
    document_id: str
    name: str
    content_hash: str | None
    uploaded_at: float
    state: str
    error: str | None
    updated_at: float

    @property
    def ref(self) -> BatchRef:
        return BatchRef(dataset_id=self.dataset_id, batch=self.batch)

    @property
    def is_pending(self) -> bool:
        return self.state == "pending"


@dataclass(frozen=True)
class Outcome:
    """A document a status poll saw finish: ``completed``, or ``error`` with Dify's text."""

    document_id: str
    state: Literal["completed", "error"]
    error: str | None = None


@runtime_checkable
class Ledger(Protocol):
    """Where uploads are recorded. Every method is safe to call from many processes."""

    async def record(
        self,
        scope: str,
        *,
        dataset_id: str,
        batch: str,
        document_id: str,
        name: str,
        content_hash: str | None,
    ) -> None:
        """Record an upload as pending; older pending uploads of the document are superseded."""
        ...

    async def settle(
        self, scope: str, dataset_id: str, batch: str, outcomes: Sequence[Outcome]
    ) -> None:
        """Mark the documents of a batch that finished (only entries still pending change)."""
        ...

    async def mark(
        self, scope: str, dataset_id: str, batch: str, state: LedgerState, error: str | None
    ) -> None:
        """Set the state of every pending entry of a batch (e.g. ``missing``)."""
        ...

    async def forget(self, scope: str, dataset_id: str, document_id: str) -> None:
        """The document was deleted: mark all its entries ``deleted``."""
        ...

    async def pending(self, scope: str, dataset_id: str | None = None) -> list[LedgerEntry]:
        """Entries nobody has seen finish, oldest first (of one dataset, or all)."""
        ...

    async def latest(self, scope: str, dataset_id: str) -> dict[str, LedgerEntry]:
        """The newest entry per document name in a dataset (superseded ones excluded)."""
        ...

    async def aclose(self) -> None:
        """Release the connection; the ledger reopens on next use."""
        ...


def content_hash(data: bytes | str) -> str:
    """The SHA-256 hex digest the ledger stores (text is hashed as UTF-8)."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def ledger_scope(base_url: str, api_key: str) -> str:
    """The scope of a client: its public base URL and a one-way fingerprint of its key."""
    fingerprint = hashlib.sha256(b"dify-ingest-ledger\0" + api_key.encode()).hexdigest()[:16]
    return f"{base_url.rstrip('/')}#{fingerprint}"


def default_ledger_path() -> Path:
    """``ledger.sqlite3`` in the user cache dir (XDG on Linux, the OS's own elsewhere)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return root / "dify-ingest-tools" / "Cache" / "ledger.sqlite3"
    if sys.platform == "darwin":  # pragma: no cover - exercised on macOS only
        return Path.home() / "Library" / "Caches" / "dify-ingest-tools" / "ledger.sqlite3"
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "dify-ingest-tools" / "ledger.sqlite3"


# -- SQLite ---------------------------------------------------------------------------------

# Owner only: names and error texts are nobody else's business on a shared machine.
_FOLDER_MODE = 0o700
_FILE_MODE = 0o600
# SQLite's companions of the database file in WAL mode (created with the file's mode).
_COMPANIONS = ("-wal", "-shm", "-journal")

_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_SCHEMA_VERSION = 1
_COLUMNS = (
    "dataset_id, batch, document_id, name, content_hash, uploaded_at, state, error, updated_at"
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS uploads (
    scope TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    batch TEXT NOT NULL,
    document_id TEXT NOT NULL,
    name TEXT NOT NULL,
    content_hash TEXT,
    uploaded_at REAL NOT NULL DEFAULT {_NOW},
    state TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    updated_at REAL NOT NULL DEFAULT {_NOW},
    PRIMARY KEY (scope, dataset_id, batch, document_id)
);
CREATE INDEX IF NOT EXISTS uploads_by_state ON uploads (scope, state, dataset_id);
CREATE INDEX IF NOT EXISTS uploads_by_name ON uploads (scope, dataset_id, name);
CREATE INDEX IF NOT EXISTS uploads_by_document ON uploads (scope, dataset_id, document_id);
"""


class SQLiteLedger:
    """The embedded ledger: one SQLite file, shared safely by many processes.

    Args:
        path: The database file (created with its directory); defaults to
            `default_ledger_path`.
        busy_timeout: Seconds a writer waits for another process's transaction.
        retention_days: Settled entries older than this are deleted when the file is opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout: float = 10.0,
        retention_days: float = 30.0,
    ) -> None:
        self.path = Path(path) if path is not None else default_ledger_path()
        self.busy_timeout = float(busy_timeout)
        self.retention_days = float(retention_days)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    # -- plumbing -------------------------------------------------------------------------

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` with the connection on the ledger's own thread."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="dify-ingest-ledger")
            executor = self._executor
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self._call, work)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._connection is None:
            self._connection = self._open()
        return work(self._connection)

    def _open(self) -> sqlite3.Connection:
        _private(self.path)
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            with _transaction(connection):
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version > _SCHEMA_VERSION:
                    raise RuntimeError(
                        f"{self.path} was written by a newer dify-ingest-tools "
                        f"(schema {version}); upgrade, or point the ledger elsewhere"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                connection.execute(
                    f"DELETE FROM uploads WHERE state != 'pending' AND updated_at < {_NOW} - ?",
                    (self.retention_days * 86400.0,),
                )
        except BaseException:
            connection.close()
            raise
        return connection

    async def aclose(self) -> None:
        """Close the connection and stop the worker thread (reopened on next use)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, close)
        executor.shutdown(wait=False)

    # -- the interface --------------------------------------------------------------------

    async def record(
        self,
        scope: str,
        *,
        dataset_id: str,
        batch: str,
        document_id: str,
        name: str,
        content_hash: str | None,
    ) -> None:
        dataset_id = dataset_id.lower()

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    f"UPDATE uploads SET state = 'superseded', updated_at = {_NOW} "
                    "WHERE scope = ? AND dataset_id = ? AND document_id = ? AND batch != ? "
                    "AND state = 'pending'",
                    (scope, dataset_id, document_id, batch),
                )
                db.execute(
                    "INSERT INTO uploads (scope, dataset_id, batch, document_id, name, "
                    "content_hash) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (scope, dataset_id, batch, document_id) DO UPDATE SET "
                    "name = excluded.name, content_hash = excluded.content_hash, "
                    f"uploaded_at = {_NOW}, state = 'pending', error = NULL, updated_at = {_NOW}",
                    (scope, dataset_id, batch, document_id, name, content_hash),
                )

        await self._run(write)

    async def settle(
        self, scope: str, dataset_id: str, batch: str, outcomes: Sequence[Outcome]
    ) -> None:
        if not outcomes:
            return
        rows = [
            (o.state, shown_error(o.error), scope, dataset_id.lower(), batch, o.document_id)
            for o in outcomes
        ]

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.executemany(
                    f"UPDATE uploads SET state = ?, error = ?, updated_at = {_NOW} "
                    "WHERE scope = ? AND dataset_id = ? AND batch = ? AND document_id = ? "
                    "AND state = 'pending'",
                    rows,
                )

        await self._run(write)

    async def mark(
        self, scope: str, dataset_id: str, batch: str, state: LedgerState, error: str | None
    ) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    f"UPDATE uploads SET state = ?, error = ?, updated_at = {_NOW} "
                    "WHERE scope = ? AND dataset_id = ? AND batch = ? AND state = 'pending'",
                    (state, shown_error(error), scope, dataset_id.lower(), batch),
                )

        await self._run(write)

    async def forget(self, scope: str, dataset_id: str, document_id: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    f"UPDATE uploads SET state = 'deleted', updated_at = {_NOW} "
                    "WHERE scope = ? AND dataset_id = ? AND document_id = ?",
                    (scope, dataset_id.lower(), document_id),
                )

        await self._run(write)

    async def pending(self, scope: str, dataset_id: str | None = None) -> list[LedgerEntry]:
        query = f"SELECT {_COLUMNS} FROM uploads WHERE scope = ? AND state = 'pending'"
        params: tuple[str, ...] = (scope,)
        if dataset_id is not None:
            query += " AND dataset_id = ?"
            params = (scope, dataset_id.lower())
        query += " ORDER BY uploaded_at, batch"
        return await self._run(lambda db: _entries(db.execute(query, params)))

    async def latest(self, scope: str, dataset_id: str) -> dict[str, LedgerEntry]:
        query = (
            f"SELECT {_COLUMNS} FROM uploads WHERE scope = ? AND dataset_id = ? "
            "AND state != 'superseded' ORDER BY uploaded_at, batch"
        )
        rows = await self._run(lambda db: _entries(db.execute(query, (scope, dataset_id.lower()))))
        return {entry.name: entry for entry in rows}  # later uploads win


def _private(path: Path) -> None:
    """Create ``path``'s folder 0700 and the file 0600, and tighten them if they were looser.

    The folder's mode is fixed only when it is the ledger's own (the default folder, or one
    this call created): a ledger pointed into a shared folder (``/tmp``) must not lock others
    out of it. The file is created with its mode (``os.open``), never readable for a moment.
    """
    if sys.platform == "win32":  # pragma: no cover - POSIX modes only
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    folder = path.parent
    created = not folder.exists()
    folder.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
    if created or folder == default_ledger_path().parent:
        _tighten(folder, _FOLDER_MODE)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE))
    for companion in ("", *_COMPANIONS):
        _tighten(path.with_name(path.name + companion), _FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    """Take group and other permissions off ``path`` (when it exists and is ours)."""
    current = 0
    try:
        current = path.stat().st_mode & 0o777
        if current & ~mode:
            path.chmod(current & mode)
    except FileNotFoundError:
        pass
    except PermissionError as error:  # another user's file: say so, and open it as it is
        logging.getLogger("dify_ingest_tools").warning(
            "the ledger's %s is mode %o and cannot be made private: %s", path, current, error
        )


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``: take the write lock up front, so two processes never
    both read and then fail to upgrade the lock (SQLite's deadlock case)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _entries(rows: Iterable[Any]) -> list[LedgerEntry]:
    return [LedgerEntry(*row) for row in rows]
