"""Wire-level helpers of the emulator: date formats, request body readers, name and header rules."""

from __future__ import annotations

import base64
import binascii
import email.utils
import ipaddress
import re
import time
from datetime import UTC, datetime
from typing import Protocol

MAX_KEY_BYTES = 1023
MAX_META_NAME = 512
MAX_META_TOTAL = 2048
STORAGE_CLASSES = ("STANDARD", "STANDARD_IA")

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{4,61}[a-z0-9]$")
_META_NAME_RE = re.compile(r"^[A-Za-z0-9\-_.]+$")


class IncompleteBody(Exception):
    """The client closed the connection before sending the whole body."""


class BadChunking(Exception):
    """A chunked body could not be parsed."""


def http_date(ts: float) -> str:
    """``Mon, 02 Jan 2006 15:04:05 GMT``."""
    return email.utils.formatdate(ts, usegmt=True)


def rfc3339(ts: float) -> str:
    """``2016-08-22T15:03:32.000Z``."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_date(value: str) -> float | None:
    """Parse an RFC 822/1123 date (what both SDKs send) or ISO 8601 basic/extended UTC; None if bad."""
    value = value.strip()
    if not value:
        return None
    if "," in value[:5] and value.split(",", 1)[0] not in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"):
        return None  # a localised weekday (e.g. "Mi,") is what a non-C LC_TIME produces: not RFC 1123
    try:
        dt = email.utils.parsedate_to_datetime(value)
        if dt is not None:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return dt.timestamp()
    except (TypeError, ValueError, IndexError):
        pass
    for fmt in ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def valid_bucket_name(name: str) -> bool:
    """6-63 chars of ``[a-z0-9-]``, starting and ending with a letter or digit, not an IP address."""
    if not _BUCKET_RE.match(name):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False


def valid_key(key: str) -> bool:
    """1-1023 bytes of UTF-8 (any characters; the caller already decoded it strictly)."""
    try:
        n = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return 1 <= n <= MAX_KEY_BYTES


def decode_md5(value: str) -> bytes | None:
    """Decode a Content-MD5 header: the Base64 of 16 bytes (RFC 1864) or 32 hex digits (either case,
    as QingStor's Go SDK and qsctl send it); None if it is neither. The two forms cannot be confused:
    the Base64 of 16 bytes is 24 characters long."""
    value = value.strip()
    if len(value) == 32:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return None
        return raw if len(raw) == 16 else None  # fromhex skips spaces: "ab  cd..." is fewer bytes
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 16 else None


def check_metadata(headers: list[tuple[str, str]]) -> tuple[dict[str, str], str | None]:
    """Collect ``x-qs-meta-*`` headers; returns (metadata, error code or None)."""
    meta: dict[str, str] = {}
    total = 0
    for name, value in headers:
        lname = name.lower()
        if not lname.startswith("x-qs-meta-"):
            continue
        short = lname[len("x-qs-meta-") :]
        if not short or not _META_NAME_RE.match(short):
            return {}, "invalid_argument"
        if any(not (0x20 <= ord(c) < 0x7F) for c in value):
            return {}, "invalid_argument"
        if len(short) > MAX_META_NAME:
            return {}, "metadata_too_large"
        total += len(lname) + len(value)
        meta[lname] = value
    if total > MAX_META_TOTAL:
        return {}, "metadata_too_large"
    return meta, None


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n``; (start, end inclusive) or None if unsatisfiable."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        n = int(last)
        if n == 0 or size == 0:
            return None
        return max(0, size - n), size - 1
    start = int(first)
    if start >= size:
        return None
    end = size - 1 if last == "" else min(int(last), size - 1)
    if end < start:
        return None
    return start, end


class ByteSource(Protocol):
    """Where a body comes from: a socket's buffered reader, or ``io.BytesIO`` in a test."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class BodyReader:
    """Reads a request body of known length, or a chunked one, counting bytes received."""

    def __init__(self, rfile: ByteSource, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self.length = length
        self.chunked = chunked
        self.received = 0  # decoded body bytes handed out
        self._chunk_left = 0
        self._done = length == 0 and not chunked

    @property
    def done(self) -> bool:
        """Whether the whole body has been read."""
        return self._done

    def remaining(self) -> int | None:
        """Bytes still expected (None for chunked bodies)."""
        if self.chunked:
            return None if not self._done else 0
        assert self.length is not None
        return self.length - self.received

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end; raises ``IncompleteBody`` on early EOF."""
        if self._done or n <= 0:
            return b""
        if not self.chunked:
            assert self.length is not None
            want = min(n, self.length - self.received)
            data = self._rfile.read(want)
            if len(data) < want:
                self.received += len(data)
                raise IncompleteBody(f"body ended after {self.received} of {self.length} bytes")
            self.received += len(data)
            if self.received >= self.length:
                self._done = True
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(1024)
            if not line:
                raise IncompleteBody("chunked body ended early")
            try:
                self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise BadChunking("bad chunk size line") from exc
            if self._chunk_left == 0:
                while True:  # trailers up to the empty line
                    trailer = self._rfile.readline(8192)
                    if not trailer:
                        raise IncompleteBody("chunked body ended early")
                    if trailer in (b"\r\n", b"\n"):
                        break
                self._done = True
                return b""
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise IncompleteBody("chunked body ended early")
        self._chunk_left -= len(data)
        self.received += len(data)
        if self._chunk_left == 0 and self._rfile.readline(1024) not in (b"\r\n", b"\n"):
            raise BadChunking("chunk not followed by CRLF")
        return data

    def drain(self, limit: int, deadline: float) -> bool:
        """Read and discard the rest of the body; True if it all arrived within the limits."""
        seen = 0
        try:
            while not self._done:
                if seen > limit or time.monotonic() > deadline:
                    return False
                chunk = self.read(1024 * 1024)
                if not chunk and not self._done:
                    return False
                seen += len(chunk)
        except (IncompleteBody, BadChunking, OSError):
            return False
        return True
