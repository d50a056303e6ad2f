"""Kept-alive plain-HTTP/1.1 connections for S3's fast path: the PutObject of each small file, the
ListObjectsV2 of each directory.

For a small file on a fast store the HTTP client is most of qsyncd's CPU. Measured on a 16 KiB
PutObject to SeaweedFS on loopback, one thread: urllib3's ``urlopen`` cost 0.35 ms of CPU per request
on top of ``http.client``, and in ``http.client`` itself the response's header parser (``email``'s
feed parser) and one ``putheader`` call per header were the largest parts (BENCHMARKS.md, Scenario 7).
A request here is one ``sendall`` of the request head, the body (sendfile(2) for a file), and one
pass over the response: status line, headers, then a body delimited by ``Content-Length``, by chunked
transfer coding or by the end of the connection (RFC 9112 section 6.3).

What it keeps from urllib3:

* a connection left idle is checked before it is reused (readable means the server closed it or is
  out of step) and dropped if so; a connection that failed in any way, or whose response ends with
  the connection (``Connection: close``, HTTP/1.0, a body read to the end), is never reused;
* a connect timeout for connecting and a read timeout for every wait after (``(connect, read)``);
* failures raised as urllib3's exception types (``NameResolutionError``, ``NewConnectionError``,
  ``ConnectTimeoutError``, ``ReadTimeoutError``, ``ProtocolError``), so that
  ``translate.transport_error`` words them exactly as it words the same failure through botocore.

What it does not do, because its callers never need it: TLS, proxies, redirects, retries (qsyncd
retries higher up), ``Expect: 100-continue`` (an interim 1xx answer is skipped), compression. Header
values with CR or LF are refused (no header injection). ``s3_fast.usable`` decides when it is used.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from qsyncd.remote.body import Splice

MAX_HEAD = 64 * 1024  # a response's status line and headers
MAX_BODY = 16 * 1024 * 1024  # a response body (an error document, a listing page)
_RECV = 64 * 1024


class Headers(dict[str, str]):
    """Response headers by lower-case name (a repeated header's values joined with ``, ``)."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class _Closed(Exception):
    """The server closed the connection (or it broke) before the response was complete."""


class PlainConnection:
    """One plain-HTTP/1.1 connection: one request at a time."""

    def __init__(self, host: str, port: int, *, timeout: tuple[float, float]) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._buf = b""  # bytes received past the previous response (only ever empty when reused)

    def connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout[0])
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connection to {self.host}:{self.port} timed out") from exc
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except OSError as exc:
            raise NewConnectionError(self, f"failed to establish a new connection: {exc}") from exc  # type: ignore[arg-type]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout[1])
        self.sock = sock

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def dropped(self) -> bool:
        """Whether an idle connection can no longer be used: closed, or the server sent something unasked."""
        sock = self.sock
        if sock is None or self._buf:
            return True
        try:
            poller = select.poll()
            poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    # -- sending
    def send_request(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> None:
        """Send the request head and the body (``None``, ``bytes`` or an iterable of bytes and ``Splice``)."""
        lines = [f"{method} {path} HTTP/1.1\r\n"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise ValueError(f"invalid HTTP header {name!r}")
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        sock = self.sock
        assert sock is not None
        if isinstance(body, bytes):
            sock.sendall(head + body)
            return
        sock.sendall(head)
        if body is None:
            return
        if not isinstance(body, Iterable):
            raise TypeError(f"a request body must be bytes or an iterable, not {type(body).__name__}")
        for chunk in body:
            if isinstance(chunk, Splice):
                chunk.body.send_block(sock, chunk.n)
            elif chunk:
                sock.sendall(chunk)

    # -- receiving
    def _recv(self) -> bytes:
        assert self.sock is not None
        data = self.sock.recv(_RECV)
        if not data:
            raise _Closed("the server closed the connection")
        return data

    def _head(self) -> bytes:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                self._buf = buf[end + 4 :]
                return buf[:end]
            if len(buf) > MAX_HEAD:
                raise http.client.LineTooLong("response head")
            buf += self._recv()

    def _exactly(self, n: int) -> bytes:
        buf = self._buf
        while len(buf) < n:
            buf += self._recv()
        self._buf = buf[n:]
        return buf[:n]

    def _line(self) -> bytes:
        buf = self._buf
        while (end := buf.find(b"\r\n")) < 0:
            if len(buf) > MAX_HEAD:
                raise http.client.LineTooLong("chunk size line")
            buf += self._recv()
        self._buf = buf[end + 2 :]
        return buf[:end]

    def _chunked(self) -> bytes:
        out: list[bytes] = []
        total = 0
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise http.client.IncompleteRead(b"".join(out)) from None
            if size == 0:
                while self._line():  # trailer fields, up to the blank line
                    pass
                return b"".join(out)
            total += size
            if total > MAX_BODY:
                raise ProtocolError(f"response body larger than {MAX_BODY} bytes")
            out.append(self._exactly(size))
            self._exactly(2)  # CRLF after the chunk

    def _to_close(self) -> bytes:
        buf = self._buf
        self._buf = b""
        assert self.sock is not None
        while data := self.sock.recv(_RECV):
            buf += data
            if len(buf) > MAX_BODY:
                raise ProtocolError(f"response body larger than {MAX_BODY} bytes")
        return buf

    def read_response(self, method: str) -> tuple[int, Headers, bytes, bool]:
        """(status, headers, body, whether the connection may be used again)."""
        while True:
            head = self._head().decode("latin-1").split("\r\n")
            version, _, rest = head[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise http.client.BadStatusLine(head[0][:100])
            status = int(code)
            if not 100 <= status < 200:
                break  # 1xx interim answers (100 Continue) are skipped
        headers = Headers()
        name = ""
        for line in head[1:]:
            if line[:1] in (" ", "\t") and name:  # obsolete line folding
                headers[name] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise http.client.BadStatusLine(f"bad header line {line[:100]!r}")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        keep = version == "HTTP/1.1" and "close" not in tokens
        if method == "HEAD" or status in (204, 304):
            return status, headers, b"", keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, headers, self._chunked(), keep
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length.split(",")[0])
            except ValueError:
                raise http.client.BadStatusLine(f"bad Content-Length {length[:50]!r}") from None
            if n < 0 or n > MAX_BODY:
                raise ProtocolError(f"response body of {n} bytes refused")
            return status, headers, self._exactly(n), keep
        return status, headers, self._to_close(), False


class PlainPool:
    """Up to ``maxsize`` idle ``PlainConnection``s to one host (thread-safe; more are opened while busy)."""

    def __init__(self, host: str, port: int, *, timeout: tuple[float, float], maxsize: int) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._idle: list[PlainConnection] = []

    def __repr__(self) -> str:
        return f"PlainPool({self._host}:{self._port}, idle={len(self._idle)})"

    def _get(self) -> PlainConnection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = PlainConnection(self._host, self._port, timeout=self._timeout)
                conn.connect()
                return conn
            if not conn.dropped():
                return conn
            conn.close()

    def _put(self, conn: PlainConnection) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; a later request opens a new one."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def request(self, method: str, path: str, body: Any, headers: Mapping[str, str]) -> tuple[int, Headers, bytes]:
        """Send one request; returns the status, the response headers and the whole response body.

        ``headers`` must hold ``host``, and ``content-length`` when there is a body (never sent chunked)."""
        conn = self._get()
        keep = False
        try:
            try:
                conn.send_request(method, path, headers, body)
            except (ConnectionError, TimeoutError) as exc:
                raise ProtocolError("Connection aborted.", exc) from exc  # TimeoutError here: a send timeout
            try:
                status, reply, data, keep = conn.read_response(method)
            except TimeoutError as exc:
                message = f"read timed out ({self._timeout[1]:g} s)"
                raise ReadTimeoutError(None, path, message) from exc  # type: ignore[arg-type]
            except _Closed as exc:
                closed = http.client.RemoteDisconnected("Remote end closed connection without response")
                raise ProtocolError("Connection aborted.", closed) from exc
            except (http.client.HTTPException, ConnectionError) as exc:
                raise ProtocolError("Connection aborted.", exc) from exc
            return status, reply, data
        finally:
            if keep:
                self._put(conn)
            else:
                conn.close()


__all__ = ["Headers", "PlainConnection", "PlainPool"]
