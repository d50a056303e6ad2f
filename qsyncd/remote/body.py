"""Stream exactly ``size`` bytes of a caller's file object as a request body.

``requests``/``urllib3`` decide how to send a body by duck typing:

* an object with ``read()`` is read in ``blocksize`` (16 KiB) pieces and, unless ``super_len``
  finds a length through ``__len__``/``fileno``/``tell``, sent with chunked encoding — and
  ``fileno``/``tell`` describe the *whole* file, not the section we want to send;
* a plain iterable with ``__len__`` gets ``Content-Length: len(obj)`` and each yielded chunk is
  passed to ``sendall`` unchanged.

``SizedBody`` is the second kind: no ``read``/``tell``/``fileno``, ``__len__() == size``, and it
yields blocks of ``BLOCK_SIZE`` bytes read from the caller's file, stopping after ``size`` bytes
even if the file is longer (a part is a section of a bigger file). If the file ends early it
raises ``ShortBodyError`` from inside the send, which aborts the request mid-body so the server
never stores a truncated object. It never holds more than one block in memory.

Zero copy on plain HTTP: when the file object can name the bytes it would read (``region(n)`` and
``advance(sent)``, as ``qsyncd.source.Section`` does) and the connection is a
``SpliceHTTPConnection``, ``SizedBody`` yields ``Splice`` markers instead of bytes, and the
connection hands each block to the kernel with ``sendfile(2)``: the page cache goes to the socket
without being read into Python. TLS needs the bytes in user space, so HTTPS (and anything that is
not a plain TCP socket) keeps the read-and-send path. Size checks, the rate limit and progress are
the same either way.
"""

from __future__ import annotations

import errno
import io
import os
import select
import socket
from collections.abc import Iterator
from typing import Any

from urllib3.connection import HTTPConnection

from qsyncd.errors import BodyMismatch
from qsyncd.remote.base import Body

BLOCK_SIZE = 1024 * 1024  # 1 MiB reads: 64 reads for a 64 MiB part, not 65,536 (SDK FileChunk)


class ShortBodyError(Exception):
    """The body file ended before ``size`` bytes were read (it shrank while being read)."""

    def __init__(self, sent: int, size: int) -> None:
        super().__init__(f"the body ended after {sent} of {size} bytes")
        self.sent = sent
        self.size = size


def shrank(operation: str, key: str, exc: ShortBodyError) -> BodyMismatch:
    """The error for a body that ended before its size: the request was cut off, nothing stored."""
    return BodyMismatch(
        f"{operation} {key!r} failed: the body ended after {exc.sent} of {exc.size} bytes: "
        "the file shrank while it was read; nothing was stored",
        code="incomplete_body",
        operation=operation,
        key=key,
    )


class SizedBody:
    """An iterable request body of exactly ``size`` bytes read from ``fileobj``'s current position.

    Re-iterating (a resend) seeks back to the starting position when the file is seekable.
    """

    def __init__(self, fileobj: Body, size: int, block_size: int = BLOCK_SIZE) -> None:
        self.splice = False  # yield Splice markers (see enable_splice)
        self._no_sendfile = False  # sendfile(2) refused this file: read and send instead
        if size < 0:
            raise ValueError(f"body size must be >= 0, got {size}")
        if block_size < 256 * 1024:
            raise ValueError(f"block_size must be >= 256 KiB, got {block_size}")
        self._file = fileobj
        self._size = size
        self._block_size = block_size
        self._start: int | None = None
        self._iterations = 0
        self.sent = 0  # bytes handed to the transport by the latest iteration
        try:
            seekable = getattr(fileobj, "seekable", None)  # optional in a Body (a Section has none)
            if seekable is not None and seekable():
                self._start = fileobj.tell()
        except (AttributeError, OSError, io.UnsupportedOperation):
            self._start = None

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        # The SDK drops a falsy body; an empty body is passed as None by the caller instead.
        return True

    def __repr__(self) -> str:
        return f"<SizedBody size={self._size}>"

    def __iter__(self) -> Iterator[bytes]:
        if self._iterations and self._start is not None:
            self._file.seek(self._start)
        elif self._iterations:
            raise ShortBodyError(0, self._size)  # cannot replay a non-seekable body
        self._iterations += 1
        return self._blocks()

    def enable_splice(self) -> bool:
        """Yield ``Splice`` markers instead of bytes if the file object can name its bytes; only for
        a connection that sends them (``SpliceHTTPConnection``). Returns whether it is on."""
        f = self._file
        self.splice = callable(getattr(f, "region", None)) and callable(getattr(f, "advance", None))
        return self.splice

    def _blocks(self) -> Iterator[Any]:
        self.sent = 0
        remaining = self._size
        if self.splice:
            while remaining > 0:
                n = min(self._block_size, remaining)
                yield Splice(self, n)  # the connection sends it before asking for the next one
                remaining -= n
            return
        while remaining > 0:
            block = self._file.read(min(self._block_size, remaining))
            if not block:
                raise ShortBodyError(self.sent, self._size)
            remaining -= len(block)
            self.sent += len(block)
            yield block

    def send_block(self, sock: Any, n: int) -> None:
        """Send the next ``n`` bytes of the file on ``sock`` (for a ``Splice``): with sendfile(2) on
        a plain TCP socket, else read and ``sendall``. Raises ``ShortBodyError`` if the file ends."""
        sent = -1
        if type(sock) is socket.socket and not self._no_sendfile:
            fd, offset = self._file.region(n)  # type: ignore[attr-defined]
            try:
                sent = sendfile_all(sock, fd, offset, n)
            except SendfileUnsupported:
                self._no_sendfile = True  # e.g. a file system without splice support
            else:
                self._file.advance(sent)  # type: ignore[attr-defined]
        if sent < 0:
            sent = 0
            while sent < n and (block := self._file.read(n - sent)):
                sock.sendall(block)
                sent += len(block)
        self.sent += sent
        if sent < n:
            raise ShortBodyError(self.sent, self._size)


class Splice:
    """``n`` bytes of a ``SizedBody`` for the connection to send itself (never sent as data)."""

    __slots__ = ("body", "n")

    def __init__(self, body: SizedBody, n: int) -> None:
        self.body = body
        self.n = n

    def __bool__(self) -> bool:
        return True  # urllib3 and http.client skip falsy chunks

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"<Splice {self.n} bytes>"


class SendfileUnsupported(Exception):
    """sendfile(2) cannot read this file (nothing was sent): read and send it instead."""


_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)


def sendfile_all(sock: socket.socket, fd: int, offset: int, count: int) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset`` on ``sock`` with sendfile(2); return the bytes
    sent, fewer only if the file ends first. Honours the socket's timeout for each wait, as
    ``sendall`` does (``TimeoutError``). Raises ``SendfileUnsupported`` if the kernel refuses this
    file before anything was sent; other errors (a reset connection, EIO) propagate."""
    out = sock.fileno()
    timeout = sock.gettimeout()
    poller: select.poll | None = None
    sent = 0
    while sent < count:
        try:
            n = os.sendfile(out, fd, offset + sent, count - sent)
        except BlockingIOError:  # a socket with a timeout is non-blocking underneath
            n = -1
        except OSError as exc:
            if sent == 0 and exc.errno in _UNSUPPORTED:
                raise SendfileUnsupported(str(exc)) from exc
            raise
        if n < 0:  # wait until the socket takes more (outside the except: no EAGAIN context)
            if poller is None:
                poller = select.poll()
                poller.register(out, select.POLLOUT)
            if not poller.poll(None if timeout is None else timeout * 1000):
                raise TimeoutError("timed out")  # what sendall raises
            continue
        if n == 0:
            break  # end of file
        sent += n
    return sent


class SpliceHTTPConnection(HTTPConnection):
    """urllib3's plain-HTTP connection that sends a ``Splice`` with sendfile(2); everything else
    (headers, bytes bodies, the SDK's requests) goes through unchanged."""

    def send(self, data: Any) -> None:
        if isinstance(data, Splice):
            if self.sock is None:
                self.connect()
            data.body.send_block(self.sock, data.n)
            return
        super().send(data)


def short_body_in(exc: BaseException) -> ShortBodyError | None:
    """The ``ShortBodyError`` that is ``exc`` or is wrapped in it (botocore's ``HTTPClientError(error=...)``,
    a cause), if any."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ShortBodyError):
            return cur
        kwargs = getattr(cur, "kwargs", None)
        inner = kwargs.get("error") if isinstance(kwargs, dict) else None
        cur = inner if isinstance(inner, BaseException) else (cur.__cause__ or cur.__context__)
    return None
