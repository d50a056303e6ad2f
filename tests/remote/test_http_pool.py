"""``remote/http_pool.py``: kept-alive standard-library connections, and failures worded as through urllib3.

A small real HTTP server on 127.0.0.1 (one thread per connection) answers as each test tells it; the
failures go through ``translate.transport_error`` as ``_put_fast`` sends them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from qsyncd.errors import TransientError, Unreachable
from qsyncd.remote.http_pool import PlainPool
from qsyncd.remote.translate import transport_error

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Server:
    """Accepts connections; ``answer(conn, n)`` handles the n-th request (counted over all connections)."""

    def __init__(self, answer: Callable[[socket.socket, int], bool]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.requests = 0
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released each time the server has closed a connection
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._run, daemon=True)
        self._accept.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._exchange(conn)
        finally:
            conn.close()
            self.closed.release()

    def _exchange(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            buf = buf[length:]
            self.requests += 1
            if not self.answer(conn, self.requests):
                return  # close the connection

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for t in self._threads:
            t.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket, int], bool]], Server]]:
    servers: list[Server] = []

    def start(answer: Callable[[socket.socket, int], bool]) -> Server:
        servers.append(Server(answer))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _put(pool: PlainPool, body: bytes = b"data") -> tuple[int, bytes]:
    status, _headers, data = pool.request("PUT", "/b/k", body, {"content-length": str(len(body)), "host": "h"})
    return status, data


def test_a_connection_is_kept_alive_between_requests(serve) -> None:
    server = serve(lambda conn, n: conn.sendall(OK) or True)
    pool = PlainPool("127.0.0.1", server.port, timeout=(2, 2), maxsize=4)
    assert [_put(pool) for _ in range(3)] == [(200, b"ok")] * 3
    assert server.connections == 1
    pool.close()


def test_a_connection_the_server_closed_while_idle_is_not_reused(serve) -> None:
    server = serve(lambda conn, n: conn.sendall(OK) and False)  # answers, then closes
    pool = PlainPool("127.0.0.1", server.port, timeout=(2, 2), maxsize=4)
    assert _put(pool) == (200, b"ok")
    assert server.closed.acquire(timeout=10)  # the server has closed the kept-alive connection
    assert _put(pool) == (200, b"ok")  # a new connection, not an error on the dead one
    assert server.connections == 2
    pool.close()


def test_connection_close_in_the_response_is_honoured(serve) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    server = serve(lambda conn, n: conn.sendall(reply) or True)  # the server would even go on
    pool = PlainPool("127.0.0.1", server.port, timeout=(2, 2), maxsize=4)
    assert _put(pool) == (200, b"ok")
    assert _put(pool) == (200, b"ok")
    assert server.connections == 2
    pool.close()


def test_a_refused_connection_is_worded_as_unreachable_with_the_address() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    pool = PlainPool("127.0.0.1", port, timeout=(2, 2), maxsize=4)
    with pytest.raises(Exception) as info:
        _put(pool)
    err = transport_error(info.value, operation="PutObject", key="k", endpoint=f"http://127.0.0.1:{port}")
    assert isinstance(err, Unreachable)
    assert err.code == "connection_error"
    assert f"cannot reach http://127.0.0.1:{port}" in str(err) and "Connection refused" in str(err)


def test_no_answer_within_the_read_timeout_is_a_read_timeout(serve) -> None:
    server = serve(lambda conn, n: threading.Event().wait(3) and False)  # never answers in time
    pool = PlainPool("127.0.0.1", server.port, timeout=(2, 0.3), maxsize=4)
    with pytest.raises(Exception) as info:
        _put(pool)
    err = transport_error(info.value, operation="PutObject", key="k", endpoint="http://x")
    assert isinstance(err, TransientError) and not isinstance(err, Unreachable)
    assert err.code == "read_timeout"


def test_a_connection_reset_before_the_answer_is_a_broken_connection(serve) -> None:
    server = serve(lambda conn, n: False)  # reads the request, closes without a word
    pool = PlainPool("127.0.0.1", server.port, timeout=(2, 2), maxsize=4)
    with pytest.raises(Exception) as info:
        _put(pool)
    err = transport_error(info.value, operation="PutObject", key="k", endpoint="http://x")
    assert err.code == "connection_reset", err
    assert "broke mid-request" in str(err)
    assert server.requests == 1


@pytest.mark.parametrize(
    "reply, body, reused",
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
            b"abcde",
            True,
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", False),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", b"", False),
    ],
    ids=["chunked", "100-continue", "http-1.0", "connection-close"],
)
def test_response_bodies_are_delimited_as_rfc_9112_says(serve, reply: bytes, body: bytes, reused: bool) -> None:
    server = serve(lambda conn, n: conn.sendall(reply) or True)
    pool = PlainPool("127.0.0.1", server.port, timeout=(2, 2), maxsize=4)
    assert _put(pool)[1] == body
    assert _put(pool)[1] == body
    assert server.connections == (1 if reused else 2)
    pool.close()


def test_a_body_without_length_is_read_to_the_end_of_the_connection(serve) -> None:
    server = serve(lambda conn, n: conn.sendall(b'HTTP/1.1 500 Oops\r\nETag: "x"\r\n\r\n<Error/>') and False)
    pool = PlainPool("127.0.0.1", server.port, timeout=(2, 2), maxsize=4)
    status, headers, data = pool.request("PUT", "/b/k", b"", {"content-length": "0", "host": "h"})
    assert (status, data, headers.get("ETag")) == (500, b"<Error/>", '"x"')
    pool.close()


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent(serve) -> None:
    server = serve(lambda conn, n: conn.sendall(OK) or True)
    pool = PlainPool("127.0.0.1", server.port, timeout=(2, 2), maxsize=4)
    with pytest.raises(ValueError, match="invalid HTTP header"):
        pool.request("PUT", "/b/k", b"", {"content-length": "0", "x-amz-meta-a": "1\r\nx-evil: 2"})
    assert server.requests == 0
    pool.close()
