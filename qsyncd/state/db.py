"""The SQLite file behind the ledger: opening it, transactions, and errors that say what to do.

WAL mode, so ``qsyncd status`` can read (``readonly``) while the daemon writes. Durable transactions
commit with ``synchronous=FULL``, the others with the connection's ``NORMAL`` (see ``Ledger``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote

from qsyncd.errors import StateError
from qsyncd.state.lock import ensure_dir

SCHEMA_VERSION = 2  # 2: the donor indexes and the kept table (renames and on_change)
READABLE_VERSIONS = (1, 2)  # what a read-only open accepts: `status` beside a daemon not restarted since an upgrade
DB_NAME = "state.db"
LOCK_NAME = "qsyncd.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    uploaded_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    path BLOB PRIMARY KEY,
    key TEXT NOT NULL,
    error TEXT NOT NULL,
    permanent INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS multiparts (
    upload_id TEXT PRIMARY KEY,
    path BLOB NOT NULL UNIQUE,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    part_size INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daemon (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    status TEXT NOT NULL,
    updated_at REAL NOT NULL,
    pid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_content ON files (size, md5);
CREATE TABLE IF NOT EXISTS kept (
    kept_key TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    path BLOB NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    kept_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kept_by_content ON kept (size, md5);
"""


T = TypeVar("T")

_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 3, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26


class Database:
    """The connection to ``<dir>/state.db``, shared by every thread under one lock."""

    def __init__(self, dir: Path, *, readonly: bool = False, missing_ok: bool = False) -> None:
        """Open (or create) the ledger in ``dir``. ``readonly`` never writes (safe beside a running
        daemon); with ``missing_ok`` too, a directory without a database reads as an empty ledger."""
        self.dir = Path(dir)
        self.path = self.dir / DB_NAME
        self.readonly = readonly
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if readonly and missing_ok and not self.path.exists():
            conn = self._guard(lambda: sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None))
            self._guard(lambda: conn.executescript(f"{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};"))
            self._conn = conn
        elif readonly:
            if not self.path.exists():
                raise StateError(f"no state database at {self.path}: has qsyncd run with this [state] dir?")
            uri = f"file:{_uri_path(self.path)}?mode=ro"
            self._conn = self._guard(
                lambda: sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            )
            self._guard(self._check_version)
        else:
            ensure_dir(self.dir)
            self._conn = self._guard(
                lambda: sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            )
            self._guard(self._setup)

    # -- plumbing -------------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error) -> StateError:
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
            return StateError(
                f"state database {self.path} is corrupt: move it away; qsyncd will rebuild it "
                f"by checking the bucket (sqlite: {text})"
            )
        if primary == _SQLITE_FULL or "disk is full" in text:
            return StateError(f"state database {self.path}: the disk is full; free space on {self.dir}")
        if (
            primary in (_SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_PERM)
            or "readonly" in text
            or "unable to open" in text
        ):
            if self.readonly:
                return StateError(f"cannot read state database {self.path}: {text}; check its permissions")
            return StateError(
                f"state directory {self.dir} is not writable ({text}): give the user qsyncd runs as write "
                "access, or set [state] dir"
            )
        if primary == _SQLITE_IOERR:
            return StateError(f"state database {self.path}: I/O error ({text}); check the disk")
        return StateError(f"state database {self.path}: {text}")

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with sqlite errors turned into StateError."""
        with self._lock:
            if self._conn is None:
                raise StateError(f"state database {self.path} is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    with suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise self._error(exc) from None

    def _check_writable(self) -> None:
        if self.readonly:
            raise StateError(f"state database {self.path} was opened read-only")

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``durable`` (the default) commits with synchronous=FULL, else NORMAL."""
        self._check_writable()
        with self._db() as conn:
            if durable:
                conn.execute("PRAGMA synchronous=FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            finally:
                if durable:  # only outside a transaction: SQLite refuses it inside one
                    with suppress(sqlite3.Error):
                        conn.execute("PRAGMA synchronous=NORMAL")

    def _reader(self) -> sqlite3.Connection:
        """A new read-only connection to the database, for one long read beside the shared connection."""
        conn = sqlite3.connect(f"file:{_uri_path(self.path)}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _setup(self) -> None:
        conn = self._conn
        assert conn is not None
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateError(f"state database {self.path}: cannot switch to WAL mode (got {mode}); is it on NFS?")
        conn.execute("PRAGMA synchronous=NORMAL")  # durable transactions switch to FULL (see _tx)
        conn.execute("PRAGMA busy_timeout=5000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path} has schema version {version}, newer than this qsyncd "
                f"understands ({SCHEMA_VERSION}): upgrade qsyncd or use another [state] dir"
            )
        if version < SCHEMA_VERSION:
            # one transaction: a crash leaves either no schema (version 0) or all of it
            conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        with suppress(OSError):
            os.chmod(self.path, 0o600)

    def _check_version(self) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("PRAGMA busy_timeout=5000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in READABLE_VERSIONS:
            raise StateError(
                f"state database {self.path} has schema version {version}; this qsyncd reads version "
                f"{SCHEMA_VERSION}" + (" (start the daemon once to create it)" if version == 0 else "")
            )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _uri_path(path: Path) -> str:
    return quote(str(path.absolute()), safe="/")
