"""The store's files: durable JSON commits, the body writer and the reader over several data files.

Every file is written to ``.tmp-*`` in its final directory, fsynced, renamed, and the directory
fsynced (:func:`stage_json`, :func:`write_json`, :class:`BodyWriter`). A completed multipart object is
the parts' own data files; :class:`ConcatReader` reads them as one seekable file.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    """Make the renames and unlinks in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage_json(directory: Path, data: dict[str, Any], *, fsync: bool) -> Path:
    """Write ``data`` to a durable temp file in ``directory`` (renaming it into place commits it).

    The hot commits (PutObject, UploadMultipart) stage and fsync outside the store lock and
    fsync the directory after releasing it, so parallel requests do not queue behind each
    other's fsyncs: the lock covers only the rename and the in-memory index."""
    tmp = directory / f".tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_json(path: Path, data: dict[str, Any], *, fsync: bool) -> None:
    """Replace ``path`` with ``data`` atomically (staged, renamed, directory fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage_json(path.parent, data, fsync=fsync), path)
    if fsync:
        fsync_dir(path.parent)


class BodyWriter:
    """Streams a body into a temp file in its final directory, hashing it with MD5 on the way."""

    def __init__(self, directory: Path, fsync: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / f".tmp-{uuid.uuid4().hex}"
        self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed in finish/discard
        self._md5 = hashlib.md5()
        self._fsync = fsync
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append a chunk."""
        assert self._file is not None
        self._file.write(data)
        self._md5.update(data)
        self.size += len(data)

    def append_file(self, src: BinaryIO, *, hash_it: bool) -> None:
        """Append the whole of ``src``. Without ``hash_it`` the kernel copies it (copy_file_range) and
        the MD5 of this writer is no longer meaningful: for Complete with an ETag header, which
        QingStor stores as given instead of hashing the merged object."""
        assert self._file is not None
        if not hash_it:
            self._file.flush()
            out_fd, in_fd = self._file.fileno(), src.fileno()
            try:
                while n := os.copy_file_range(in_fd, out_fd, 1 << 30):
                    self.size += n
                return
            except OSError:
                pass  # e.g. EXDEV on old kernels: fall back to copying through Python
        while chunk := src.read(CHUNK):
            self.write(chunk)

    def finish(self) -> str:
        """Flush and fsync; returns the MD5 hex of what was written."""
        assert self._file is not None
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        return self._md5.hexdigest()

    def md5_digest(self) -> bytes:
        """The binary MD5 so far."""
        return self._md5.digest()

    def discard(self) -> None:
        """Throw the temp file away (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class ConcatReader(io.RawIOBase):
    """A read-only, seekable file over the concatenation of several data files.

    Only the file under the read position is open; ``on_close`` runs once when the reader closes
    (the store uses it to release the files). ``read(n)`` may return fewer than ``n`` bytes at a
    file boundary, as a raw file may; ``read()`` returns everything up to the end.
    """

    def __init__(self, paths: list[Path], sizes: list[int], on_close: Callable[[], None] | None = None) -> None:
        super().__init__()
        if len(paths) != len(sizes):
            raise ValueError("paths and sizes differ in length")
        self._paths = list(paths)
        self._sizes = list(sizes)
        self._starts: list[int] = []
        total = 0
        for size in self._sizes:
            self._starts.append(total)
            total += size
        self.size = total
        self._pos = 0
        self._index = -1
        self._fd = -1
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        self._check_open()
        view = memoryview(buffer).cast("B")
        if self._pos >= self.size or not len(view):
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        offset = self._pos - self._starts[index]
        want = min(len(view), self._sizes[index] - offset)
        n = os.preadv(self._open(index), [view[:want]], offset)
        if n <= 0:
            raise OSError(f"data file {self._paths[index].name} is shorter than recorded")
        self._pos += n
        return n

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if not self.closed:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            callback, self._on_close = self._on_close, None
            if callback is not None:
                callback()
        super().close()

    def _open(self, index: int) -> int:
        if index != self._index:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._fd = os.open(self._paths[index], os.O_RDONLY | os.O_CLOEXEC)
            self._index = index
        return self._fd

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")
