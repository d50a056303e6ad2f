"""What the ledger stores: uploaded files, parts, multipart uploads in flight, failures."""

from __future__ import annotations

import os
from dataclasses import dataclass

from qsyncd.identity import FileIdentity


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

    @classmethod
    def of(cls, path: str, key: str, st: os.stat_result, md5: str, now: float) -> FileRecord:
        """The record of the version ``st`` describes, uploaded (or put in place) under ``key`` at ``now``."""
        return cls(path, key, st.st_size, st.st_mtime_ns, st.st_ino, md5, now)

    @property
    def identity(self) -> FileIdentity:
        """The version of the file that was uploaded (compare with ``FileIdentity.same_version``)."""
        return FileIdentity.recorded(self.size, self.mtime_ns, self.ino)


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

    @classmethod
    def of(cls, path: str, key: str, upload_id: str, st: os.stat_result, part_size: int, now: float) -> MultipartRecord:
        """The record of an upload just initiated for the file ``st`` describes (no part stored yet)."""
        return cls(path, key, upload_id, st.st_size, st.st_mtime_ns, st.st_ino, "", part_size, now, {})

    @property
    def identity(self) -> FileIdentity:
        """The version of the file this upload sends (a changed file cannot resume it)."""
        return FileIdentity.recorded(self.size, self.mtime_ns, self.ino)


@dataclass(frozen=True)
class FailureRecord:
    """The last failure of a file; ``permanent`` ones wait for ``permanent_retry_seconds``."""

    path: str
    key: str
    error: str
    permanent: bool
    attempts: int
    last_at: float


def enc_path(path: str) -> bytes:
    return os.fsencode(path)


def dec_path(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else os.fsdecode(raw)


def clean_text(text: str) -> str:
    """SQLite wants valid UTF-8; error texts may carry surrogate-escaped file names."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
