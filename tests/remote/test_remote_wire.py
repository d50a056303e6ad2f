"""What QingStorRemote puts on the wire, and how it handles broken responses, observed with a bare
socket server that records each raw request and answers with a canned response (no emulator)."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from qsynctest import md5_b64, md5_hex

from qsyncd.errors import BucketMissing, TransientError, Unreachable
from qsyncd.remote.base import PartInfo
from qsyncd.remote.qingstor import QingStorRemote

SECRET = "wire-test-secret-never-shown"


@dataclass
class RawServer:
    """Accepts connections, reads one request each (head + Content-Length body), records it and
    answers with ``responses[i]`` (the last one repeats), then closes the connection."""

    responses: list[bytes] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    sock: socket.socket = field(default_factory=socket.socket)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                want = int(headers.get("content-length", "0"))
                while len(body) < want:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                self.requests.append((lines[0], headers, body))
                index = min(len(self.requests) - 1, len(self.responses) - 1)
                conn.sendall(self.responses[index])


@pytest.fixture
def raw() -> Iterator[RawServer]:
    """A RawServer on 127.0.0.1, closed in teardown."""
    server = RawServer()
    server.sock.bind(("127.0.0.1", 0))
    server.sock.listen(16)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        server.sock.close()
        thread.join(timeout=10)


def _remote(raw: RawServer, read_timeout: float = 5.0) -> QingStorRemote:
    return QingStorRemote(
        endpoint=raw.url,
        zone="",
        bucket="wire-bucket",
        access_key_id="WIREAKID",
        secret_access_key=SECRET,
        connect_timeout=5.0,
        read_timeout=read_timeout,
    )


def _response(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body


def test_put_wire_format(raw: RawServer) -> None:
    """PutObject sends exact Content-Length (no chunking), Content-MD5, the caller's Content-Type,
    X-QS-Meta-* headers, an English RFC 1123 Date and a QS signature; the body is the section."""
    raw.responses = [_response("201 Created", {"ETag": '"ABCDEF0123456789ABCDEF0123456789"'})]
    data = b"0123456789" * 100_000
    f = io.BytesIO(b"prefix" + data + b"suffix")
    f.seek(6)
    with _remote(raw) as remote:
        etag = remote.put(
            "dir/a b.txt", f, len(data), md5_b64(data), content_type="video/mp4", metadata={"mtime": "12"}
        )
    assert "abcdef0123456789abcdef0123456789" == etag
    line, headers, body = raw.requests[0]
    assert "PUT /wire-bucket/dir/a%20b.txt HTTP/1.1" == line
    assert str(len(data)) == headers["content-length"]
    assert "transfer-encoding" not in headers
    assert md5_b64(data) == headers["content-md5"]
    assert "video/mp4" == headers["content-type"]
    assert "12" == headers["x-qs-meta-mtime"]
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", headers["date"])
    assert headers["authorization"].startswith("QS WIREAKID:")
    assert data == body


def test_upload_part_sends_string_part_number_zero(raw: RawServer) -> None:
    """Part 0 goes out as ?part_number=0&upload_id=... on a PUT (the SDK would drop or choke on ints)."""
    raw.responses = [_response("201 Created", {"ETag": f'"{md5_hex(b"p")}"'})]
    with _remote(raw) as remote:
        remote.upload_part("k", "up-1", 0, io.BytesIO(b"p"), 1, md5_b64(b"p"))
    assert "PUT /wire-bucket/k?part_number=0&upload_id=up-1 HTTP/1.1" == raw.requests[0][0]


def test_complete_sends_quoted_etag_and_ascending_parts(raw: RawServer) -> None:
    """Complete sends ETag: "<hex>" and object_parts [{etag, part_number, size}] in ascending order."""
    raw.responses = [_response("201 Created", {})]
    parts = [PartInfo(0, 5, "a" * 32), PartInfo(2, 3, '"' + "B" * 32 + '"')]
    with _remote(raw) as remote:
        remote.complete("k", "up-1", parts, "C" * 32)
    line, headers, body = raw.requests[0]
    assert "POST /wire-bucket/k?upload_id=up-1 HTTP/1.1" == line
    assert '"' + "c" * 32 + '"' == headers["etag"]
    assert "application/json" == headers["content-type"]
    assert {
        "object_parts": [
            {"part_number": 0, "etag": "a" * 32, "size": 5},
            {"part_number": 2, "etag": "b" * 32, "size": 3},
        ]
    } == json.loads(body)


def test_truncated_response_body_is_transient(raw: RawServer) -> None:
    """A response body cut off before its Content-Length is a TransientError."""
    raw.responses = [
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"upload_id": "x'
    ]
    with _remote(raw) as remote, pytest.raises(TransientError) as info:
        remote.initiate("k")
    assert SECRET not in str(info.value)
    assert (0, "incomplete_response") == (info.value.status, info.value.code)


def test_connection_closed_without_response_is_transient(raw: RawServer) -> None:
    """A server that closes the connection without answering gives TransientError, not Unreachable."""
    raw.responses = [b""]
    with _remote(raw) as remote, pytest.raises(TransientError) as info:
        remote.head("k")
    assert "connection_reset" == info.value.code
    assert "Remote end closed connection without response" in str(info.value)


def test_initiate_json_with_charset_is_invalid_response(raw: RawServer) -> None:
    """The SDK only parses 'application/json' exactly: with a charset the upload id is lost, which
    is reported instead of returning an empty id."""
    raw.responses = [_response("200 OK", {"Content-Type": "application/json; charset=utf-8"}, b'{"upload_id": "u1"}')]
    with _remote(raw) as remote, pytest.raises(TransientError) as info:
        remote.initiate("k")
    assert "invalid_response" == info.value.code


def test_initiate_201_is_not_success(raw: RawServer) -> None:
    """InitiateMultipartUpload must answer exactly 200; 201 is an error even with a valid body."""
    raw.responses = [_response("201 Created", {"Content-Type": "application/json"}, b'{"upload_id": "u1"}')]
    with _remote(raw) as remote, pytest.raises(TransientError) as info:
        remote.initiate("k")
    assert 201 == info.value.status


def test_non_object_json_error_body_is_translated(raw: RawServer) -> None:
    """An error body that is JSON but not an object (the SDK's Unpacker raises on it) still maps to
    a qsyncd error by status."""
    raw.responses = [_response("502 Bad Gateway", {"Content-Type": "application/json"}, b'["upstream"]')]
    with _remote(raw) as remote, pytest.raises(TransientError) as info:
        remote.put("k", io.BytesIO(b"x"), 1, md5_b64(b"x"))
    assert 502 == info.value.status


def test_abort_of_missing_upload_is_success_but_missing_bucket_is_not(raw: RawServer) -> None:
    """Abort tolerates 404 upload_not_exists (already gone) but not 404 bucket_not_exists."""
    raw.responses = [
        _response("404 Not Found", {"Content-Type": "application/json"}, b'{"code": "upload_not_exists"}'),
        _response("404 Not Found", {"Content-Type": "application/json"}, b'{"code": "bucket_not_exists"}'),
    ]
    with _remote(raw) as remote:
        remote.abort("k", "up-1")
        with pytest.raises(BucketMissing) as info:
            remote.abort("k", "up-1")
    assert "bucket_not_exists" == info.value.code
    assert "DELETE /wire-bucket/k?upload_id=up-1 HTTP/1.1" == raw.requests[0][0]


def test_connect_timeout_is_unreachable() -> None:
    """A listener whose accept queue is full drops SYNs: the connect times out -> Unreachable."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(8):  # never accepted: fills the accept queue
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
        remote = QingStorRemote(
            endpoint=f"http://127.0.0.1:{port}",
            zone="",
            bucket="wire-bucket",
            access_key_id="WIREAKID",
            secret_access_key=SECRET,
            connect_timeout=0.5,
        )
        with pytest.raises(Unreachable) as info:
            remote.head("k")
        remote.close()
        assert "connect_timeout" == info.value.code
        assert f"cannot reach http://127.0.0.1:{port}: connect timed out" in str(info.value)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
