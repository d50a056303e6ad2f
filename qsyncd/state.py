"""The ledger: what was uploaded, what failed, which multipart uploads are in flight.

One SQLite file, ``<state dir>/state.db``, in WAL mode so ``qsyncd status`` can read it (``readonly``)
while the daemon writes. A ``StateLock`` (``flock`` on ``<state dir>/qsyncd.lock``) keeps two daemons
off the same directory.

Durability: ``start_multipart``, ``finish_multipart``, failures and ``forget`` commit with
``synchronous=FULL``, so they are on disk when the call returns (each is one transaction; WAL makes
that one fsync). ``record_uploaded``, ``record_part`` and ``set_daemon_status`` commit with the
connection's default ``synchronous=NORMAL`` (one fsync per file would cap small-file throughput,
and switching per commit cost two statements per file): after a power cut they may be lost, which
costs a HEAD that finds the object again, a part re-upload (the uploader also asks the server with
``list_parts``) or a stale status line, never a wrong record.
A killed process (SIGKILL) loses nothing that was committed.

Paths are stored as the file system's bytes (``os.fsencode``), so names that are not valid UTF-8
can still be recorded as failures. Every ``sqlite3`` error becomes a ``StateError`` that says what to do.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

from qsyncd.errors import StateError, StateLockedError

SCHEMA_VERSION = 1
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
"""


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRecord:
    """A file that is in the bucket: which version of it (size, mtime, inode, MD5) and under which key."""

    path: str
    key: str
    size: int
    mtime_ns: int
    ino: int
    md5: str
    uploaded_at: float


@dataclass(frozen=True)
class PartRecord:
    """One part of a multipart upload the server acknowledged (0-based part number)."""

    part_number: int
    size: int
    md5: str


@dataclass(frozen=True)
class MultipartRecord:
    """A multipart upload in flight, to resume after a restart."""

    path: str
    key: str
    upload_id: str
    size: int
    mtime_ns: int
    ino: int
    md5: str
    part_size: int
    created_at: float
    parts: dict[int, PartRecord]


@dataclass(frozen=True)
class FailureRecord:
    """The last failure of a file; ``permanent`` ones wait for ``permanent_retry_seconds``."""

    path: str
    key: str
    error: str
    permanent: bool
    attempts: int
    last_at: float


def _enc(path: str) -> bytes:
    return os.fsencode(path)


def _dec(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else os.fsdecode(raw)


def _clean_text(text: str) -> str:
    """SQLite wants valid UTF-8; error texts may carry surrogate-escaped file names."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --------------------------------------------------------------------------------------------
# Lock
# --------------------------------------------------------------------------------------------


def _ensure_dir(dir: Path) -> None:
    try:
        dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StateError(
            f"state directory {dir} exists but is not a directory: move it away or set [state] dir"
        ) from None
    except OSError as exc:
        raise StateError(
            f"cannot create state directory {dir}: {exc.strerror}; create it (mode 0700) for the user "
            "qsyncd runs as, or set [state] dir"
        ) from None
    if not dir.is_dir():
        raise StateError(f"state directory {dir} exists but is not a directory: move it away or set [state] dir")


class StateLock:
    """An exclusive, non-blocking ``flock`` on ``<dir>/qsyncd.lock`` holding our pid."""

    def __init__(self, dir: Path) -> None:
        self.dir = Path(dir)
        self.path = self.dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``StateLockedError`` naming the holder's pid."""
        if self._fd is not None:
            return
        _ensure_dir(self.dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"cannot open lock file {self.path}: {exc.strerror}; is {self.dir} writable?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"pid {holder}" if holder else "pid unknown"
                raise StateLockedError(
                    f"another qsyncd ({who}) is using {self.dir}: stop it first, or give this instance "
                    "its own [state] dir"
                ) from None
            raise StateError(f"cannot lock {self.path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; removing it would race with the next holder)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# --------------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------------

T = TypeVar("T")

_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 3, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26


class Ledger:
    """The state database. Every method may be called from any thread."""

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
            _ensure_dir(self.dir)
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

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``durable`` (the default) commits with synchronous=FULL, else NORMAL."""
        if self.readonly:
            raise StateError(f"state database {self.path} was opened read-only")
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
        if version != SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path} has schema version {version}; this qsyncd reads version "
                f"{SCHEMA_VERSION}" + (" (start the daemon once to create it)" if version == 0 else "")
            )

    # -- files ----------------------------------------------------------------------------------

    def get(self, path: str) -> FileRecord | None:
        """The upload record of ``path``, if any."""
        with self._db() as conn:
            row = conn.execute(
                "SELECT path, key, size, mtime_ns, ino, md5, uploaded_at FROM files WHERE path = ?", (_enc(path),)
            ).fetchone()
        return _file(row) if row else None

    def uploaded_under(self, root: str) -> dict[str, FileRecord]:
        """All upload records whose path is below the directory ``root``."""
        base = _enc(root.rstrip("/") + "/")
        upper = base[:-1] + b"0"  # "0" is the byte after "/": [base, upper) is exactly "root/..."
        with self._db() as conn:
            rows = conn.execute(
                "SELECT path, key, size, mtime_ns, ino, md5, uploaded_at FROM files WHERE path >= ? AND path < ?",
                (base, upper),
            ).fetchall()
        return {rec.path: rec for rec in map(_file, rows)}

    def record_uploaded(self, rec: FileRecord) -> None:
        """Remember that ``rec.path`` is in the bucket; clears its failure.

        Committed with synchronous=NORMAL (no fsync per file: a crash of the process loses nothing,
        a power cut may lose the last records). A lost record costs one HEAD at the next start,
        which finds the object with ETag == MD5 and records it again; it can never lose a file.
        """
        p = _enc(rec.path)
        with self._tx(durable=False) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO files (path, key, size, mtime_ns, ino, md5, uploaded_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (p, rec.key, rec.size, rec.mtime_ns, rec.ino, rec.md5, rec.uploaded_at),
            )
            conn.execute("DELETE FROM failures WHERE path = ?", (p,))

    def forget(self, path: str) -> None:
        """Drop the upload record and any failure of ``path`` (deleted or moved away locally)."""
        p = _enc(path)
        with self._tx() as conn:
            conn.execute("DELETE FROM files WHERE path = ?", (p,))
            conn.execute("DELETE FROM failures WHERE path = ?", (p,))

    # -- failures -------------------------------------------------------------------------------

    def record_failure(self, path: str, key: str, error: str, permanent: bool) -> FailureRecord:
        """Store a failure; ``attempts`` counts up from the previous failure of the same path."""
        p = _enc(path)
        now = time.time()
        error = _clean_text(error)
        key = _clean_text(key)
        with self._tx() as conn:
            row = conn.execute("SELECT attempts FROM failures WHERE path = ?", (p,)).fetchone()
            attempts = (row[0] if row else 0) + 1
            conn.execute(
                "INSERT OR REPLACE INTO failures (path, key, error, permanent, attempts, last_at) VALUES (?,?,?,?,?,?)",
                (p, key, error, int(permanent), attempts, now),
            )
        return FailureRecord(path=path, key=key, error=error, permanent=permanent, attempts=attempts, last_at=now)

    def clear_failure(self, path: str) -> None:
        """Forget the failure of ``path``."""
        with self._tx() as conn:
            conn.execute("DELETE FROM failures WHERE path = ?", (_enc(path),))

    def failures(self) -> list[FailureRecord]:
        """Every recorded failure, oldest first."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT path, key, error, permanent, attempts, last_at FROM failures ORDER BY last_at"
            ).fetchall()
        return [
            FailureRecord(path=_dec(r[0]), key=r[1], error=r[2], permanent=bool(r[3]), attempts=r[4], last_at=r[5])
            for r in rows
        ]

    # -- multipart ------------------------------------------------------------------------------

    def start_multipart(self, rec: MultipartRecord) -> None:
        """Remember a new multipart upload (durable); replaces any older one for the same path."""
        p = _enc(rec.path)
        with self._tx() as conn:
            old = [r[0] for r in conn.execute("SELECT upload_id FROM multiparts WHERE path = ?", (p,))]
            for upload_id in [*old, rec.upload_id]:
                conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
                conn.execute("DELETE FROM multiparts WHERE upload_id = ?", (upload_id,))
            conn.execute(
                "INSERT INTO multiparts (upload_id, path, key, size, mtime_ns, ino, md5, part_size, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (rec.upload_id, p, rec.key, rec.size, rec.mtime_ns, rec.ino, rec.md5, rec.part_size, rec.created_at),
            )
            conn.executemany(
                "INSERT INTO parts (upload_id, part_number, size, md5) VALUES (?,?,?,?)",
                [(rec.upload_id, pr.part_number, pr.size, pr.md5) for pr in rec.parts.values()],
            )

    def record_part(self, upload_id: str, part: PartRecord) -> None:
        """Remember an acknowledged part; ignored when the upload is no longer recorded."""
        with self._tx(durable=False) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO parts (upload_id, part_number, size, md5)"
                " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM multiparts WHERE upload_id = ?)",
                (upload_id, part.part_number, part.size, part.md5, upload_id),
            )

    def get_multipart(self, path: str) -> MultipartRecord | None:
        """The multipart upload in flight for ``path``, with its recorded parts."""
        with self._db() as conn:
            row = conn.execute(
                "SELECT upload_id, path, key, size, mtime_ns, ino, md5, part_size, created_at FROM multiparts"
                " WHERE path = ?",
                (_enc(path),),
            ).fetchone()
            if row is None:
                return None
            return self._multipart(conn, row)

    def multiparts(self) -> list[MultipartRecord]:
        """Every multipart upload in flight, oldest first."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT upload_id, path, key, size, mtime_ns, ino, md5, part_size, created_at FROM multiparts"
                " ORDER BY created_at"
            ).fetchall()
            return [self._multipart(conn, r) for r in rows]

    @staticmethod
    def _multipart(conn: sqlite3.Connection, row: tuple[Any, ...]) -> MultipartRecord:
        parts = {
            n: PartRecord(part_number=n, size=s, md5=m)
            for n, s, m in conn.execute(
                "SELECT part_number, size, md5 FROM parts WHERE upload_id = ? ORDER BY part_number", (row[0],)
            )
        }
        return MultipartRecord(
            upload_id=row[0],
            path=_dec(row[1]),
            key=row[2],
            size=row[3],
            mtime_ns=row[4],
            ino=row[5],
            md5=row[6],
            part_size=row[7],
            created_at=row[8],
            parts=parts,
        )

    def finish_multipart(self, upload_id: str) -> None:
        """The upload was completed or aborted: drop it and its parts."""
        with self._tx() as conn:
            conn.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            conn.execute("DELETE FROM multiparts WHERE upload_id = ?", (upload_id,))

    # -- daemon status --------------------------------------------------------------------------

    def set_daemon_status(self, status: Mapping[str, object]) -> None:
        """Store the daemon's status blob (JSON) with the time and our pid, for ``qsyncd status``."""
        blob = json.dumps(dict(status), default=str, sort_keys=True)
        with self._tx(durable=False) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO daemon (id, status, updated_at, pid) VALUES (1, ?, ?, ?)",
                (blob, time.time(), os.getpid()),
            )

    def daemon_status(self) -> dict[str, Any] | None:
        """The last status blob, plus ``updated_at`` (epoch seconds) and ``pid`` (these two keys win)."""
        with self._db() as conn:
            row = conn.execute("SELECT status, updated_at, pid FROM daemon WHERE id = 1").fetchone()
        if row is None:
            return None
        try:
            data = json.loads(row[0])
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {"status": data}
        data["updated_at"] = row[1]
        data["pid"] = row[2]
        return data

    def counts(self) -> dict[str, int]:
        """``uploaded``, ``uploaded_bytes``, ``failed`` and ``multiparts`` totals."""
        with self._db() as conn:
            uploaded, nbytes = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files").fetchone()
            failed = conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
            multiparts = conn.execute("SELECT COUNT(*) FROM multiparts").fetchone()[0]
        return {"uploaded": uploaded, "uploaded_bytes": nbytes, "failed": failed, "multiparts": multiparts}

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _file(row: tuple[Any, ...]) -> FileRecord:
    return FileRecord(
        path=_dec(row[0]), key=row[1], size=row[2], mtime_ns=row[3], ino=row[4], md5=row[5], uploaded_at=row[6]
    )


def _uri_path(path: Path) -> str:
    return quote(str(path.absolute()), safe="/")
