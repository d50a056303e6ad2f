"""The ledger's answers to "are these bytes already in the bucket?": donors for renames, and kept versions.

A donor is an object the bucket already holds with a file's bytes (the same size and MD5): the record
of an uploaded file (renamed: the same inode and mtime too; or copied), or a kept version (an object
that ``on_change = "keep"`` copied aside before it was replaced). Lookups use the indexes
``files_by_content`` and ``kept_by_content``, and stay inside one watch root.
Kept records commit durably: a kept version the ledger forgot would still be in the bucket, but no
longer offered as a donor.
"""

from __future__ import annotations

from typing import Any

from qsyncd.changes import Donor
from qsyncd.state.db import Database
from qsyncd.state.records import dec_path, enc_path


def _range(root: str) -> tuple[bytes, bytes]:
    base = enc_path(root.rstrip("/") + "/")
    return base, base[:-1] + b"0"  # "0" is the byte after "/": [base, upper) is exactly "root/..."


class DonorRecords(Database):
    """Donor lookups and kept versions (a base of ``Ledger``)."""

    # Whether the kept table may hold a row (None: not asked yet). Only this process writes the ledger
    # (the state lock), and only record_kept adds a kept version; most ledgers never hold one, and a
    # new file's donor lookup then costs one statement, not two.
    _kept_possible: bool | None = None

    def _kept_may_hold(self, conn: Any) -> bool:
        """``_kept_possible``, asked of the database once (caller holds the connection). A read-only ledger
        always asks: the daemon beside it may add kept versions meanwhile."""
        if self.readonly:
            return True
        if self._kept_possible is None:
            self._kept_possible = bool(conn.execute("SELECT EXISTS (SELECT 1 FROM kept)").fetchone()[0])
        return self._kept_possible

    def donor(self, root: str, *, exclude: str, size: int, md5: str, ino: int = 0, mtime_ns: int = 0) -> Donor | None:
        """An object that holds ``size`` bytes with this MD5, recorded for another path of ``root``: an
        uploaded file's first (the one with this inode and mtime, the renamed file, before any other),
        then a kept version. Only ever found by content, so an inode reused by a new file cannot fool it."""
        if size <= 0:
            return None
        low, high = _range(root)
        # Two plain statements under one hold of the lock: a UNION ALL of the two (one statement) cost
        # ~190 us a call in SQLite's temporary sort trees, against ~11 us for the first statement alone.
        with self._db() as conn:
            row = conn.execute(
                "SELECT 0, path, key, size, md5, ino, mtime_ns FROM files"
                " WHERE size = ?1 AND md5 = ?2 AND path >= ?3 AND path < ?4 AND path != ?5"
                " ORDER BY (ino = ?6 AND mtime_ns = ?7) DESC LIMIT 1",
                (size, md5, low, high, enc_path(exclude), ino, mtime_ns),
            ).fetchone()
            if row is None and self._kept_may_hold(conn):
                row = conn.execute(
                    "SELECT 1, path, kept_key, size, md5, 0, 0 FROM kept"
                    " WHERE size = ?1 AND md5 = ?2 AND path >= ?3 AND path < ?4 ORDER BY kept_at DESC LIMIT 1",
                    (size, md5, low, high),
                ).fetchone()
        if row is None:
            return None
        if row[0] == 0:
            return _donor("file", row[1:], "identity" if (row[5], row[6]) == (ino, mtime_ns) else "content")
        return _donor("kept", row[1:], "content")

    def holds_size(self, root: str, size: int) -> bool:
        """Whether any record under ``root`` has this size: only then is hashing a large file for a donor worth it."""
        low, high = _range(root)
        with self._db() as conn:
            row = conn.execute(
                "SELECT 1 FROM files WHERE size = ? AND path >= ? AND path < ? LIMIT 1", (size, low, high)
            ).fetchone()
            if row is None and self._kept_may_hold(conn):
                row = conn.execute(
                    "SELECT 1 FROM kept WHERE size = ? AND path >= ? AND path < ? LIMIT 1", (size, low, high)
                ).fetchone()
        return row is not None

    def held_elsewhere(self, size: int, md5: str, key: str) -> bool:
        """Whether the ledger knows these bytes under a key other than ``key`` (an upload or a kept version)."""
        with self._db() as conn:
            row = conn.execute(
                "SELECT 1 FROM files WHERE size = ? AND md5 = ? AND key != ? LIMIT 1", (size, md5, key)
            ).fetchone()
            if row is None and self._kept_may_hold(conn):
                row = conn.execute("SELECT 1 FROM kept WHERE size = ? AND md5 = ? LIMIT 1", (size, md5)).fetchone()
        return row is not None

    def record_kept(self, kept_key: str, key: str, path: str, *, size: int, md5: str, kept_at: float) -> None:
        """Remember that ``kept_key`` holds the version of ``path`` that was under ``key`` (durable)."""
        with self._tx() as conn:
            self._kept_possible = True  # the donor lookups ask the kept table from now on
            conn.execute(
                "INSERT OR REPLACE INTO kept (kept_key, key, path, size, md5, kept_at) VALUES (?,?,?,?,?,?)",
                (kept_key, key, enc_path(path), size, md5, kept_at),
            )

    def kept_versions(self, key: str | None = None) -> list[dict[str, Any]]:
        """The kept versions (of ``key``, or all), oldest first: what ``on_change = "keep"`` copied aside."""
        sql = "SELECT kept_key, key, path, size, md5, kept_at FROM kept"
        args: tuple[Any, ...] = ()
        if key is not None:
            sql, args = sql + " WHERE key = ?", (key,)
        with self._db() as conn:
            rows = conn.execute(sql + " ORDER BY kept_at", args).fetchall()
        return [
            {"kept_key": r[0], "key": r[1], "path": dec_path(r[2]), "size": r[3], "md5": r[4], "kept_at": r[5]}
            for r in rows
        ]

    def forget_moved(self, path: str, key: str, md5: str) -> None:
        """A move took the object of ``path``'s record away: drop the record, unless it describes a newer upload."""
        with self._tx() as conn:
            conn.execute("DELETE FROM files WHERE path = ? AND key = ? AND md5 = ?", (enc_path(path), key, md5))


def _donor(kind: Any, row: tuple[Any, ...], by: Any) -> Donor:
    return Donor(
        kind=kind, key=row[1], size=row[2], md5=row[3], path=dec_path(row[0]), ino=row[4], mtime_ns=row[5], by=by
    )
