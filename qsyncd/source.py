"""Reading local files for upload: byte ranges over one descriptor, hashing, and a bandwidth cap.

A ``Section`` reads ``length`` bytes from ``offset`` with ``os.pread``, so several parts of one
file can be sent in parallel over one descriptor and nothing larger than a block is held in
memory (or, on plain HTTP, names its bytes so the remote can ``sendfile`` them). Hashing reads
the same sections in order, so the whole-file MD5 is always in part order.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from qsyncd import md5pair
from qsyncd.errors import FileChanged
from qsyncd.identity import FileIdentity

BLOCK = 1 << 20  # 1 MiB: large enough to keep syscalls and hash calls cheap, small enough to stay bounded


class RateLimiter:
    """A token bucket shared by every upload: ``consume(n)`` blocks until ``n`` bytes may be sent."""

    def __init__(
        self,
        bytes_per_second: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        self.rate = float(bytes_per_second)
        self.burst = max(self.rate / 4, float(BLOCK))  # never refuse a single block outright
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def consume(self, n: int) -> None:
        while n > 0:
            chunk = min(n, int(self.burst))
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= chunk:
                    self._tokens -= chunk
                    n -= chunk
                    continue
                wait = (chunk - self._tokens) / self.rate
            self._sleep(wait)


class Section:
    """A read-only file-like view of ``length`` bytes at ``offset`` of an open descriptor."""

    def __init__(
        self,
        fd: int,
        offset: int,
        length: int,
        *,
        limiter: RateLimiter | None = None,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self.pos = 0
        self.limiter = limiter
        self.on_read = on_read

    def read(self, n: int = -1) -> bytes:
        left = self.length - self.pos
        if left <= 0:
            return b""
        if n is None or n < 0 or n > left:
            n = left
        n = min(n, BLOCK)
        if self.limiter is not None:
            self.limiter.consume(n)
        data = os.pread(self.fd, n, self.offset + self.pos)
        if not data:
            return b""  # file shrank: the server sees a short body and rejects it
        self.advance(len(data))
        return data

    def region(self, n: int) -> tuple[int, int]:
        """The descriptor and absolute offset of the next ``n`` bytes, for a send that lets the
        kernel read them (sendfile); waits for the rate limit as ``read`` does. The caller reports
        what it sent with ``advance``."""
        if self.limiter is not None:
            self.limiter.consume(max(0, min(n, self.length - self.pos)))
        return self.fd, self.offset + self.pos

    def advance(self, n: int) -> None:
        """Count ``n`` bytes as read (progress included)."""
        self.pos += n
        if self.on_read is not None and n:
            self.on_read(n)

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0:
            self.pos = pos
        elif whence == 1:
            self.pos += pos
        else:
            self.pos = self.length + pos
        return self.pos

    def tell(self) -> int:
        return self.pos

    def __len__(self) -> int:
        return self.length - self.pos


def _blocks(fd: int, offset: int, length: int) -> Iterator[bytes]:
    """The bytes of a range in blocks of at most ``BLOCK``; ends early if the file is shorter."""
    pos, end = offset, offset + length
    while pos < end:
        data = os.pread(fd, min(BLOCK, end - pos), pos)
        if not data:
            return
        yield data
        pos += len(data)


def md5_section(fd: int, offset: int, length: int) -> Any:
    """MD5 of a byte range (the native hasher's single chain when ``md5pair.NATIVE``: ~5 % less CPU
    than hashlib's on the benchmark machine)."""
    return feed_section(fd, offset, length, md5pair.new())


def feed_section(fd: int, offset: int, length: int, h: Any) -> Any:
    """Feed a byte range to the hash ``h``; returns ``h``."""
    for data in _blocks(fd, offset, length):
        h.update(data)
    return h


def part_and_whole(fd: int, offset: int, length: int, whole: Any) -> str:
    """The MD5 (hex) of a byte range, also feeding the range to ``whole`` (made by ``md5pair.new()``),
    in one pass over the bytes when the native pair hasher is in use."""
    part = md5pair.new()
    for data in _blocks(fd, offset, length):
        md5pair.update_both(part, whole, data)
    return str(part.hexdigest())


def hash_file(fd: int, size: int, part_size: int | None) -> tuple[str, list[str]]:
    """The file's MD5 (hex) and, with a ``part_size`` (a multipart upload), each part's MD5, in one pass."""
    part_md5s: list[str] = []
    if part_size is None:
        return md5_section(fd, 0, size).hexdigest(), part_md5s
    whole = md5pair.new()
    for _, off, length in plan_parts(size, part_size):
        part_md5s.append(part_and_whole(fd, off, length, whole))
    return whole.hexdigest(), part_md5s


def check_unchanged(fd: int, ident: FileIdentity) -> None:
    """Raise ``FileChanged`` unless the open file is still the version ``ident`` (size, mtime, inode, ctime)."""
    if FileIdentity.of(os.fstat(fd)) != ident:
        raise FileChanged("the file changed while it was being read")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


MAX_PARTS = 10_000
MIN_PART = 4 << 20
MAX_PART = 5 << 30


def part_size_for(size: int, wanted: int) -> int:
    """The part size to use: ``wanted``, grown (to a whole MiB) so no file needs more than 10,000 parts."""
    part = max(wanted, MIN_PART)
    if size > part * MAX_PARTS:
        need = -(-size // MAX_PARTS)
        part = -(-need // (1 << 20)) * (1 << 20)
    if part > MAX_PART:
        raise ValueError(f"a file of {size} bytes cannot be uploaded in 10,000 parts of at most 5 GiB")
    return part


def plan_parts(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """``(part_number, offset, length)`` for every part; part numbers start at 0."""
    parts = []
    offset = 0
    n = 0
    while offset < size:
        length = min(part_size, size - offset)
        parts.append((n, offset, length))
        offset += length
        n += 1
    return parts
