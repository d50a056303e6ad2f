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
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

BLOCK_SIZE = 1024 * 1024  # 1 MiB reads: 64 reads for a 64 MiB part, not 65,536 (SDK FileChunk)


class ShortBodyError(Exception):
    """The body file ended before ``size`` bytes were read (it shrank while being read)."""

    def __init__(self, sent: int, size: int) -> None:
        super().__init__(f"the body ended after {sent} of {size} bytes")
        self.sent = sent
        self.size = size


class SizedBody:
    """An iterable request body of exactly ``size`` bytes read from ``fileobj``'s current position.

    Re-iterating (a resend) seeks back to the starting position when the file is seekable.
    """

    def __init__(self, fileobj: BinaryIO, size: int, block_size: int = BLOCK_SIZE) -> None:
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
            if fileobj.seekable():
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

    def _blocks(self) -> Iterator[bytes]:
        self.sent = 0
        remaining = self._size
        while remaining > 0:
            block = self._file.read(min(self._block_size, remaining))
            if not block:
                raise ShortBodyError(self.sent, self._size)
            remaining -= len(block)
            self.sent += len(block)
            yield block
